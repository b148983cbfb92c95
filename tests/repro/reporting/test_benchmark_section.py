"""The benchmark section from the generic parts of ``metrics/benchmark.json``: the targets
rows and the views (tables, figures), and a plain "not run" when they are missing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from repro.reporting import benchmark_section, benchmark_targets, generate, targets_markdown

CURVE = {"x_label": "length", "x": [1024, 2048], "unit": "s", "series": {"a": [0.1, None]}}
BENCH: dict[str, Any] = {
    "attention_time": CURVE,
    "targets": [
        {"name": "fast", "target": "faster than peers", "required": 1.5, "measured": 1.234,
         "met": False, "note": None},
        {"name": "long", "target": "long step", "required": 1000000, "measured": 1048576,
         "met": True},
        {"name": "unknown", "target": "not measured", "required": 2.0, "measured": None,
         "met": None, "note": ""},
    ],
    "views": {
        "tables": [
            {"caption": "Peers: seconds per step_ (100%)", "label": "tab:peers",
             "columns": ["length", "ours (s)", "peer_s"],
             "rows": [[1024, 0.12834, "out of memory"], [65536, 3.4e12, None]]},
        ],
        "figures": [
            {"curve": "attention_time", "log_x": True, "log_y": True, "label": "fig:speed",
             "caption": "Speed (Figure\u00a05), 5% (`metrics/benchmark.json`)."},
            {"path": "plots/depth.png", "caption": "Depth.", "label": "fig:depth", "width": 0.5},
            {"path": "plots/missing.png", "caption": "Gone.", "label": "fig:gone"},
            {"curve": "no_such_section", "caption": "None.", "label": "fig:none"},
        ],
    },
}  # fmt: skip


def test_targets_views_and_figures_are_rendered(tmp_path: Path) -> None:
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "depth.png").write_bytes(b"\x89PNG fake")
    out, written = tmp_path / "generated", []
    out.mkdir()
    tex = benchmark_section(BENCH, out, written, root=tmp_path)
    # figures first, in order: a curve the kit draws, an image it copies, two notes
    assert r"\includegraphics[width=0.7\linewidth]{generated/fig-speed.pdf}" in tex
    assert (out / "fig-speed.pdf").read_bytes().startswith(b"%PDF")
    assert r"\includegraphics[width=0.5\linewidth]{generated/fig-depth.png}" in tex
    assert (out / "fig-depth.png").read_bytes() == b"\x89PNG fake"
    assert written == [out / "fig-speed.pdf", out / "fig-depth.png"]
    # captions: plain text escaped, a no-break space as a tie, `code` as \texttt
    caption = r"\caption{Speed (Figure~5), 5\% (\texttt{metrics/benchmark.json}).}"
    assert caption in tex and r"\label{fig:speed}" in tex
    assert r"Figure not available: \texttt{plots/missing.png} is missing." in tex
    assert r"Figure not available: the benchmark has no no\_such\_section curves." in tex
    # the targets table: numbers as the README shows them, met as yes / no / dash
    assert r"faster than peers & 1.23 & 1.50 & no \\" in tex
    assert r"long step & 1,048,576 & 1,000,000 & yes \\" in tex
    assert r"not measured & — & 2.00 & — \\" in tex
    assert r"(\texttt{metrics/benchmark.json}).}\label{tab:targets}" in tex  # default caption
    # a view table: caption escaped, headers with spaces, cells formatted, null as a dash
    assert r"\caption{Peers: seconds per step\_ (100\%)}\label{tab:peers}" in tex
    assert r"length & ours (s) & peer s \\" in tex
    assert r"1024 & 0.128 & out of memory \\" in tex
    assert r"65536 & 3.4$\times 10^{12}$ & --- \\" in tex
    assert tex.index("fig:speed") < tex.index("tab:targets") < tex.index("tab:peers")
    # the targets table wraps its sentences at full size; a view table is shrunk to fit
    targets = tex[tex.index("tab:targets") : tex.index("tab:peers")]
    assert r"p{0.44\linewidth}" in targets and r"\resizebox" not in targets
    assert r"\resizebox" in tex[tex.index("tab:peers") :]


def test_a_table_needs_one_width_per_column() -> None:
    from repro.reporting.tables import row_table

    with pytest.raises(ValueError, match=r"^widths has 1 entries: give one per column \(2\)$"):
        row_table(["a", "b"], [[1, 2]], "Caption.", "tab:x", widths=[0.5])


def test_the_targets_caption_can_come_from_the_file(tmp_path: Path) -> None:
    bench = {**BENCH, "views": {"targets_caption": "On 2 CPU cores."}}
    assert r"\caption{On 2 CPU cores.}\label{tab:targets}" in benchmark_section(bench, tmp_path, [])


def test_a_note_follows_the_measured_number() -> None:
    bench = {"targets": [{"name": "b", "target": "every cell", "required": 1.5,
                          "measured": 1.6, "met": False,
                          "note": "1 cell(s) unmeasured: baseline over the time cap"}]}  # fmt: skip
    assert benchmark_targets(bench) == [
        {
            "target": "every cell",
            "measured": "1.60 (1 cell(s) unmeasured: baseline over the time cap)",
            "threshold": "1.50",
            "met": "no",
        }
    ]
    assert "| every cell | 1.60 (1 cell(s) unmeasured: baseline over the time cap) |" in (
        targets_markdown(bench)
    )


@pytest.mark.parametrize("bench", [None, {}, {"targets": [], "views": {}}, {"mode": "quick"}])
def test_without_targets_or_views_the_section_says_not_run(bench: Any, tmp_path: Path) -> None:
    tex = benchmark_section(bench, tmp_path, [])
    assert tex.startswith(r"\emph{Not run:") and tex.count("\n") == 1
    assert targets_markdown(bench or {}) == ""


def test_generate_reads_the_benchmark_file(tmp_path: Path) -> None:
    bench = tmp_path / "benchmark.json"
    bench.write_text(json.dumps({"targets": BENCH["targets"]}))
    claims = tmp_path / "claims.yaml"
    claims.write_text("claims: []\n")
    generate({}, claims, tmp_path / "out", benchmark=bench)
    assert r"long step & 1,048,576" in (tmp_path / "out" / "benchmark.tex").read_text()
    generate({}, claims, tmp_path / "none", benchmark=tmp_path / "absent.json")
    assert "Not run" in (tmp_path / "none" / "benchmark.tex").read_text()


@pytest.mark.parametrize(
    ("bench", "message"),
    [
        # the old mapping form of the targets (name -> description, threshold, ...)
        ({"targets": {"t": {"description": "fast"}}}, r"targets=\{'t': .* is not allowed"),
        ({"targets": [{"target": "x"}]}, r"targets\[0\]\.name=None"),
        ({"targets": [{"name": "n", "target": "x", "met": "yes"}]}, r"targets\[0\]\.met='yes'"),
        ({"views": []}, r"views=\[\] is not allowed"),
        (
            {"views": {"tables": [{"caption": "c", "label": "tab:x", "columns": ["a", "b"],
                                   "rows": [[1]]}]}},
            r"views\.tables\[0\]\.rows=\[\[1\]\] is not allowed \(a list of rows of 2 cells\)",
        ),
        (
            {"views": {"tables": [{"caption": "c", "label": "t x", "columns": ["a"],
                                   "rows": []}]}},
            r"views\.tables\[0\]\.label='t x'",
        ),
        (
            {"views": {"figures": [{"caption": "c", "label": "f", "curve": "a", "path": "b"}]}},
            r"views\.figures\[0\]=.* \(exactly one of curve or path\)",
        ),
        (
            {"views": {"figures": [{"caption": "c", "label": "f", "path": "plot.svg"}]}},
            r"views\.figures\[0\]\.path='plot\.svg'",
        ),
        (
            {"views": {"figures": [{"caption": "c", "label": "f", "curve": "a", "width": 2}]}},
            r"views\.figures\[0\]\.width=2",
        ),
    ],
)  # fmt: skip
def test_a_part_of_the_wrong_shape_is_a_one_line_error(
    bench: dict, message: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=message) as info:
        benchmark_section(bench, tmp_path, [], source="metrics/benchmark.json")
    text = str(info.value)
    assert "\n" not in text and text.startswith("metrics/benchmark.json: ")
    assert re.search(r"\(.+\)$", text)  # says what is allowed
