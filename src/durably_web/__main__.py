"""``python -m durably_web``: the ``durably-web`` command line."""

from durably_web.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
