"""Line charts of the Table 2 experiments, drawn in LaTeX's own ``picture`` environment.

An entry of ``tables:`` in ``report/claims.yaml`` of type ``chart`` becomes
``report/generated/<name>.tex``: a ``picture`` (no package beyond LaTeX itself and
``xcolor``, which the report loads) that the report's text puts in a ``figure``. The x axis
holds evenly spaced categories (rounds, bucket counts, models), the y axis the metric::

    - type: chart
      name: fig-rounds
      x_label: evaluated with
      x: [LSH-1, LSH-2, LSH-4, LSH-8, Full]
      y_label: accuracy (%)
      y_range: [0, 100]
      scale: 100                 # a run's value x 100; `values` are already in the unit
      series:
        - {label: paper, values: [52.5, 76.9, 92.5, 94.8, 100]}
        - {label: "ours, 1 head", experiment: dup-full-h1,
           metrics: [eval/accuracy_lsh1, eval/accuracy_lsh2, ...]}
        - {label: seeds, line: false,
           points: [[dup-full-s1, eval/accuracy_full], [dup-lsh4-s1, eval/accuracy_lsh4]]}

A point whose run or key does not exist is left out (never drawn as a number); a series
with no point is listed in the legend as not run. Consecutive points are joined by straight
segments (``\\qbezier`` with the control point in the middle) unless ``line: false``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reformer.report_grids import spec_error
from repro.reporting import latex_escape, run_metric
from repro.tracking.reader import Run

__all__ = ["Chart", "chart_latex", "series_points"]

#: xcolor's base colours and math-mode markers, one pair per series in order
COLOURS = ("black", "blue", "red", "teal", "orange", "violet", "brown", "gray")
MARKERS = (r"\bullet", r"\circ", r"\times", r"\ast", r"\diamond", r"\star", "+", r"\triangle")
WIDTH, HEIGHT = 80.0, 45.0  # plot area in mm


@dataclass(frozen=True)
class Chart:
    """A chart's axes and series (see the module docstring).

    Example:
        >>> c = Chart.from_spec({"type": "chart", "x": ["a", "b"], "series": [
        ...     {"label": "paper", "values": [1, 2]}]})
        >>> c.y_range, c.series[0]["values"]
        ((0.0, 100.0), [1, 2])
        >>> Chart.from_spec({"x": ["a"], "series": [{"label": "s", "values": [1, 2]}]})
        Traceback (most recent call last):
        ...
        ValueError: series[0].values=[1, 2] is not allowed (a list of 1 numbers or nulls)
    """

    x: tuple[str, ...]
    series: tuple[dict, ...]
    x_label: str = ""
    y_label: str = ""
    y_range: tuple[float, float] = (0.0, 100.0)
    y_ticks: int = 5
    scale: float = 100.0

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Chart:
        """Validate an entry of ``tables:`` (one-line ``ValueError`` naming the bad key)."""
        x = spec.get("x")
        if not isinstance(x, list) or not x:
            raise spec_error("x", x, "a list of category labels")
        series = spec.get("series")
        if not isinstance(series, list) or not series:
            raise spec_error("series", series, "a list of {label, values|metrics|points}")
        for i, s in enumerate(series):
            _check_series(s, i, len(x))
        lo, hi = spec.get("y_range", [0, 100])
        if not all(isinstance(v, int | float) for v in (lo, hi)) or not lo < hi:
            raise spec_error("y_range", spec.get("y_range"), "[low, high] with low < high")
        return cls(
            x=tuple(str(v) for v in x),
            series=tuple(dict(s) for s in series),
            x_label=str(spec.get("x_label", "")),
            y_label=str(spec.get("y_label", "")),
            y_range=(float(lo), float(hi)),
            y_ticks=int(spec.get("y_ticks", 5)),
            scale=float(spec.get("scale", 100.0)),
        )


def _check_series(s: Any, i: int, n: int) -> None:
    at = f"series[{i}]"
    if not isinstance(s, Mapping) or not isinstance(s.get("label"), str):
        raise spec_error(at, s, "{label: <text>, values|metrics|points: ...}")
    kinds = [k for k in ("values", "metrics", "points") if k in s]
    if len(kinds) != 1:
        raise spec_error(at, sorted(s), "exactly one of values, metrics (with experiment), points")
    value = s[kinds[0]]
    ok = isinstance(value, list) and len(value) == n
    if kinds[0] == "values":
        ok = ok and all(v is None or isinstance(v, int | float) for v in value)
        allowed = f"a list of {n} numbers or nulls"
    elif kinds[0] == "metrics":
        ok = ok and isinstance(s.get("experiment"), str) and all(isinstance(v, str) for v in value)
        allowed = f"a list of {n} summary keys, with experiment: <name>"
    else:
        ok = ok and all(
            v is None
            or (isinstance(v, list) and len(v) == 2 and all(isinstance(p, str) for p in v))
            for v in value
        )
        allowed = f"a list of {n} [experiment, key] pairs or nulls"
    if not ok:
        raise spec_error(f"{at}.{kinds[0]}", value, allowed)


def series_points(c: Chart, s: Mapping[str, Any], runs: Mapping[str, Run]) -> list[float | None]:
    """The series' y value at each x category (``None``: no run or no such key).

    Example:
        >>> c = Chart.from_spec({"x": ["a", "b"], "series": [{"label": "p", "values": [1, None]}]})
        >>> series_points(c, c.series[0], {})
        [1.0, None]
    """
    if "values" in s:
        return [None if v is None else float(v) for v in s["values"]]
    pairs = (
        [(s["experiment"], key) for key in s["metrics"]]
        if "metrics" in s
        else [tuple(p) if p else None for p in s["points"]]
    )
    out: list[float | None] = []
    for pair in pairs:
        value = None if pair is None else run_metric(runs, pair[0], pair[1])[0]
        out.append(None if value is None else value * c.scale)
    return out


def _xy(c: Chart, i: int, y: float) -> tuple[float, float]:
    lo, hi = c.y_range
    clipped = min(max(y, lo), hi)
    return WIDTH * (i + 0.5) / len(c.x), HEIGHT * (clipped - lo) / (hi - lo)


def chart_latex(c: Chart, runs: Mapping[str, Run]) -> str:
    """The chart as a ``picture`` (size ``WIDTH`` x ``HEIGHT`` mm plus axes and legend)."""
    lo, hi = c.y_range
    out = [
        r"\setlength{\unitlength}{1mm}",
        rf"\begin{{picture}}({WIDTH + 45:g},{HEIGHT + 14:g})(-12,-12)",
    ]
    out.append(r"{\color{lightgray}")
    for k in range(c.y_ticks):
        y = HEIGHT * k / (c.y_ticks - 1)
        out.append(rf"\put(0,{y:.2f}){{\line(1,0){{{WIDTH:g}}}}}")
    out.append("}")
    for k in range(c.y_ticks):
        y = HEIGHT * k / (c.y_ticks - 1)
        tick = lo + (hi - lo) * k / (c.y_ticks - 1)
        out.append(rf"\put(-1.5,{y:.2f}){{\makebox(0,0)[r]{{\scriptsize {tick:g}}}}}")
    out.append(rf"\put(0,0){{\line(0,1){{{HEIGHT:g}}}}}")
    for i, label in enumerate(c.x):
        x, _ = _xy(c, i, lo)
        out.append(rf"\put({x:.2f},-2){{\makebox(0,0)[t]{{\scriptsize {latex_escape(label)}}}}}")
    out.append(rf"\put({WIDTH / 2:g},-8){{\makebox(0,0)[t]{{\small {latex_escape(c.x_label)}}}}}")
    out.append(
        rf"\put(-10,{HEIGHT / 2:g}){{\makebox(0,0){{\rotatebox{{90}}{{\small "
        rf"{latex_escape(c.y_label)}}}}}}}"
    )
    out.append(r"\thicklines")
    for j, s in enumerate(c.series):
        colour, marker = COLOURS[j % len(COLOURS)], MARKERS[j % len(MARKERS)]
        ys = series_points(c, s, runs)
        points = [_xy(c, i, y) for i, y in enumerate(ys) if y is not None]
        out.append(rf"{{\color{{{colour}}}")
        if s.get("line", True):
            for (x1, y1), (x2, y2) in zip(points, points[1:], strict=False):
                xm, ym = (x1 + x2) / 2, (y1 + y2) / 2
                out.append(rf"\qbezier({x1:.2f},{y1:.2f})({xm:.2f},{ym:.2f})({x2:.2f},{y2:.2f})")
        for x, y in points:
            out.append(rf"\put({x:.2f},{y:.2f}){{\makebox(0,0){{${marker}$}}}}")
        legend_y = HEIGHT - 5 * j
        label = latex_escape(s["label"]) + ("" if points else " (not run)")
        out.append(rf"\put({WIDTH + 3:g},{legend_y:g}){{\makebox(0,0){{${marker}$}}}}")
        out.append(
            rf"\put({WIDTH + 6:g},{legend_y:g}){{\makebox(0,0)[l]{{\scriptsize {label}}}}}}}"
        )
    out.append(r"\end{picture}")
    return "\n".join(out) + "\n"
