"""The report's figures: matplotlib PDFs with embedded TrueType fonts, and their LaTeX.

Fonts are embedded as TrueType (``pdf.fonttype`` 42: selectable text, accepted by venues)
and the files carry no creation date, so the same runs give the same bytes and DVC sees no
change. Two kinds of figure are drawn here: the training curves of every run
(:func:`training_figure`) and a curve section of ``metrics/benchmark.json``
(:func:`curve_figure`, ``{"x_label", "x", "unit", "series": {name: [y|null]}}``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from repro.tracking.reader import Run

__all__ = ["curve_figure", "figure_tex", "pyplot", "save_figure", "training_figure"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend with the report's style (imported late)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "pdf.fonttype": 42,  # embedded TrueType: selectable text, accepted by venues
            "ps.fonttype": 42,
            "font.size": 9,
            "axes.titlesize": 9,
            "axes.labelsize": 9,
            "legend.fontsize": 8,
            "xtick.labelsize": 8,
            "ytick.labelsize": 8,
            "lines.linewidth": 1.4,
            "axes.grid": True,
            "grid.alpha": 0.3,
        }
    )
    return plt


def save_figure(fig: Any, path: Path, written: list[Path]) -> None:
    """Save ``fig`` to ``path`` (its suffix picks the format) and record it in ``written``."""
    # no creation date in the file: the same runs give the same bytes (DVC stays a no-op)
    fig.savefig(path, bbox_inches="tight", metadata={"CreationDate": None})
    written.append(path)


def figure_tex(graphic: str, caption: str, label: str, width: str = r"0.7\linewidth") -> str:
    r"""A floating figure that includes ``generated/<graphic>``.

    Args:
        graphic: the file name inside ``report/generated/``.
        caption: LaTeX (escape plain text first).
        label: the ``\label``.
        width: the ``\includegraphics`` width.

    Example:
        >>> print(figure_tex("fig-speed.pdf", "Speed.", "fig:speed"), end="")
        \begin{figure}[htbp]
        \centering
        \includegraphics[width=0.7\linewidth]{generated/fig-speed.pdf}
        \caption{Speed.}
        \label{fig:speed}
        \end{figure}
    """
    return (
        "\\begin{figure}[htbp]\n\\centering\n"
        f"\\includegraphics[width={width}]{{generated/{graphic}}}\n"
        f"\\caption{{{caption}}}\n\\label{{{label}}}\n\\end{{figure}}\n"
    )


def training_figure(
    run_rows: Sequence[tuple[str, str, Run | None]],
    out: Path,
    written: list[Path],
    curves: Mapping[str, Any],
) -> str:
    """Draw ``fig-training.pdf`` from the runs' histories; returns its LaTeX (or a note).

    Args:
        run_rows: ``(experiment, macro stem, run or None)`` per experiment of the profile.
        out: ``report/generated``.
        written: files written so far (the figure is appended).
        curves: the claims file's ``curves``; ``panels`` is a list of
            ``{"title", "keys": [history keys, the first one a run logs], "log_y"}``.
    """
    panels = curves.get("panels") or [
        {"title": "Training loss", "keys": ["train/loss"], "log_y": True},
        {"title": "Accuracy", "keys": ["valid/accuracy", "train/accuracy"], "log_y": False},
    ]
    present = [(exp, run) for exp, _, run in run_rows if run is not None]
    drawn: list[tuple[dict, list[tuple[str, str, list[int], list[float]]]]] = []
    for panel in panels:
        lines = []
        for exp, run in present:
            for key in panel["keys"]:  # the first key a run logs
                steps, values = run.series(key)
                pairs = [
                    (s, float(v))
                    for s, v in zip(steps, values, strict=True)
                    if isinstance(v, int | float)
                ]
                if pairs:
                    lines.append((exp, key, [p[0] for p in pairs], [p[1] for p in pairs]))
                    break
        if lines:
            drawn.append((panel, lines))
    if not drawn:
        return r"\emph{Training curves appear here once the experiments have run.}" + "\n"
    plt = pyplot()
    colour = {exp: f"C{i % 10}" for i, (exp, _) in enumerate(present)}  # same in every panel
    fig, axes = plt.subplots(1, len(drawn), figsize=(3.3 * len(drawn), 2.8), squeeze=False)
    for ax, (panel, lines) in zip(axes[0], drawn, strict=True):
        keys = sorted({key for _, key, _, _ in lines})
        for exp, _, steps, values in lines:
            ax.plot(steps, values, label=exp, color=colour[exp])
        if panel.get("log_y") and all(v > 0 for *_, vs in lines for v in vs):
            ax.set_yscale("log")
        ax.set_title(panel["title"])
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(" / ".join(keys))
    handles, labels = [], []
    for ax in axes[0]:  # one legend for all panels, above them, so it hides no curve
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 6), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    save_figure(fig, out / "fig-training.pdf", written)
    plt.close(fig)
    return figure_tex(
        "fig-training.pdf",
        r"Training curves of every run, read from the W\&B run histories.",
        "fig:training",
        width=r"\linewidth",
    )


def curve_figure(
    section: Mapping[str, Any], path: Path, written: list[Path], log_x: bool, log_y: bool
) -> bool:
    """Draw one curve section (a line per series, ``null`` points left out) into ``path``.

    Args:
        section: ``{"x_label": str, "x": [numbers], "unit": str, "series": {name: [y]}}``.
        path: the PDF to write.
        written: files written so far (the figure is appended).
        log_x: a log2 x axis with the x values as ticks (sequence lengths).
        log_y: a log10 y axis with 1-2-5 ticks.

    Returns:
        False (and nothing written) when the section has no x values or no series.
    """
    xs = section.get("x") or []
    series = section.get("series") or {}
    if not xs or not series:
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 3.0))
    for name, values in series.items():
        pairs = [(x, v) for x, v in zip(xs, values, strict=False) if isinstance(v, int | float)]
        if pairs:
            ax.plot(*zip(*pairs, strict=True), marker="o", markersize=3, label=str(name))
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    plain = FuncFormatter(lambda v, _: f"{v:g}")  # 1024 and 0.1, not 2^10 and 10^-1
    if log_x:
        ax.set_xscale("log", base=2)
        ax.set_xticks([x for x in xs if isinstance(x, int | float) and x > 0])
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(NullFormatter())
    if log_y:
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(str(section.get("x_label", "x")))
    ax.set_ylabel(str(section.get("unit", "")))
    # beside the axes, so the legend never hides a curve
    ax.legend(frameon=False, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    save_figure(fig, path, written)
    plt.close(fig)
    return True
