"""A CSV import as a durable job: parse once, then import in checkpointed batches.

Run it, press Ctrl-C halfway, and run the same command again: it resumes at the first batch
that was not imported, without importing anything twice::

    durably-web run examples/import_csv.py:import_csv --input '{"rows": 200}'
    durably-web runs
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field

from durably_web import StepContext, define_job


class ImportCsvInput(BaseModel):
    """How much to import, and how slowly (so the progress is visible)."""

    rows: int = Field(200, ge=0, le=1_000_000)
    batch: int = Field(20, ge=1)
    delay: float = Field(0.05, ge=0, description="seconds each batch takes")


class ImportCsvOutput(BaseModel):
    """What the import did."""

    imported: int
    batches: int
    total_amount: int


def generate_csv(rows: int) -> str:
    """Return a CSV document of ``rows`` made-up orders (stands in for reading a file)."""
    lines = ["id,customer,amount"]
    lines += [f"{i},customer-{i % 17},{(i * 37) % 500}" for i in range(1, rows + 1)]
    return "\n".join(lines)


def parse_csv(text: str) -> list[dict[str, str | int]]:
    """Parse the CSV into row dicts with an integer amount."""
    header, *lines = text.splitlines()
    names = header.split(",")
    rows: list[dict[str, str | int]] = []
    for line in lines:
        row: dict[str, str | int] = dict(zip(names, line.split(","), strict=True))
        row["amount"] = int(row["amount"])
        rows.append(row)
    return rows


@define_job(name="import-csv", input=ImportCsvInput, output=ImportCsvOutput)
async def import_csv(step: StepContext, payload: ImportCsvInput) -> ImportCsvOutput:
    """Parse the rows in one step, then import them in one checkpointed step per batch.

    On a resumed run the job runs again from the top, but each completed step returns its
    stored result at once: only the batches that were not imported yet do any work. Logs are
    written inside the steps so a resumed run does not repeat them.
    """

    def parse() -> list[dict[str, str | int]]:
        parsed = parse_csv(generate_csv(payload.rows))
        step.log.info("Parsed CSV", {"rows": len(parsed)})
        return parsed

    rows = await step.run("parse", parse)
    batches = [rows[i : i + payload.batch] for i in range(0, len(rows), payload.batch)]
    total = 0
    for number, batch in enumerate(batches, start=1):

        async def import_batch(batch: list[dict[str, int]] = batch, number: int = number) -> int:
            await asyncio.sleep(payload.delay)  # stands in for writing to a real database
            if number % 5 == 0:
                step.log.info(f"Imported batch {number}/{len(batches)}", {"rows": len(batch)})
            return sum(row["amount"] for row in batch)

        total += await step.run(f"import-batch-{number}", import_batch)
        done = min(number * payload.batch, len(rows))
        step.progress(done, len(rows), f"Imported batch {number}/{len(batches)}")
    step.log.info("Import complete", {"imported": len(rows), "total_amount": total})
    return ImportCsvOutput(imported=len(rows), batches=len(batches), total_amount=total)
