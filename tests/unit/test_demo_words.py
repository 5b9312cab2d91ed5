"""The demo's words (web/demo/demo_form.py): refusals next to their fields, outputs as text.

The refusals are the demo job's real ones (web/demo/jobs.py in an in-process engine).
"""

from __future__ import annotations

import asyncio

from durably_web import create_durably, errors
from durably_web.client.values import Record
from tests.unit.page.load_page_module import WEB, load_page_module

words = load_page_module(WEB / "demo" / "demo_form.py")
demo_jobs = load_page_module(WEB / "demo" / "jobs.py")


async def outcome(payload: dict[str, object]) -> str | None:
    """The demo job's answer to ``payload``: its refusal's message, or None (taken)."""
    durably = create_durably("sqlite:///:memory:")
    durably.register({"import_csv": demo_jobs.import_csv})
    await durably.migrate()
    try:
        await durably.jobs.import_csv.trigger(payload)
    except errors.ValidationError as refused:
        return str(refused)
    finally:
        await durably.stop()
    return None


def refusal(payload: dict[str, object]) -> str:
    message = asyncio.run(outcome(payload))
    assert message is not None, f"{payload} was taken"
    return message


def test_each_problem_goes_next_to_its_field_in_plain_words() -> None:
    message = refusal({"rows": -1, "batch_size": 0, "delay_ms": 70_000})
    assert words.field_errors(message) == [
        ("rows", "must be at least 0"),
        ("batch", "must be at least 1"),
        ("delay", "must be at most 60000"),
    ]


def test_a_problem_of_the_whole_input_goes_to_the_field_it_is_about() -> None:
    nothing = refusal({"rows": 0})
    assert words.field_errors(nothing) == [
        ("rows", "give either csv (the file's text) or rows > 0")
    ]
    garbage = refusal({"csv": "name,amount\nnot a row\n"})
    [(field, text)] = words.field_errors(garbage)
    assert field == "file" and text.startswith("the CSV has no valid rows")
    assert "'not a row'" in text and "Value error" not in text


def test_a_csv_needs_one_valid_row() -> None:
    assert asyncio.run(outcome({"csv": "name,amount\njunk\nalice,12.50\n"})) is None
    assert "no data rows" in refusal({"csv": "name,amount\n"})
    assert "no valid rows" in refusal({"csv": "\x00\x01\x02,\x03\n\x04,x\n"})


def test_a_message_of_another_shape_stays_whole() -> None:
    assert words.field_errors("network_error: offline") == [("form", "network_error: offline")]


def test_outputs_read_as_sentences() -> None:
    output = Record({"filename": "a.csv", "rows": 12345, "batches": 124, "total_amount": 9876.5})
    assert words.output_text(output) == "12,345 rows imported in 124 batches, total 9,876.50"
    one = Record({"rows": 1, "batches": 1, "total_amount": 0.07})
    assert words.output_text(one) == "1 row imported in 1 batch, total 0.07"
    assert words.output_text(None) == ""
    assert words.thousands(0) == "0" and words.thousands(-1234567) == "-1,234,567"
