"""The CPU sweep's figures (``plots/benchmark/*.png``, shown by ``dvc plots show``).

Attention time and memory against length (every implementation and round count, median
with min-max bars), training-step memory against depth, training tokens/s against the
peers, and the peak memory of the longest-sequence search against its budget. PNG only:
``dvc plots show`` renders images, not PDFs; the report draws its own vector figures from
``metrics/benchmark.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reformer.benchmarks.defaults import PEER_NAMES
from repro.benchmarking import find_entry

__all__ = ["make_plots"]

_STYLE = {
    "full": ("SDPA (full)", "black", "-"),
    "lsh": ("ours LSH", None, "-"),
    "reformer_pytorch": ("reformer-pytorch", None, "--"),
    "hf_transformers": ("HF transformers", None, ":"),
}
_ROUND_COLORS = {1: "tab:blue", 2: "tab:orange", 4: "tab:green", 8: "tab:red"}


def _save(fig: Any, plots: Path, name: str) -> list[str]:
    # PNG only: `dvc plots show` renders images, not PDFs; the report draws its own vector
    # figures from metrics/benchmark.json.
    path = plots / f"{name}.png"
    fig.savefig(path, dpi=150, bbox_inches="tight")
    return [str(path)]


def make_plots(report: dict[str, Any], plots: Path) -> list[str]:
    """Matplotlib figures (PNG, TrueType fonts) of every measured section; the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams.update({"pdf.fonttype": 42, "ps.fonttype": 42, "font.size": 9})
    plots.mkdir(parents=True, exist_ok=True)
    written: list[str] = []

    if "attention" in report:
        att = report["attention"]
        tokens = att["settings"]["tokens_per_step"]
        for metric, ylabel, name in (
            ("time_per_step_s", f"seconds per step ({tokens} tokens)", "attention_time"),
            ("peak_rss_bytes", "peak RSS growth per step (MiB)", "attention_memory"),
        ):
            fig, ax = plt.subplots(figsize=(7.2, 4.2))
            series: dict[tuple, list] = {}
            for e in att["results"]:
                if e.get("status") == "ok" and e.get(metric):
                    series.setdefault((e["implementation"], e["n_hashes"]), []).append(e)
            for (impl, r), entries in series.items():
                label, color, ls = _STYLE[impl]
                color = color or _ROUND_COLORS.get(r)
                x = [e["length"] for e in entries]
                scale = 1 / 2**20 if metric == "peak_rss_bytes" else 1.0
                med = [e[metric]["median"] * scale for e in entries]
                lo = [m - e[metric]["min"] * scale for m, e in zip(med, entries, strict=True)]
                hi = [e[metric]["max"] * scale - m for m, e in zip(med, entries, strict=True)]
                ax.errorbar(
                    x,
                    med,
                    yerr=[lo, hi],
                    color=color,
                    ls=ls,
                    marker="o",
                    ms=3,
                    capsize=2,
                    label=label if r is None else f"{label}-{r}",
                )
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("sequence length")
            ax.set_ylabel(ylabel)
            ax.set_title("Attention forward + backward (median, min-max)")
            ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
            ax.grid(alpha=0.3)
            written += _save(fig, plots, name)
            plt.close(fig)

    if "depth" in report:
        fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
        for model, color in (("reformer", "tab:blue"), ("transformer", "tab:red")):
            entries = [
                e
                for e in report["depth"]["results"]
                if e["model"] == model and e.get("status") == "ok"
            ]
            x = [e["n_layers"] for e in entries]
            axes[0].plot(
                x, [e["saved_bytes"] / 2**20 for e in entries], "o-", color=color, label=model
            )
            med = [e["peak_rss_bytes"]["median"] / 2**20 for e in entries]
            err = [
                [m - e["peak_rss_bytes"]["min"] / 2**20 for m, e in zip(med, entries, strict=True)],
                [e["peak_rss_bytes"]["max"] / 2**20 - m for m, e in zip(med, entries, strict=True)],
            ]
            axes[1].errorbar(x, med, yerr=err, fmt="o-", color=color, capsize=2, label=model)
        axes[0].set_ylabel("saved for backward (MiB)")
        axes[1].set_ylabel("peak RSS growth (MiB)")
        for ax in axes:
            ax.set_xlabel("layers")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.suptitle("Training-step memory against depth")
        fig.tight_layout()
        written += _save(fig, plots, "depth_memory")
        plt.close(fig)

    if "lm" in report:
        fig, ax = plt.subplots(figsize=(6, 3.4))
        lengths = report["lm"]["settings"]["lengths"]
        impls = ("ours", *PEER_NAMES)
        width = 0.8 / len(impls)
        for i, impl in enumerate(impls):
            xs, ys, lo, hi = [], [], [], []
            for j, length in enumerate(lengths):
                e = find_entry(report["lm"]["results"], implementation=impl, length=length)
                if e and e.get("status") == "ok":
                    tps = e["tokens_per_s"]
                    xs.append(j + (i - (len(impls) - 1) / 2) * width)
                    ys.append(tps["median"])
                    lo.append(tps["median"] - tps["min"])
                    hi.append(tps["max"] - tps["median"])
            ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, label=impl)
        ax.set_xticks(range(len(lengths)), [str(v) for v in lengths])
        ax.set_xlabel("sequence length")
        ax.set_ylabel("training tokens / s")
        ax.set_title("Small reversible LSH-2 language model")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3, axis="y")
        written += _save(fig, plots, "lm_tokens_per_s")
        plt.close(fig)

    tries = [tr for tr in report.get("longest", {}).get("tries", []) if tr.get("status") == "ok"]
    if tries:  # a log axis needs at least one measured length
        fig, ax = plt.subplots(figsize=(5.5, 3.4))
        ax.plot(
            [tr["length"] for tr in tries],
            [tr["peak_rss_bytes"] / 1e9 for tr in tries],
            "o-",
            label="peak RSS (whole process)",
        )
        budget = float(report["longest"]["settings"]["memory_limit_gb"])
        ax.axhline(budget, color="red", ls="--", label="budget")
        failed = report["longest"].get("first_failure")
        if failed is not None:  # the try that ended the search, on the budget line
            ax.plot([failed["length"]], [budget], "rx", ms=9, label=f"{failed['length']:,}: "
                    f"{failed.get('status', 'over the budget')}")  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_xlabel("sequence length (batch 1)")
        ax.set_ylabel("GB")
        ax.set_title("One training step: 6 layers, LSH-1, reversible")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        written += _save(fig, plots, "longest")
        plt.close(fig)
    return written
