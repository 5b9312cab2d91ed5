"""The dashboard's step timeline: where each step's bar goes, and the SVG that draws them.

:func:`layout` is plain arithmetic (tested on CPython); :func:`draw` makes the SVG elements
(``<svg>`` of ``<g data-step data-status>`` rows: a ``<text>`` name, a ``<rect>`` bar and its
``<title>``). No chart library: a bar per step, placed on the run's time axis.

MicroPython-safe: no datetime (times arrive as milliseconds, parsed by the page).
"""

try:  # noqa: SIM105 - MicroPython has no contextlib.suppress
    from typing import Any
except ImportError:  # MicroPython: annotations are never evaluated there
    pass

SVG = "http://www.w3.org/2000/svg"
ROW = 22  # px per step
LABEL = 140  # px for the step names
WIDTH = 640  # the chart's drawing width (the SVG scales to its box)


def layout(spans: list[Any], now: float) -> tuple[float, list[dict[str, Any]]]:
    """Place each step on the run's time axis.

    Args:
        spans: ``(name, status, started_ms, ended_ms_or_None)`` per step, in step order.
        now: the time (ms) an unfinished step's bar runs to.

    Returns:
        The axis length in ms and, per step, ``name``, ``status``, ``x`` and ``width`` as
        fractions of the axis (0..1; a bar is never narrower than 0.5 %), and ``ms``.

    """
    if not spans:
        return 0.0, []
    start = min(span[2] for span in spans)
    ends = [span[3] if span[3] is not None else max(now, span[2]) for span in spans]
    total = max(max(ends) - start, 1.0)
    bars = []
    for index, span in enumerate(spans):  # (MicroPython's zip has no strict=)
        end = ends[index]
        x = (span[2] - start) / total
        width = max((end - span[2]) / total, 0.005)
        bars.append(
            {
                "name": span[0],
                "status": span[1],
                "x": min(x, 1.0 - width),
                "width": width,
                "ms": end - span[2],
            }
        )
    return total, bars


def duration_text(ms: float) -> str:
    """Return a duration as a person reads it: ``"850 ms"``, ``"2.4 s"``, ``"3 min 5 s"``."""
    if ms < 1000:
        return str(int(ms)) + " ms"
    if ms < 60_000:
        return str(round(ms / 1000, 1)) + " s"
    minutes = int(ms // 60_000)
    return str(minutes) + " min " + str(int((ms - minutes * 60_000) // 1000)) + " s"


def draw(svg: Any, spans: list[Any], now: float) -> None:
    """Draw the steps of ``spans`` (see :func:`layout`) into the ``<svg>`` element."""
    total, bars = layout(spans, now)
    document = svg.ownerDocument
    svg.replaceChildren()
    height = max(len(bars), 1) * ROW
    svg.setAttribute("viewBox", "0 0 " + str(LABEL + WIDTH) + " " + str(height))
    svg.setAttribute("height", str(height))
    for index, bar in enumerate(bars):
        group = document.createElementNS(SVG, "g")
        group.dataset.step = bar["name"]
        group.dataset.status = bar["status"]
        name = document.createElementNS(SVG, "text")
        name.setAttribute("x", "0")
        name.setAttribute("y", str(index * ROW + 15))
        name.textContent = bar["name"]
        rect = document.createElementNS(SVG, "rect")
        rect.setAttribute("x", str(LABEL + round(bar["x"] * WIDTH, 1)))
        rect.setAttribute("y", str(index * ROW + 4))
        rect.setAttribute("width", str(round(bar["width"] * WIDTH, 1)))
        rect.setAttribute("height", str(ROW - 8))
        rect.setAttribute("rx", "3")
        title = document.createElementNS(SVG, "title")
        title.textContent = bar["name"] + ": " + bar["status"] + ", " + duration_text(bar["ms"])
        rect.append(title)
        group.append(name, rect)
        svg.append(group)
    svg.dataset.total = str(int(total))
