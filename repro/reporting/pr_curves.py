"""The pull-request comment's figure: both sides' training curves in one PNG.

Reads the ``curves/<experiment>.csv`` files of two metrics folders
(:mod:`repro.reporting.pr_comment`): a row of panels per experiment, a panel per quantity
(``train_loss`` and ``valid_loss`` share the panel ``loss``), the base dashed and the head
solid. The PNG is uploaded as a workflow artifact, which the comment links (GitHub does not
show images from a workflow inline).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path

__all__ = ["curve_panels", "plot", "read_curves"]


def read_curves(path: Path) -> dict[str, list[float]]:
    """Column -> values of a curves CSV (empty cells are NaN: not every step has them all)."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = list(rows[0]) if rows else []
    return {c: [float(r[c]) if r[c] not in ("", None) else math.nan for r in rows] for c in columns}


def curve_panels(curves: Mapping[str, list[float]]) -> dict[str, list[str]]:
    """Panel name -> columns: ``train_loss`` and ``valid_loss`` share the panel ``loss``.

    Example:
        >>> curve_panels({"step": [], "train_loss": [], "lr": [], "valid_loss": []})
        {'loss': ['train_loss', 'valid_loss'], 'lr': ['lr']}
    """
    panels: dict[str, list[str]] = {}
    for column in list(curves)[1:]:  # the first column is the x axis (step)
        name = column.split("_", 1)[1] if column.startswith(("train_", "valid_")) else column
        panels.setdefault(name, []).append(column)
    return panels


def plot(base_dir: str | Path, head_dir: str | Path, out: str | Path) -> Path:
    """Both sides' training curves into one PNG: a row per experiment, a panel per quantity.

    Base curves are dashed, head curves solid; an experiment on one side only has one style.
    """
    from repro.reporting.figures import pyplot

    sides = {"base": Path(base_dir) / "curves", "head": Path(head_dir) / "curves"}
    names = sorted({p.stem for folder in sides.values() for p in folder.glob("*.csv")})
    if not names:
        raise ValueError(f"plot: no curves/*.csv in {base_dir} or {head_dir}")
    curves = {
        (side, name): read_curves(folder / f"{name}.csv")
        for side, folder in sides.items()
        for name in names
        if (folder / f"{name}.csv").is_file()
    }
    # per experiment: panel -> the columns it shows, over both sides
    layout: dict[str, dict[str, set[str]]] = {name: {} for name in names}
    x_name = {}
    for (_, name), table in curves.items():
        x_name[name] = next(iter(table), "step")
        for panel, columns in curve_panels(table).items():
            layout[name].setdefault(panel, set()).update(columns)
    width = max(1, *(len(panels) for panels in layout.values()))
    plt = pyplot()
    fig, axes = plt.subplots(
        len(names), width, figsize=(3.2 * width, 2.4 * len(names)), squeeze=False
    )
    for row, name in enumerate(names):
        for col, (panel, columns) in enumerate(sorted(layout[name].items())):
            ax = axes[row][col]
            for side, style in (("base", "--"), ("head", "-")):
                table = curves.get((side, name), {})
                for i, column in enumerate(sorted(columns)):  # a column keeps its colour
                    if column in table:
                        label = f"{side} {column}"
                        ax.plot(
                            table[x_name[name]], table[column], style, color=f"C{i}", label=label
                        )
            ax.set(title=f"{name}: {panel}", xlabel=x_name[name])
            ax.legend()
        for col in range(len(layout[name]), width):
            axes[row][col].axis("off")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return out
