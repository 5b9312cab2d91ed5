"""What ran where: the code's state and the machine's facts, recorded with the results."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from setup_systems import ROOT

_NOT_ENGINE = tuple(
    f"src/durably_web/{package}/"
    for package in ("browser", "client", "server", "cli", "sitebuild", "web")
)


def code_state() -> dict[str, Any]:
    """Return the commit, the dirty files and a digest of the engine's source: what ran.

    ``src_digest`` covers src/durably_web without the browser, client, server, CLI and build
    packages and the site's files (``web/``), which the CPython engine does not load;
    ``browser_digest`` covers all of src/durably_web (the runtime's JavaScript included), what
    the browser systems run.
    """

    def git(*argv: str) -> str:
        proc = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True, check=False)
        return proc.stdout

    digest = hashlib.sha1()
    browser = hashlib.sha1()  # what the browser systems run: all of src
    for name in sorted(
        git("ls-files", "--cached", "--others", "--exclude-standard", "src").split()
    ):
        path = ROOT / name
        if not path.is_file():
            continue
        entry = name.encode() + b"\0" + path.read_bytes()
        if name.startswith("src/") and not name.startswith(_NOT_ENGINE):
            digest.update(entry)
        browser.update(entry)
    return {
        "commit": git("rev-parse", "HEAD").strip(),
        "src_dirty": git("status", "--porcelain", "--", "src").splitlines(),
        "src_digest": digest.hexdigest(),
        "browser_digest": browser.hexdigest(),
    }


def machine_facts() -> dict[str, Any]:
    """CPU, cores, load and tool versions, for the record."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
    return {
        "cpu": model,
        "nproc": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "node": node.stdout.strip() or None,
    }
