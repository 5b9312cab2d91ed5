"""The JS client's generated view of the protocol (``protocol.d.ts``, ``protocol.mjs``).

Both files are generated from the Python declaration and committed; these tests regenerate
them and fail on any difference (run ``python -m durably_web.protocol.typescript``), and check
that the declared wire records are what the Python records send.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from durably_web.errors import NotFoundError, error_to_wire
from durably_web.models import Log, Progress, Run, Step
from durably_web.protocol.operations import OPERATIONS
from durably_web.protocol.typescript import DEFAULT_OUT, RECORDS, main, render_dts, render_mjs

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_committed_files_are_current() -> None:
    assert (DEFAULT_OUT / "protocol.d.ts").read_text("utf-8") == render_dts(), (
        "protocol.d.ts is stale: run python -m durably_web.protocol.typescript"
    )
    assert (DEFAULT_OUT / "protocol.mjs").read_text("utf-8") == render_mjs(), (
        "protocol.mjs is stale: run python -m durably_web.protocol.typescript"
    )
    assert main(["--check"]) == 0


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    out = tmp_path / "client"
    out.mkdir()
    (out / "protocol.d.ts").write_text(render_dts())
    (out / "protocol.mjs").write_text("// old\n")
    assert main(["--check", "--out", str(out)]) == 1
    assert main(["--out", str(out)]) == 0 and main(["--check", "--out", str(out)]) == 0


def fields(record: str) -> set[str]:
    return {name.rstrip("?") for name in RECORDS[record]}


def test_declared_records_are_what_python_sends() -> None:
    run = Run(
        "r1", "job", {}, "completed", "i", "c", 2, 2, Progress(1, 2, "m"), {"ok": True}, None,
        {"a": "b"}, None, None, 1, NOW, NOW, NOW, NOW, disposition="created",
    )  # fmt: skip
    assert set(run.to_wire()) == fields("Run")
    assert set(run.to_client_wire()) == fields("ClientRun")
    assert set(Progress(1, 2, "m").to_wire()) == fields("Progress")
    step = Step("s1", "r1", "fetch", 0, "completed", 1, None, NOW, NOW)
    assert set(step.to_wire()) == fields("Step")
    log = Log("l1", "r1", None, "info", "hi", None, NOW)
    assert set(log.to_wire()) == fields("Log")
    assert set(error_to_wire(NotFoundError("Run not found"))) == fields("WireError")


def test_the_route_table_is_valid_javascript_with_the_python_table() -> None:
    node = shutil.which("node")
    assert node is not None, "node is needed (the JS client's tests run on it too)"
    script = (
        f"import({json.dumps((DEFAULT_OUT / 'protocol.mjs').as_uri())})"
        ".then((m) => console.log(JSON.stringify(m.OPERATIONS)))"
    )
    result = subprocess.run(
        [node, "--input-type=module", "-e", script],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    table = json.loads(result.stdout)
    assert list(table) == [op.name for op in OPERATIONS]
    for op in OPERATIONS:
        entry = table[op.name]
        assert (entry["kind"], entry["repeatable"], entry["worker"], entry["result"]) == (
            op.kind,
            op.repeatable,
            op.worker,
            op.ts_result,
        )
        if op.http is None:
            assert entry["http"] is None
        else:
            assert (entry["http"]["method"], entry["http"]["path"]) == (
                op.http.method,
                op.http.path,
            )
            assert entry["http"]["params"] == {p.wire: p.http for p in op.params}
            assert entry["http"]["result"] == op.http.ts_result
