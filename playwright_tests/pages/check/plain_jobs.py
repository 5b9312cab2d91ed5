"""A job module for the check page boot.html that does not import pydantic at its top level.

A normal boot of it reaches ``ready`` without loading pydantic_core's extension module; its
job's first trigger validates its input with pydantic, which loads it then
(``_durably/runtime/engine_site.mjs`` ``installEngineSite``). The step validates with
pydantic_core itself, so the job's output says the late-loaded extension works.
"""

from __future__ import annotations

from durably_web import StepContext, define_job


@define_job(name="plain", input=dict)
async def plain(step: StepContext, payload: dict[str, object]) -> dict[str, object]:
    """Return a number pydantic_core parsed from text."""

    def parse() -> int:
        from pydantic_core import SchemaValidator, core_schema

        parsed: int = SchemaValidator(core_schema.int_schema()).validate_python("41") + 1
        return parsed

    return {"parsed": await step.run("parse", parse)}
