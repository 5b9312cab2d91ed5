from __future__ import annotations

import pytest

from tests import jobs


@pytest.fixture(autouse=True)
def recorder() -> jobs.Recorder:
    """A fresh recorder of step executions for each test."""
    jobs.recorder = jobs.Recorder()
    return jobs.recorder
