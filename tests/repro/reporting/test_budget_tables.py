"""The computational-requirements tables of ``metrics/budget.json``."""

from __future__ import annotations

from repro.reporting import budget_tables, format_significant


def _budget_row(name: str, params: int, hours: float) -> dict:
    # shaped like a row of the budget stage's --json output
    return {
        "experiment": name,
        "params": params,
        "tokens_per_step": 32768,
        "attention_flops": 7.42e12,
        "ff_flops": 5.77e12,
        "total_flops": 13.3e12,
        "activation_bytes": 2 * 2**30,
        "table3_bytes": 3 * 2**29,
        "steps": 100000,
        "gpu_hours": hours,
    }


def test_budget_tables_have_units_readable_numbers_and_a_total() -> None:
    a100 = {"params_file": "params.yaml", "accelerator": "a100", "peak_tflops": 312.0, "mfu": 0.3}
    h100 = {
        "params_file": "configs/paper.yaml",
        "accelerator": "h100",
        "peak_tflops": 989.0,
        "mfu": 0.4,
    }
    data = {
        "assumptions": a100,
        "experiments": [_budget_row("dup-full", 145_000, 5.97e-6)],
        "paper": {
            "assumptions": h100,
            "experiments": [
                _budget_row("enwik8-lsh4", 35_600_000, 3.94),
                _budget_row("wmt14_big", 210_000_000, 1.06),
            ],
        },
    }
    tex = budget_tables(data)
    current, paper = tex.split("\n\n")
    for table in (current, paper):
        for header in (
            "Experiment",
            "Parameters (M)",
            "Tokens per step",
            "Steps",
            r"\multicolumn{3}{c}{TFLOP per step}",
            "Attention",
            "Feed-forward",
            "Training (PFLOP)",
            r"\multicolumn{2}{c}{Activations per device (GiB)}",
            "Ours",
            "Table~3",
        ):
            assert header in table, header
        assert "_" not in table.split(r"\midrule")[0].split(r"\toprule")[1]  # no raw keys
    assert r"A100-hours at 30\% MFU \\" in current and r"\label{tab:budget}" in current
    assert r"H100-hours at 40\% MFU \\" in paper and r"\label{tab:budget-paper}" in paper
    # 13.3e12 FLOPs per step = 13.3 TFLOP; x 100,000 steps = 1.33e18 = 1,330 PFLOP;
    # 2 x 2^30 bytes = 2.00 GiB, 1.5 x 2^30 = 1.50 GiB
    cells = "enwik8-lsh4 & 35.6 & 32,768 & 100,000 & 7.42 & 5.77 & 13.3 & 1,330 & 2.00 & 1.50"
    assert cells + r" & 3.94 \\" in paper
    assert r"wmt14\_big & 210 &" in paper
    assert r"dup-full & 0.145 &" in current and r"5.97$\times 10^{-6}$ \\" in current
    # total row: training compute and hours add up, the per-experiment columns do not
    assert r"Total &  &  &  &  &  &  & 2,660 &  &  & 5.00 \\" in paper
    assert "5.00 H100-hours in total at 40\\% MFU" in paper
    assert format_significant(-0.012345) == "$-$0.0123"


def test_budget_table_of_older_files_and_of_the_paper_profile_itself() -> None:
    rows = [_budget_row("dup-full", 145_000, 2.0)]
    old = budget_tables(rows)  # a bare list of rows: no assumptions, so no accelerator name
    assert r"& GPU-hours \\" in old and "tab:budget-paper" not in old
    # params.yaml is the paper profile: one table, said to be the paper profile
    same = budget_tables({"assumptions": {}, "experiments": rows, "paper": {"experiments": rows}})
    assert same.count(r"\begin{table}") == 1 and "the paper profile" in same
    assert "Not run" in budget_tables(None) and "Not run" in budget_tables({"experiments": []})
