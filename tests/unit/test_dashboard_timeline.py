"""The dashboard's step timeline (web/dashboard/timeline.py) on CPython and MicroPython."""

from __future__ import annotations

from pathlib import Path

from tests.unit.page import timeline_check
from tests.unit.page.load_page_module import DASHBOARD
from tests.unit.test_page_client_micropython import run_under_micropython

HERE = Path(__file__).parent


def test_bars_sit_on_the_runs_time_axis() -> None:
    timeline_check.check_layout()


def test_durations_read_as_a_person_says_them() -> None:
    timeline_check.check_durations()


def test_the_svg_has_a_named_bar_per_step() -> None:
    timeline_check.check_svg()


def test_the_timeline_runs_under_micropython(tmp_path: Path) -> None:
    output = run_under_micropython(
        tmp_path,
        HERE / "page" / "timeline_check.py",
        f"{HERE / 'page'}:/page",
        f"{DASHBOARD}:/dashboard",
    )
    assert "timeline checked micropython" in output
