"""The kit's compute budget (repro.budget) and its stage script, with a toy cost model.

Nothing here imports the paper package: the cost model below is a dense model's rule of
thumb, so every number the kit writes can be checked by hand, and the params are the kit's
fixture paper's smoke profile (``tests/repro/minipaper/params.yaml``).
"""

from __future__ import annotations

import json
import math
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

from repro import budget
from repro.budget import Column, CostModel, ExperimentParams
from repro.config import default_paper
from repro.paper import Paper

ROOT = Path(__file__).resolve().parents[2]
SMOKE = Path(__file__).resolve().parent / "minipaper" / "params.yaml"
sys.path.insert(0, str(ROOT))  # `pipelines` is the scripts' folder, not a package

from pipelines import budget as stage  # noqa: E402


@dataclass(frozen=True)
class Dense:
    name: str
    task: str
    width: int
    seq_len: int
    batch_size: int
    micro_batch: int
    steps: int
    optimizer: str

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.seq_len


def dense_spec(exp: ExperimentParams) -> Dense:
    seq_len = exp.seq_len or int(exp.task_params.get("length", 16))
    width = int(exp.model.get("d_model", 8))
    return Dense(
        exp.name, exp.task, width, seq_len, exp.batch_size, exp.micro_batch, exp.steps,
        exp.optimizer,
    )  # fmt: skip


def dense_params(spec: Dense) -> int:
    return 12 * spec.width**2


def dense_flops(spec: Dense) -> dict[str, float]:
    matmul = 6.0 * dense_params(spec) * spec.tokens_per_step
    return {"matmul": matmul, "other": 10.0, "total": matmul + 10.0}


def dense_memory(spec: Dense) -> dict[str, int]:
    total = 4 * spec.micro_batch * spec.seq_len * spec.width
    return {"total": total, "backward": 100}


DENSE = CostModel(
    spec=dense_spec,
    parameters=dense_params,
    flops_per_step=dense_flops,
    activation_bytes=dense_memory,
    terms=lambda spec: {"formula": {"bytes": 2 * dense_memory(spec)["total"]}},
    columns=(
        Column("formula_bytes", "act. (formula)", ("formula", "bytes"), unit="bytes"),
        Column("matmul_flops", "mm FLOP", ("flops", "matmul")),
    ),
    transient_key="backward",
    measure_activation_bytes=lambda spec: dense_memory(spec)["total"],
    assumptions={"flops": "6 N D"},
)


# ----------------------------------------------------------------------------- estimate


def test_rows_put_the_cost_models_columns_beside_the_kits_and_count_by_hand():
    spec = Dense("e", "t", width=4, seq_len=10, batch_size=8, micro_batch=2, steps=100,
                 optimizer="adamw")  # fmt: skip
    row, details = budget.estimate(spec, DENSE, peak_tflops=1e-9, mfu=0.5)
    assert list(row) == [
        "experiment",
        "params",
        "tokens_per_step",
        "matmul_flops",  # FLOP columns before the total
        "total_flops",
        "activation_bytes",
        "formula_bytes",  # the others after the activations
        "steps",
        "gpu_hours",
    ]
    n = 12 * 4**2
    assert (row["params"], row["tokens_per_step"]) == (n, 80)
    assert row["matmul_flops"] == 6 * n * 80 and row["total_flops"] == 6 * n * 80 + 10
    assert (row["activation_bytes"], row["formula_bytes"]) == (4 * 2 * 10 * 4, 2 * 320)
    assert row["gpu_hours"] == pytest.approx(row["total_flops"] * 100 / (1e-9 * 1e12 * 0.5) / 3600)
    assert list(details) == [
        "task", "spec", "flops", "formula", "activation", "state_bytes", "peak_bytes"
    ]  # fmt: skip
    assert details["spec"]["width"] == 4 and details["state_bytes"] == 16 * n
    assert details["peak_bytes"] == 320 + 100 + 16 * n  # activations, transient, state


def test_state_bytes_of_an_unknown_optimizer_is_one_line():
    spec = Dense("e", "t", 4, 10, 8, 2, 1, "sgd")
    with pytest.raises(budget.BudgetError, match=r"^train.optimizer = 'sgd': allowed: adamw"):
        budget.estimate(spec, DENSE, 312.0, 0.3)


def test_params_are_read_as_yaml_with_defaults_then_overrides(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(
        "tasks:\n  toy: {length: 12}\n"
        "model: {d_model: 16, depth: 3}\n"
        "train: {batch_size: 8, grad_accum: 2, steps: 7}\n"
        "distributed: {nproc_per_node: 2}\n"
        "experiments:\n  a: {task: toy, model: {depth: 5}, train: {seq_len: 6}}\n"
        "  b: {task: toy}\n"
    )
    a, b = budget.read_experiments(params)
    assert (a.name, a.task, dict(a.task_params)) == ("a", "toy", {"length": 12})
    assert dict(a.model) == {"d_model": 16, "depth": 5} and a.seq_len == 6
    assert (a.batch_size, a.micro_batch, a.steps, a.optimizer) == (8, 2, 7, "adamw")
    assert b.seq_len is None and b.model["depth"] == 3
    assert [s.seq_len for s in budget.specs(params, DENSE)] == [6, 12]
    (only,) = budget.specs(params, DENSE, experiment="b")
    assert only.name == "b"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("experiments: [a, b]\n", "experiments = ['a', 'b']: must be a mapping"),
        ("experiments:\n  a: {model: {}}\n", "experiments.a.task is missing"),
        ("experiments: {a: {task: t\n", "not valid YAML"),
    ],
)
def test_a_params_file_of_the_wrong_shape_is_one_line(tmp_path, text, message, capsys):
    params = tmp_path / "params.yaml"
    params.write_text(text)
    assert budget.main(["--params", str(params)], DENSE) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_check_compares_the_estimate_with_the_measurement(tmp_path, capsys):
    rows = budget.check(SMOKE, DENSE)
    assert [r[0] for r in rows] == [s.name for s in budget.specs(SMOKE, DENSE)]
    assert all(ratio == 1.0 for *_, ratio in rows)
    off = CostModel(dense_spec, dense_params, dense_flops, dense_memory,
                    measure_activation_bytes=lambda s: 2 * dense_memory(s)["total"])  # fmt: skip
    assert budget.main(["--params", str(SMOKE), "--check", "--check-params", str(SMOKE)], off) == 1
    assert "(ratio 0.500) OFF BY MORE THAN 25%" in capsys.readouterr().out
    blind = CostModel(dense_spec, dense_params, dense_flops, dense_memory)
    assert budget.main(["--params", str(SMOKE), "--check"], blind) == 2
    assert capsys.readouterr().err == (
        "error: --check: the paper's cost model has no measure_activation_bytes\n"
    )


# ----------------------------------------------------------------------------- CLI


def test_cli_writes_the_json_the_report_reads(tmp_path, capsys):
    out = tmp_path / "metrics" / "budget.json"
    assert budget.main(["--params", str(SMOKE), "--json", str(out), "--mfu", "0.5"], DENSE) == 0
    printed = capsys.readouterr().out
    assert "copy-plain" in printed and "GPU-h" in printed
    assert "mm FLOP" in printed and "act. (formula)" in printed
    data = json.loads(out.read_text())
    assert data["assumptions"]["mfu"] == 0.5 and data["assumptions"]["peak_tflops"] == 312.0
    assert data["assumptions"]["flops"] == "6 N D"  # the cost model's notes
    rows = data["experiments"]
    assert [r["experiment"] for r in rows] == [s.name for s in budget.specs(SMOKE, DENSE)]
    for row in rows:
        assert all(isinstance(v, (int, float, str)) for v in row.values())  # flat rows
        hours = row["total_flops"] * row["steps"] / (312e12 * 0.5) / 3600
        assert math.isclose(row["gpu_hours"], hours)
    assert set(data["details"]) == {r["experiment"] for r in rows}
    assert not list(out.parent.glob(".*.tmp"))  # written atomically
    from repro.reporting import budget_tables  # the report's table of this file

    table = budget_tables(data)
    assert "tab:budget" in table and "copy-drop" in table


def test_cli_help_and_a_missing_paper_profile(capsys):
    with pytest.raises(SystemExit) as info:
        budget.main(["--help"], DENSE)
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--paper-params" in out and "(within 25%)" in " ".join(out.split())
    assert budget.main(["--params", str(SMOKE), "--paper-params", "no/paper.yaml"], DENSE) == 2
    err = capsys.readouterr().err
    assert err == "error: --paper-params = no/paper.yaml: file not found\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--params", "no/such.yaml"], "no/such.yaml: file not found"),
        (["--params", str(SMOKE), "--mfu", "0"], "--mfu = 0.0: must be in (0, 1]"),
        (["--params", str(SMOKE), "--experiment", "copy-plai"], "experiment 'copy-plai' is not in"),
    ],
)
def test_cli_bad_input_is_one_line(argv, message, capsys):
    assert budget.main(argv, DENSE) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_budget_section_of_params_sets_the_accelerator(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text(SMOKE.read_text() + "\nbudget: {accelerator: h100, mfu: 0.5}\n")
    out = tmp_path / "b.json"
    assert budget.main(["--params", str(params), "--json", str(out)], DENSE) == 0
    assumptions = json.loads(out.read_text())["assumptions"]
    assert (assumptions["accelerator"], assumptions["peak_tflops"], assumptions["mfu"]) == (
        "h100",
        989.0,
        0.5,
    )
    argv = ["--params", str(params), "--json", str(out), "--tflops", "100"]
    assert budget.main(argv, DENSE) == 0
    assert json.loads(out.read_text())["assumptions"]["peak_tflops"] == 100.0
    params.write_text(SMOKE.read_text() + "\nbudget: {gpu: x}\n")
    assert budget.main(["--params", str(params)], DENSE) == 2
    assert "budget.gpu is unknown" in capsys.readouterr().err


# ----------------------------------------------------------------------------- stage script


@dataclass
class ToySection:
    d_model: int = 8


def _plug_in(monkeypatch, name: str, cost_model: CostModel | None) -> None:
    """Make ``name.paper`` importable with a PAPER that has ``cost_model``."""
    paper = Paper(
        name=name,
        title="Toy",
        tasks={},
        model_config=ToySection,
        evaluate_config=ToySection,
        build_model=None,
        load_model=None,
        evaluate=None,
        cost_model=cost_model,
    )
    package, module = types.ModuleType(name), types.ModuleType(f"{name}.paper")
    module.PAPER = paper
    monkeypatch.setitem(sys.modules, name, package)
    monkeypatch.setitem(sys.modules, f"{name}.paper", module)


def test_stage_script_uses_the_cost_model_of_the_paper_the_params_name(tmp_path, monkeypatch):
    _plug_in(monkeypatch, "toy_budget_paper", DENSE)
    params = tmp_path / "params.yaml"
    smoke = re.sub(r"^paper:.*$", "", SMOKE.read_text(), flags=re.MULTILINE)
    params.write_text("paper: toy_budget_paper\n" + smoke)
    out, direct = tmp_path / "budget.json", tmp_path / "direct.json"
    assert stage.main(["--params", str(params), "--json", str(out)]) == 0
    assert budget.main(["--params", str(params), "--json", str(direct)], DENSE) == 0
    assert out.read_text() == direct.read_text()
    params.write_text(smoke)  # no `paper:` key: the default of the nearest pyproject.toml
    assert stage.paper_name(params) == default_paper(ROOT)[0]  # none here: the project's
    (tmp_path / "pyproject.toml").write_text('[tool.repro]\npaper = "toy_budget_paper"\n')
    assert stage.paper_name(params) == "toy_budget_paper"


def test_a_paper_without_a_cost_model_gets_a_not_available_file(tmp_path, monkeypatch, capsys):
    """The cost model is an optional plug-in: the stage succeeds and says so, and the
    report's section says "not available" instead of failing the pipeline."""
    from repro.reporting import budget_tables

    _plug_in(monkeypatch, "toy_budget_paper_without_costs", None)
    params, out = tmp_path / "params.yaml", tmp_path / "budget.json"
    params.write_text("paper: toy_budget_paper_without_costs\n")
    assert stage.main(["--params", str(params), "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data == {
        "available": False,
        "reason": "paper 'toy_budget_paper_without_costs' has no cost model (PAPER.cost_model)",
    }
    assert "no cost model" in capsys.readouterr().out
    assert budget_tables(data).startswith(r"\emph{Not available: paper")


def test_stage_script_errors_are_one_line(tmp_path, monkeypatch, capsys):
    params = tmp_path / "params.yaml"
    params.write_text("paper: no_such_paper_pkg\n")
    assert stage.main(["--params", str(params)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "paper 'no_such_paper_pkg': no module named" in err
    assert stage.main(["--params", "no/such.yaml"]) == 2
    assert capsys.readouterr().err == "error: no/such.yaml: file not found\n"
