"""The demo page's jobs (index.html beside it): a CSV import in checkpointed batches.

The engine worker fetches this file, imports it and registers every job it defines. Each
batch is one ``step.run``: after a reload or a killed worker, the run resumes at the first
batch that was not checkpointed, and finished batches are not imported again.

To make that checkable, the import's side effects go to a *ledger*, a second SQLite database
(``/ledger.db`` in the same OPFS pool in the browser, ``ledger.db`` on CPython): the rows it
imported and one ``executions`` row per execution of a batch. ``audit_ledger`` reads it
back: a batch executed again *after* its checkpoint would be a bug; a batch executed twice
because its first execution was cut off before the checkpoint is allowed (at-least-once).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import BaseModel, Field, model_validator

from durably_web import StepContext, define_job
from durably_web.storage.connection import Connection

_LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS imported_rows (
    run_id TEXT NOT NULL, row_no INTEGER NOT NULL, customer TEXT NOT NULL, amount REAL NOT NULL,
    PRIMARY KEY (run_id, row_no)
);
CREATE TABLE IF NOT EXISTS failures (run_id TEXT NOT NULL, batch INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS executions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, batch INTEGER NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    run_id TEXT NOT NULL, batch INTEGER NOT NULL, execution INTEGER NOT NULL,
    PRIMARY KEY (run_id, batch)
);
"""
_ledger: Connection | None = None


def ledger() -> Connection:
    """Return the ledger database, opened on first use (via the worker's bridge in a browser)."""
    global _ledger
    if _ledger is None:
        try:
            import durably_sqlite  # type: ignore[import-not-found]  # the worker's JS bridge
        except ImportError:
            from durably_web.adapters.sqlite3 import SQLite3Connection

            _ledger = SQLite3Connection("ledger.db")
        else:
            from durably_web.adapters.pyodide import PyodideConnection

            wal = ("PRAGMA locking_mode = EXCLUSIVE", "PRAGMA journal_mode = WAL")
            _ledger = PyodideConnection(durably_sqlite, "/ledger.db", wal)
        _ledger.execute_script(_LEDGER_SCHEMA)
    return _ledger


class ImportCsvInput(BaseModel):
    """A CSV to import: the text of a chosen file, or ``rows`` generated rows."""

    filename: str = Field("generated.csv", min_length=1, max_length=200)
    rows: int = Field(0, ge=0, le=1_000_000, description="rows to generate when csv is empty")
    csv: str = Field("", max_length=20_000_000, description="the CSV text (header first)")
    batch_size: int = Field(100, ge=1, le=10_000)
    delay_ms: int = Field(0, ge=0, le=60_000, description="extra time each batch takes")
    fail_at_batch: int | None = Field(None, ge=0, description="fail this batch's first try")

    @model_validator(mode="after")
    def _has_rows(self) -> ImportCsvInput:
        if not self.csv and self.rows == 0:
            raise ValueError("give either csv (the file's text) or rows > 0")
        if self.csv:
            _check_csv(self.csv)
        return self


def _check_csv(text: str) -> None:
    """Refuse a CSV without one valid data row (``customer,...,amount``), saying why."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        raise ValueError("the CSV has no data rows: a header line, then one row per customer")
    for line in lines[1:]:
        fields = line.split(",")
        if len(fields) > 1 and fields[0].strip() and _is_number(fields[-1]):
            return
    raise ValueError(
        "the CSV has no valid rows: each row needs a customer first and a numeric amount "
        f"last, like 'alice,12.50' (row 2 is {lines[1][:40]!r})"
    )


def _is_number(text: str) -> bool:
    try:
        float(text.strip())
    except ValueError:
        return False
    return True


class ImportCsvOutput(BaseModel):
    """What the import did."""

    filename: str
    rows: int
    batches: int
    total_amount: float


def _records(payload: ImportCsvInput, start: int, stop: int) -> list[tuple[int, str, float]]:
    """Rows ``start`` to ``stop`` (0-based, data rows only) as (row_no, customer, amount)."""
    if not payload.csv:
        return [(i, f"customer-{i % 17}", float((i * 37) % 500)) for i in range(start, stop)]
    lines = [line for line in payload.csv.splitlines() if line.strip()][1:]
    out = []
    for i in range(start, min(stop, len(lines))):
        fields = lines[i].split(",")
        amount = fields[-1].strip() if len(fields) > 1 else "0"
        try:
            value = float(amount)
        except ValueError:
            raise ValueError(f"row {i + 2}: amount {amount!r} is not a number") from None
        out.append((i, fields[0].strip(), value))
    return out


async def _import_batch(
    step: StepContext, payload: ImportCsvInput, batch: int, total: int
) -> dict[str, Any]:
    """Write one batch to the ledger; return what the checkpoint keeps."""
    if payload.delay_ms:
        await asyncio.sleep(payload.delay_ms / 1000)
    db = ledger()
    if batch == payload.fail_at_batch and not db.query(
        "SELECT 1 FROM failures WHERE run_id = ? AND batch = ?", (step.run_id, batch)
    ):
        db.execute("INSERT INTO failures VALUES (?, ?)", (step.run_id, batch))
        raise RuntimeError(f"batch {batch} failed on purpose (retry the run to continue)")
    start = batch * payload.batch_size
    records = _records(payload, start, min(start + payload.batch_size, total))
    with db.transaction():  # idempotent: a batch re-run after a crash rewrites the same rows
        for row_no, customer, amount in records:
            db.execute(
                "INSERT OR REPLACE INTO imported_rows VALUES (?, ?, ?, ?)",
                (step.run_id, row_no, customer, amount),
            )
        db.execute(
            "INSERT INTO executions (run_id, batch, at) VALUES (?, ?, ?)",
            (step.run_id, batch, time.time()),
        )
    execution = db.query("SELECT max(id) AS id FROM executions")[0]["id"]
    step.log.info(f"batch {batch} imported", {"rows": len(records), "execution": execution})
    return {"rows": len(records), "amount": sum(r[2] for r in records), "execution": execution}


@define_job(name="import-csv", input=ImportCsvInput, output=ImportCsvOutput)
async def import_csv(step: StepContext, payload: ImportCsvInput) -> ImportCsvOutput:
    """Count the rows once, then import them in one checkpointed step per batch."""

    def count() -> int:
        if not payload.csv:
            return payload.rows
        return max(0, sum(1 for line in payload.csv.splitlines() if line.strip()) - 1)

    total = await step.run("count", count)
    batches = (total + payload.batch_size - 1) // payload.batch_size
    done, amount, executions = 0, 0.0, {}
    for batch in range(batches):
        result = await step.run(
            f"batch-{batch}",
            lambda batch=batch: _import_batch(step, payload, batch, total),
        )
        done += result["rows"]
        amount += result["amount"]
        executions[batch] = result["execution"]
        step.progress(done, total, f"Imported {done} of {total} rows")

    def record_checkpoints() -> int:
        db = ledger()
        with db.transaction():
            for batch, execution in executions.items():
                db.execute(
                    "INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?)",
                    (step.run_id, batch, execution),
                )
        return len(executions)

    await step.run("record-checkpoints", record_checkpoints)
    return ImportCsvOutput(
        filename=payload.filename, rows=done, batches=batches, total_amount=amount
    )


class AuditInput(BaseModel):
    """The import run to audit."""

    run_id: str = Field(min_length=1)


@define_job(name="audit-ledger", input=AuditInput)
async def audit_ledger(step: StepContext, payload: AuditInput) -> dict[str, Any]:
    """Compare a finished import's executions with its checkpoints (see the module docstring)."""
    db = ledger()
    rows = db.query(
        "SELECT batch, id FROM executions WHERE run_id = ? ORDER BY id",
        (payload.run_id,),
    )
    checkpoints = {
        r["batch"]: r["execution"]
        for r in db.query(
            "SELECT batch, execution FROM checkpoints WHERE run_id = ?", (payload.run_id,)
        )
    }
    after = [r for r in rows if r["batch"] in checkpoints and r["id"] > checkpoints[r["batch"]]]
    imported = db.query(
        "SELECT count(*) AS n FROM imported_rows WHERE run_id = ?", (payload.run_id,)
    )[0]["n"]
    return {
        "batches": len(checkpoints),
        "executions": len(rows),
        "rerun_before_checkpoint": len(rows) - len(after) - len(checkpoints),
        "rerun_after_checkpoint": len(after),
        "rows_imported": imported,
    }


class BenchInput(BaseModel):
    """How many trivial checkpointed steps to run."""

    steps: int = Field(1000, ge=1, le=100_000)


@define_job(name="bench-steps", input=BenchInput)
async def bench_steps(step: StepContext, payload: BenchInput) -> dict[str, float]:
    """Run ``steps`` trivial steps; report checkpointed steps per second."""
    started = time.perf_counter()
    for i in range(payload.steps):
        await step.run(f"s{i}", lambda i=i: i)
    elapsed = time.perf_counter() - started
    return {"steps": payload.steps, "seconds": elapsed, "steps_per_s": payload.steps / elapsed}


jobs = {"import_csv": import_csv, "audit_ledger": audit_ledger, "bench_steps": bench_steps}
