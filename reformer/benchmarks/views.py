"""What the report shows of the CPU sweep: curves that claims test, tables and figures.

:func:`derived` computes, from the measurements, the curve sections that the claims of
``report/claims.yaml`` read (``attention_time``: the paper's Figure 5; ``depth_memory``) and
the peers table; :func:`views` lists what the report's benchmark section shows, in the kit's
generic form (``{"tables": [...], "figures": [...]}``, see :mod:`repro.benchmarking`).
"""

from __future__ import annotations

from typing import Any

from reformer.benchmarks.attention_targets import every_peer_out_of_memory, out_of_memory
from reformer.benchmarks.defaults import PEER_NAMES
from repro.benchmarking import find_entry, median_of

__all__ = ["derived", "views"]

_SPEED_CAPTION = (
    "Time per training step of one attention layer (forward and backward) against sequence "
    "length at a fixed number of tokens per step, as in Figure 5 of the paper; from "
    "metrics/benchmark.json."
)
_MEMORY_CAPTION = (
    "Peak memory growth of one training step (activations and temporaries; the gradient "
    "buffers are kept between steps) against depth; from metrics/benchmark.json."
)
_ROOFLINE_CAPTION = (
    "Fraction of this machine's matmul rate (a 2048 x 2048 torch.mm with the same threads, "
    "measured in the same run) that one attention layer's forward and backward reach: "
    "FLOPs counted by FlopCounterMode (matrix products only) over the median step time; "
    "from metrics/benchmark.json."
)
_PEERS_CAPTION = (
    "Our LSH attention against the public implementations: seconds per forward and backward "
    "step of one causal layer, measured in one process; speedup is the faster peer's time "
    "over ours (a peer that is not run is over its time cap); of peak: the fraction of the "
    "measured matmul rate our layer reaches."
)


def views(report: dict[str, Any]) -> dict[str, Any]:
    """The report's benchmark section: Figure 5 and the depth figure (drawn by the kit from
    the curve sections, as vector PDFs), and the peers table."""
    figures = []
    if report.get("attention_time"):
        figures.append(
            {"curve": "attention_time", "log_x": True, "log_y": True}
            | {"caption": _SPEED_CAPTION, "label": "fig:speed"}
        )
    if report.get("attention_roofline"):
        figures.append(
            {"curve": "attention_roofline", "log_x": True}
            | {"caption": _ROOFLINE_CAPTION, "label": "fig:roofline"}
        )
    if report.get("depth_memory"):
        figures.append({"curve": "depth_memory", "caption": _MEMORY_CAPTION, "label": "fig:memory"})
    tables = []
    peers = report.get("peer_table")
    if peers:
        tables.append(
            {
                "caption": _PEERS_CAPTION,
                "label": "tab:peers",
                "columns": list(peers[0]),
                "rows": [list(row.values()) for row in peers],
            }
        )
    cores = report.get("machine", {}).get("cpu_count", "?")
    caption = (
        "The performance targets, each decided by ratios measured in one benchmark run on "
        f"this machine ({cores} CPU cores)."
    )
    return {"tables": tables, "figures": figures, "targets_caption": caption}


def derived(report: dict[str, Any]) -> dict[str, Any]:
    """The curves and the peers table, computed from the results (top-level report entries).

    ``attention_time``: the paper's Figure 5 (seconds per fwd+bwd step of one attention
    layer against length, ``tokens_per_step`` tokens per step; longer sequences, one per
    step, are scaled to that many tokens), full attention and our LSH with each round
    count. ``depth_memory``: peak RSS growth of one training step against depth.
    ``peer_table``: per length and round count, our time and the peers', with the speedup
    over the faster peer. A configuration that was skipped is ``None``.
    """
    out: dict[str, Any] = {}
    attention = report.get("attention")
    if attention:
        results = attention["results"]
        settings = attention["settings"]
        lengths = list(settings["lengths"])
        per = int(settings["tokens_per_step"])

        def per_step(entry: dict[str, Any] | None) -> float | None:
            # Beyond tokens_per_step the batch is 1 and a step holds more tokens: scale the
            # time to tokens_per_step tokens, so every point is time per the same work.
            t = median_of(entry, "time_s")
            return None if t is None else t * per / max(per, int(entry["tokens"]))

        series: dict[str, list[float | None]] = {
            "full": [
                per_step(find_entry(results, implementation="full", length=n)) for n in lengths
            ]
        }
        for r in settings["n_hashes"]:
            series[f"lsh{r}"] = [
                per_step(find_entry(results, implementation="lsh", length=n, n_hashes=r))
                for n in lengths
            ]
        out["attention_time"] = {
            "x_label": f"sequence length (time per {per} tokens)",
            "x": lengths,
            "unit": "s",
            "series": series,
        }
        roofline = _roofline(results, lengths, settings["n_hashes"])
        if roofline is not None:
            out["attention_roofline"] = roofline
        rows = []
        for n in lengths:
            for r in settings["n_hashes"]:
                lsh = find_entry(results, implementation="lsh", length=n, n_hashes=r)
                ours = median_of(lsh, "time_s")
                peer_s = {
                    peer: median_of(
                        find_entry(results, implementation=peer, length=n, n_hashes=r), "time_s"
                    )
                    for peer in PEER_NAMES
                }
                known = [t for t in peer_s.values() if t is not None]
                entries = {
                    peer: find_entry(results, implementation=peer, length=n, n_hashes=r)
                    for peer in PEER_NAMES
                }
                all_failed = every_peer_out_of_memory(list(entries.values()))
                if ours is None or not (known or all_failed):
                    continue
                cell = {
                    peer: "out of memory" if out_of_memory(entries[peer]) else _round(t)
                    for peer, t in peer_s.items()
                }
                rows.append(
                    {
                        "length": n,
                        "rounds": r,
                        "ours (s)": round(ours, 4),
                        "reformer-pytorch (s)": cell["reformer_pytorch"],
                        "HF transformers (s)": cell["hf_transformers"],
                        "speedup": round(min(known) / ours, 2) if known else "—",
                        "of peak": _round(lsh.get("peak_fraction") if lsh else None, digits=3),
                    }
                )
        if rows:
            out["peer_table"] = rows
    depth = report.get("depth")
    if depth:
        results = depth["results"]
        layers = list(depth["settings"]["layers"])
        out["depth_memory"] = {
            "x_label": "layers",
            "x": layers,
            "unit": "MB",
            "series": {
                label: [
                    _round(
                        median_of(find_entry(results, model=model, n_layers=k), "peak_rss_bytes"),
                        scale=1e-6,
                    )
                    for k in layers
                ]
                for label, model in (("reversible", "reformer"), ("transformer", "transformer"))
            },
        }
    return out


def _roofline(
    results: list[dict[str, Any]], lengths: list[int], rounds: list[int]
) -> dict[str, Any] | None:
    """Fraction of the matmul peak per length: SDPA, our LSH per round count, and the faster
    peer at each round count (``None`` where not measured); ``None`` without any."""
    series: dict[str, list[float | None]] = {}
    for name, impls, r in [("full", ("full",), None)] + [
        (f"{label}{r}", impls, r)
        for r in rounds
        for label, impls in (("lsh", ("lsh",)), ("peer", PEER_NAMES))
    ]:
        row = []
        for n in lengths:
            found = [find_entry(results, implementation=i, length=n, n_hashes=r) for i in impls]
            fractions = [e["peak_fraction"] for e in found if e and e.get("peak_fraction")]
            row.append(_round(max(fractions)) if fractions else None)
        series[name] = row
    if not any(v is not None for row in series.values() for v in row):
        return None
    return {
        "x_label": "sequence length",
        "x": lengths,
        "unit": "of matmul peak",
        "series": series,
    }


def _round(value: float | None, scale: float = 1.0, digits: int = 4) -> float | None:
    return None if value is None else round(value * scale, digits)
