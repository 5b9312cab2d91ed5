from __future__ import annotations

import durably_web


def test_public_names_are_pinned() -> None:
    assert durably_web.__all__ == [
        "AbortSignal",
        "Clock",
        "ConflictError",
        "Connection",
        "Durably",
        "DurablyError",
        "Event",
        "JobDefinition",
        "JobHandle",
        "JobResult",
        "Jobs",
        "LeaseLost",
        "Log",
        "NotFoundError",
        "Progress",
        "Run",
        "RunCancelled",
        "RunFailed",
        "SQLiteStore",
        "Step",
        "StepContext",
        "StorageError",
        "SystemClock",
        "TriggerItem",
        "ValidationError",
        "__version__",
        "create_durably",
        "define_job",
    ]
    for name in durably_web.__all__:
        assert hasattr(durably_web, name), name


def test_core_imports_no_adapter_cli_or_server() -> None:
    import subprocess
    import sys

    code = (
        "import sys, durably_web\n"
        "bad = [m for m in sys.modules if m.startswith(('durably_web.adapters', "
        "'durably_web.cli', 'durably_web.server', 'durably_web.client', 'durably_web.browser', "
        "'durably_web.protocol', 'durably_web.http_client', 'durably_web.sitebuild', "
        "'sqlite3'))]\n"
        "print(bad)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
