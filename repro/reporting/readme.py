"""The README's results section, generated from the pipeline's metrics files.

The section sits between the markers ``<!-- results:start -->`` and ``<!-- results:end -->``
of ``README.md``; :func:`update_readme` rewrites what lies between them. It holds, in order:

- for each entry of ``report/claims.yaml``'s ``tables``, the Markdown that the paper's
  ``readme_tables(spec, metrics)`` plug-in returns (``metrics``: every
  ``metrics/<experiment>.json`` that ``evaluate@<experiment>`` wrote; the paper's and other
  reproductions' numbers come from the claims file);
- the benchmark headline: the ``targets`` rows of ``metrics/benchmark.json``
  (:func:`repro.reporting.benchmark.targets_markdown`).

Nothing is typed by hand, so a stale README is detectable: ``python pipelines/results.py
--check`` fails when the section differs from what the metrics say.

Example:
    >>> import tempfile, pathlib, types
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "report").mkdir(); (root / "metrics").mkdir()
    >>> _ = (root / "report" / "claims.yaml").write_text("claims: []\\ntables: [{type: n}]\\n")
    >>> _ = (root / "metrics" / "a.json").write_text('{"n": 3}')
    >>> paper = types.SimpleNamespace(
    ...     readme_tables=lambda spec, metrics: f"{spec['type']}: {metrics['a']['n']}")
    >>> render_results(root, paper)
    'n: 3'
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from repro.io import atomic_write_text
from repro.reporting.benchmark import targets_markdown
from repro.reporting.claims import load_claims
from repro.reporting.saved_runs import load_saved_metrics, qualified

__all__ = [
    "END",
    "START",
    "load_metrics",
    "read_section",
    "render_results",
    "update_readme",
]

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


def render_results(
    root: str | os.PathLike[str] = ".", paper: Any = None, profile: str | None = None
) -> str:
    """The Markdown that belongs between the README markers, from ``root``'s metrics files.

    The tables see each ``metrics/<experiment>.json`` under its experiment's name, and the
    metrics that other profiles saved (``results/<profile>.metrics.json``, see
    :mod:`repro.reporting.saved_runs`) as ``<profile>/<experiment>``.

    Args:
        root: the project root (``report/claims.yaml`` and ``metrics/`` under it).
        paper: the :class:`repro.paper.Paper` whose ``readme_tables`` renders the claims
            file's ``tables``; ``None``, or a paper without the plug-in, shows none of them.
        profile: the profile in ``params.yaml``: its own metrics also answer to
            ``<profile>/<experiment>`` (not its saved copy).

    Raises:
        ValueError: one line: a bad claims or metrics file, or a table the paper refuses.
    """
    root = Path(root)
    claims_file = root / "report" / "claims.yaml"
    claims = load_claims(claims_file)
    own = load_metrics(root / "metrics")
    metrics = {**load_saved_metrics(root, current_profile=profile), **own}
    if profile:
        metrics.update({qualified(profile, exp): values for exp, values in own.items()})
    parts = []
    hook = getattr(paper, "readme_tables", None)
    for i, spec in enumerate(claims.tables if hook is not None else ()):
        try:
            text = hook(spec, metrics)
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{claims_file}: tables[{i}] (type {spec['type']!r}): {exc}") from None
        if text:
            parts.append(text)
    bench_path = root / "metrics" / "benchmark.json"
    if bench_path.exists():
        try:
            bench = json.loads(bench_path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(
                f"{bench_path}: not valid JSON ({err.msg}, line {err.lineno})"
            ) from None
        table = targets_markdown(bench, str(bench_path)) if isinstance(bench, dict) else ""
        if table:
            parts.append(
                "Benchmark headline (`metrics/benchmark.json`, ratios measured in one run):\n\n"
                + table
            )
    return "\n\n".join(parts)


def read_section(readme: str | os.PathLike[str]) -> str:
    """The text between the results markers of ``readme``, stripped.

    Raises:
        ValueError: the README lacks one of the markers (one line, naming the file).
    """
    path = Path(readme)
    text = path.read_text()
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{path}: needs the markers {START} and {END} (in that order)")
    return text[start + len(START) : end].strip()


def update_readme(readme: str | os.PathLike[str], section: str) -> bool:
    """Replace the text between the results markers of ``readme``; True if it changed.

    Raises:
        ValueError: the README lacks one of the markers (one line, naming the file).
    """
    path = Path(readme)
    read_section(path)  # the markers exist, in order
    text = path.read_text()
    start, end = text.find(START), text.find(END)
    new = text[: start + len(START)] + "\n" + section.strip() + "\n" + text[end:]
    if new == text:
        return False
    atomic_write_text(path, new)
    return True
