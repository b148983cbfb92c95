"""Tests of the kit's sweep runner and target rows (repro.benchmarking.sweep, .targets) with a
toy paper's workloads: settings with one-line errors, sections in the paper's order, the
JSON written after every section, figures that cannot cost the measurements, and --rejudge,
which measures nothing. No paper package is imported."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from repro.benchmarking import Target, Workloads, all_met, load_config, rejudge, run_sweep
from repro.benchmarking.measurement import summarize
from repro.benchmarking.sweep import Sweep, merge, select_sections, slim, summary_markdown
from repro.benchmarking.targets import display_rows, markdown_table

DEFAULTS = {
    "threads": 1,
    "seed": 0,
    "quick": False,
    "mode": "full",
    "sections": ["first", "second"],
    "memory_guard_gb": 2.0,
    "timing": {
        "warmup": 1,
        "repeats": 3,
        "min_repeats": 1,
        "max_repeats": 5,
        "budget_s": 1.0,
        "long_step_s": None,
        "quiet_wait_s": 0.5,
        "quiet_budget_s": 1.0,
    },
    "shape": {"n": 3, "scale": 1.0},
    "targets": {"at_least": 2.0},
}
QUICK = {"shape": {"n": 1}}
CALLS: list[str] = []


def _first(sweep: Sweep) -> dict:
    CALLS.append("first")
    n, scale = sweep.config["shape"]["n"], sweep.config["shape"]["scale"]
    result = sweep.run(summarize, {"samples": [scale * (i + 1) for i in range(n)]}, timeout_s=60)
    return {"result": slim(result)}


def _second(sweep: Sweep) -> dict:
    CALLS.append("second")
    saved = json.loads(Path(sweep.context["out"]).read_text())  # written after `first`
    return {"saw": sorted(k for k in saved if k in ("first", "targets", "views"))}


def _targets(report: dict, thresholds: dict) -> list[Target]:
    if "first" not in report:
        return []
    median = report["first"]["result"]["median"]
    need = thresholds["at_least"]
    return [Target("median", f"median >= {need}", need, median, median >= need, None, {"n": 1})]


def _views(report: dict) -> dict:
    figures = [
        {"path": p, "caption": "a plot", "label": "fig:toy"} for p in report.get("plots", [])
    ]
    return {"tables": [], "figures": figures}


def _plots(report: dict, folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "toy.png"
    path.write_bytes(b"\x89PNG")
    return [str(path)]


def _broken_plots(report: dict, folder: Path) -> list[str]:
    raise RuntimeError("no display")


def _check(config: dict) -> None:
    if config["shape"]["n"] < 1:
        raise ValueError(f"benchmark.shape.n={config['shape']['n']} is not allowed: must be >= 1")


TOY = Workloads(
    name="toy-bench",
    defaults=DEFAULTS,
    quick=QUICK,
    sections={"first": _first, "second": _second},
    targets=_targets,
    views=_views,
    derived=lambda report: {"curve": {"x": [1], "series": {"a": [1.0]}}},
    plots=_plots,
    check=_check,
)


def test_merge_and_load_config_reject_unknown_keys_in_one_line():
    with pytest.raises(
        ValueError, match=r"benchmark\.shape\.scal=2 .* \(did you mean 'scale'\?\)"
    ) as e:
        load_config(TOY, {"shape": {"scal": 2}})
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match=r"benchmark\.shape=3 is not allowed: expected a mapping"):
        merge(DEFAULTS, {"shape": 3})
    with pytest.raises(ValueError, match=r"benchmark\.sections entry 'third' is not allowed"):
        load_config(TOY, {"sections": ["first", "third"]})
    with pytest.raises(ValueError, match=r"benchmark\.threads=0 is not allowed: must be >= 1"):
        load_config(TOY, {"threads": 0})
    with pytest.raises(ValueError, match=r"benchmark\.shape\.n=0 is not allowed"):
        load_config(TOY, {"shape": {"n": 0}})  # the paper's own check
    with pytest.raises(ValueError, match=r"--sections third: not allowed; use first, second"):
        select_sections(TOY, load_config(TOY), "first,third")


def test_load_config_layers_defaults_block_and_quick_shapes():
    config = load_config(TOY, {"shape": {"scale": 2.0}})
    assert config["shape"] == {"n": 3, "scale": 2.0} and config["quick"] is False
    quick = load_config(TOY, {"shape": {"scale": 2.0}}, quick=True)
    assert quick["shape"] == {"n": 1, "scale": 2.0} and quick["quick"] is True
    assert load_config(TOY, {"quick": True})["shape"]["n"] == 1
    assert DEFAULTS["shape"] == {"n": 3, "scale": 1.0}  # the defaults are never changed


def test_a_mode_layers_its_settings_between_the_defaults_and_the_block():
    toy = dataclasses.replace(TOY, modes={"small": {"shape": {"n": 2, "scale": 0.5}}})
    config = load_config(toy, {"mode": "small", "shape": {"scale": 3.0}})
    assert config["shape"] == {"n": 2, "scale": 3.0} and config["mode"] == "small"
    assert load_config(toy, {"mode": "full"})["shape"] == {"n": 3, "scale": 1.0}
    quick = load_config(toy, {"mode": "small"}, quick=True)  # quick shapes over the mode's
    assert quick["shape"] == {"n": 1, "scale": 0.5} and quick["quick"] is True
    with pytest.raises(ValueError, match=r"benchmark\.mode='big' is not allowed: use one of"):
        load_config(toy, {"mode": "big"})


def test_sweep_timing_stops_quiet_waits_once_the_budget_is_spent():
    sweep = Sweep(TOY, load_config(TOY))
    timing = sweep.timing(cap_s=5.0, repeats=7)
    assert timing["quiet_wait_s"] == 0.5 and timing["cap_s"] == 5.0
    assert timing["repeats"] == 7 and timing["max_repeats"] == 7  # raised to the repeats
    sweep.quiet_left = 0.0
    assert sweep.timing()["quiet_wait_s"] == 0.0
    assert sweep.memory_guard == 2_000_000_000


def test_run_sweep_writes_after_every_section_in_the_papers_order(tmp_path):
    CALLS.clear()
    out = tmp_path / "bench.json"
    config = select_sections(TOY, load_config(TOY), "second,first")
    report = run_sweep(TOY, config, out, tmp_path / "plots", context={"out": str(out)})
    assert CALLS == ["first", "second"]  # the paper's order, whatever the list's
    assert report["second"]["saw"] == ["first", "targets", "views"]
    assert report["first"]["result"]["median"] == 2.0
    assert report["targets"] == [
        {
            "name": "median",
            "target": "median >= 2.0",
            "required": 2.0,
            "measured": 2.0,
            "met": True,
            "note": None,
            "details": {"n": 1},
        }
    ]
    assert report["curve"] == {"x": [1], "series": {"a": [1.0]}}
    assert report["plots"] == [str(tmp_path / "plots" / "toy.png")]
    assert report["views"]["figures"][0]["path"] == report["plots"][0]
    assert report["mode"] == "full" and report["method"] == "" and report["machine"]["cpu_count"]
    assert json.loads(out.read_text()) == report
    assert not list(tmp_path.glob(".bench.json.*"))  # atomic writes leave no temporary file


def test_a_failing_figure_costs_no_measurement_and_rejudge_measures_nothing(tmp_path, capsys):
    CALLS.clear()
    out = tmp_path / "bench.json"
    broken = dataclasses.replace(TOY, plots=_broken_plots)
    report = run_sweep(broken, load_config(broken), out, tmp_path / "plots", context={"out": out})
    assert report["plots_error"] == "RuntimeError: no display"
    assert json.loads(out.read_text())["first"] == report["first"]
    CALLS.clear()
    strict = load_config(TOY, {"targets": {"at_least": 5.0}})
    again = rejudge(TOY, strict, out)
    assert CALLS == []  # nothing ran
    assert again["first"] == report["first"] and again["started"] == report["started"]
    assert again["targets"][0]["met"] is False and again["targets"][0]["required"] == 5.0
    assert again["config"]["targets"] == {"at_least": 5.0} and "rejudged" in again
    assert json.loads(out.read_text()) == again
    (tmp_path / "other.json").write_text('{"a": 1}')
    with pytest.raises(ValueError, match="not a benchmark JSON"):
        rejudge(TOY, strict, tmp_path / "other.json")


def test_summary_is_the_targets_table_and_the_machine():
    report = {
        "mode": "quick",
        "machine": {"cpu_count": 2, "cpu_model": "X", "torch_threads": 2, "versions": {}},
        "targets": [
            Target("a", "fast", 1.5, 1.25, False, "bounded").row(),
            Target("b", "fits", 1000000, 1048576, True).row(),
            Target("c", "never run", 3.0, None, None).row(),
        ],
    }
    text = summary_markdown(TOY, report)
    assert text.splitlines()[:5] == [
        "| target | required | measured | result |",
        "| --- | --- | --- | --- |",
        "| fast | 1.50 | 1.25 (bounded) | no |",
        "| fits | 1,000,000 | 1,048,576 | yes |",
        "| never run | 3.00 | — | — |",
    ]
    assert "(quick mode) on 2 CPU cores (X)" in text and "pipelines/toy-bench.py" in text
    with pytest.raises(ValueError, match="targets"):
        summary_markdown(TOY, {"targets": {"old": {"passed": True}}})
    with pytest.raises(ValueError, match=r"targets\[0\]"):
        display_rows([{"name": "no target text"}])
    assert markdown_table([]).count("\n") == 1


def test_all_met_ignores_undecided_checks():
    assert all_met([True, None]) is True and all_met([None, False]) is False
    assert all_met([None, None]) is None
