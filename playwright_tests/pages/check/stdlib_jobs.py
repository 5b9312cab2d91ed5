"""A job module for the check page boot.html that imports stdlib modules outside the worker's core.

``difflib`` and ``xml`` are in the rest of the stdlib zip (fetched on first import:
``durably_web.browser.stdlib``); ``email`` is in the core but ``email.mime`` is not.
``difflib`` is imported at the top, so a boot snapshot is taken after the rest was fetched.
``pydantic.v1`` is there too (``ON_FIRST_IMPORT`` of ``durably_web.sitebuild.engine_site``).
"""

from __future__ import annotations

import difflib

from durably_web import StepContext, define_job


@define_job(name="stdlib-rest", input=dict)
async def stdlib_rest(step: StepContext, payload: dict[str, object]) -> dict[str, object]:
    """Import from the rest of the stdlib inside a step; return what the modules computed."""

    def use() -> dict[str, object]:
        import xml.etree.ElementTree as ElementTree
        from email.mime.text import MIMEText

        from pydantic.v1 import BaseModel as ModelV1

        class Point(ModelV1):
            x: int

        return {
            "v1": Point(x="3").x,
            "ratio": difflib.SequenceMatcher(None, "durably", "durable").ratio(),
            "xml": ElementTree.fromstring("<a><b>1</b></a>").find("b").text,
            "mime": MIMEText("hi")["Content-Type"],
        }

    return await step.run("use", use)
