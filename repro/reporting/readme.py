"""The README's results section, generated from the pipeline's metrics files.

The section sits between the markers ``<!-- results:start -->`` and ``<!-- results:end -->``
of ``README.md``; :func:`update_readme` rewrites what lies between them. Its numbers come from
``metrics/<experiment>.json`` (what ``evaluate@<experiment>`` wrote) and, for the benchmark
headline, from ``metrics/benchmark.json``; the paper's and the earlier reproduction's numbers
come from ``report/claims.yaml``. Nothing is typed by hand, so a stale README is detectable:
``python pipelines/results.py --check`` fails when the section differs from what the metrics say.

Example:
    >>> from repro.reporting import Table2
    >>> t2 = Table2(rows=({"label": "LSH-4", "experiment": "dup-lsh4"},),
    ...             columns=({"label": "Full", "name": "full"}, {"label": "LSH-4", "name": "lsh4"}),
    ...             paper=((0.8, 99.9),), fastai=((46.54, 99.77),))
    >>> print(table2_markdown(t2, {"dup-lsh4": {"accuracy": {"full": 0.01, "lsh4": 0.995}}}))
    | trained with | source | Full | LSH-4 |
    | --- | --- | --- | --- |
    | LSH-4 | paper | 0.8 | 99.9 |
    |  | fast.ai | 46.54 | 99.77 |
    |  | **ours** | **1.0** | **99.5** |
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from repro.io import atomic_write_text
from repro.reporting import Table2, benchmark_targets, load_claims, published

__all__ = ["START", "END", "load_metrics", "render_results", "table2_markdown", "update_readme"]

START = "<!-- results:start -->"
END = "<!-- results:end -->"


def load_metrics(metrics_dir: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Every ``<experiment>.json`` in ``metrics_dir``, keyed by experiment name.

    ``benchmark.json`` and ``budget.json`` are not experiments and are left out.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "dup-full.json").write_text('{"accuracy": {"full": 1.0}}')
        >>> load_metrics(d)
        {'dup-full': {'accuracy': {'full': 1.0}}}
    """
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(metrics_dir).glob("*.json")):
        if path.stem in {"benchmark", "budget"}:
            continue
        try:
            found[path.stem] = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None
    return found


def _cell(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def table2_markdown(table: Table2, metrics: Mapping[str, Mapping[str, Any]]) -> str:
    """Table 2 as Markdown: for each training row the paper's, fast.ai's and our accuracy (%).

    Args:
        table: the grid definition from ``report/claims.yaml`` (rows name experiments, columns
            name evaluation modes ``full``, ``lsh1`` ...).
        metrics: ``{experiment: metrics dict}``; ``metrics[exp]["accuracy"][mode]`` is a
            fraction in [0, 1]. A missing experiment or mode shows "—" (not run).
    """
    labels = [c["label"] for c in table.columns]
    lines = [
        "| trained with | source | " + " | ".join(labels) + " |",
        "| --- | --- | " + " | ".join("---" for _ in labels) + " |",
    ]
    for i, row in enumerate(table.rows):
        ours = metrics.get(row["experiment"], {}).get("accuracy", {})
        values = [ours.get(c["name"]) for c in table.columns]
        cells = [_cell(None if v is None else v * table.scale, table.digits) for v in values]
        lines.append(f"| {row['label']} | paper | " + " | ".join(map(published, table.paper[i])))
        lines[-1] += " |"
        lines.append("|  | fast.ai | " + " | ".join(map(published, table.fastai[i])) + " |")
        lines.append("|  | **ours** | " + " | ".join(f"**{c}**" for c in cells) + " |")
    return "\n".join(lines)


def _benchmark_markdown(bench: Mapping[str, Any]) -> str:
    """Headline ratios from the ``targets`` section that ``pipelines/benchmark.py`` computes."""
    rows = benchmark_targets(bench)
    if not rows:
        return ""
    lines = ["| benchmark target | measured | threshold | met |", "| --- | --- | --- | --- |"]
    lines += [f"| {r['target']} | {r['measured']} | {r['threshold']} | {r['met']} |" for r in rows]
    return "\n".join(lines)


def render_results(root: str | os.PathLike[str] = ".") -> str:
    """The Markdown that belongs between the README markers, from ``root``'s metrics files."""
    root = Path(root)
    claims = load_claims(root / "report" / "claims.yaml")
    metrics = load_metrics(root / "metrics")
    parts = []
    if claims.table2 is not None:
        run = [e for e in (r["experiment"] for r in claims.table2.rows) if e in metrics]
        parts.append(
            "Table 2 (duplication task, masked accuracy %, rows trained with, columns evaluated "
            f"with); ours: the committed profile's `metrics/*.json` ({len(run)} of "
            f"{len(claims.table2.rows)} rows run, — = not run).\n\n"
            + table2_markdown(claims.table2, metrics)
        )
    bench_path = root / "metrics" / "benchmark.json"
    if bench_path.exists():
        table = _benchmark_markdown(json.loads(bench_path.read_text()))
        if table:
            parts.append(
                "Benchmark headline (`metrics/benchmark.json`, ratios measured in one run):\n\n"
                + table
            )
    return "\n\n".join(parts)


def update_readme(readme: str | os.PathLike[str], section: str) -> bool:
    """Replace the text between the results markers of ``readme``; True if it changed.

    Raises:
        ValueError: the README lacks one of the markers (one line, naming the file).
    """
    path = Path(readme)
    text = path.read_text()
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{path}: needs the markers {START} and {END} (in that order)")
    new = text[: start + len(START)] + "\n" + section.strip() + "\n" + text[end:]
    if new == text:
        return False
    atomic_write_text(path, new)
    return True
