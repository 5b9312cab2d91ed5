"""The dashboard's timeline module (web/dashboard/timeline.py) checked under CPython and
MicroPython alike: plain asserts, run by ``main()``.

Under MicroPython (``tests/unit/test_page_client_micropython.py``) the dashboard's folder is
mounted at ``/dashboard`` and this folder at ``/page``.
"""

import sys

sys.path.append("/dashboard")
sys.path.append("/page")

try:
    import timeline  # type: ignore[import-not-found]  # MicroPython: the mounted page module
    from fake_page import FakeDocument  # type: ignore[import-not-found]
except ImportError:  # CPython, from the repository
    from tests.unit.page.fake_page import FakeDocument
    from tests.unit.page.load_page_module import load_dashboard_module

    timeline = load_dashboard_module("timeline")


def near(a: float, b: float) -> bool:
    """Tell whether two floats are equal but for rounding."""
    return abs(a - b) < 1e-9


def check_layout() -> None:
    """Bars sit on the run's time axis; an unfinished step runs to now; none is invisible."""
    spans = [
        ("fetch", "completed", 1000.0, 2000.0),
        ("parse", "completed", 2000.0, 4000.0),
        ("save", "failed", 4000.0, 5000.0),
    ]
    total, bars = timeline.layout(spans, 9999.0)
    assert total == 4000.0
    assert [(b["name"], b["status"], b["x"], b["width"], b["ms"]) for b in bars] == [
        ("fetch", "completed", 0.0, 0.25, 1000.0),
        ("parse", "completed", 0.25, 0.5, 2000.0),
        ("save", "failed", 0.75, 0.25, 1000.0),
    ]
    total, bars = timeline.layout([("a", "completed", 0.0, 0.0), ("b", "leased", 0.0, None)], 1e4)
    assert total == 1e4 and near(bars[0]["width"], 0.005) and bars[1]["width"] == 1.0
    assert timeline.layout([], 5.0) == (0.0, [])
    _, late = timeline.layout([("a", "completed", 0.0, 100.0), ("b", "completed", 100.0, 100.0)], 0)
    assert near(late[1]["x"] + late[1]["width"], 1.0)  # moved back inside the axis


def check_durations() -> None:
    """Durations read as a person says them."""
    cases = [(0, "0 ms"), (999.9, "999 ms"), (2400, "2.4 s"), (185_000, "3 min 5 s")]
    for ms, text in cases:
        assert timeline.duration_text(ms) == text, (ms, timeline.duration_text(ms))


def check_svg() -> None:
    """The SVG has a named bar per step, drawn again from scratch each time."""
    svg = FakeDocument().createElement("svg")
    spans = [("fetch", "completed", 0.0, 1000.0), ("save", "failed", 1000.0, 2000.0)]
    timeline.draw(svg, spans, 0.0)
    width = timeline.LABEL + timeline.WIDTH
    assert svg.getAttribute("viewBox") == "0 0 " + str(width) + " " + str(2 * timeline.ROW)
    assert svg.dataset.total == "2000"
    assert [(g.dataset.step, g.dataset.status) for g in svg.children] == [
        ("fetch", "completed"),
        ("save", "failed"),
    ]
    name, rect = svg.children[1].children
    assert name.textContent == "save"
    assert float(rect.getAttribute("x")) == timeline.LABEL + timeline.WIDTH / 2
    assert float(rect.getAttribute("width")) == timeline.WIDTH / 2
    assert rect.children[0].textContent == "save: failed, 1.0 s"
    timeline.draw(svg, [], 0.0)
    assert svg.children == [] and svg.getAttribute("height") == str(timeline.ROW)


async def main() -> None:
    """Run every check."""
    check_layout()
    check_durations()
    check_svg()
    print("timeline checked", sys.implementation.name)
