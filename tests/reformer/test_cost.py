"""The Reformer's cost model (reformer.cost) against hand arithmetic, torch's FLOP counter and
measurement, and the kit's budget (repro.budget) run with it on the repository's profiles."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from reformer import cost
from reformer.cost import COST_MODEL, LMSpec, Seq2SeqSpec
from reformer.models import ReformerLM, TransformerLM
from repro import budget
from repro.training.metrics import LanguageModelObjective

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "configs" / "smoke.yaml"
PAPER = ROOT / "configs" / "paper.yaml"


#: the model of a plain Transformer: full attention, separate Q and K, ordinary residuals
PLAIN = {"attention": "full", "shared_qk": False, "reversible": False}
#: a small model's size
SMALL = {"d_model": 16, "n_heads": 2, "d_ff": 32, "n_layers": 2}


def enwik8_spec(
    name: str,
    vocab_size: int,
    seq_len: int,
    batch_size: int,
    micro_batch: int,
    steps: int,
    **model: object,
) -> LMSpec:
    """An enwik8 :class:`LMSpec` whose model has the keyword arguments ``model``."""
    return LMSpec(name, "enwik8", vocab_size, seq_len, batch_size, micro_batch, steps, model)


class RegistryFlopCounter(TorchDispatchMode):
    """FLOPs of every op that ``torch.utils.flop_counter`` knows, in-place variants included.

    ``FlopCounterMode`` itself cannot run a reversible model: its module tracker's backward
    hooks reject the ``torch.autograd.grad`` call inside the reversible backward. This
    counter uses the same per-op formulas (``flop_registry``) without module tracking, and
    maps in-place ops (``baddbmm_``, used by LSH attention's backward) to their out-of-place
    formula, which the registry leaves out.
    """

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func._overloadpacket
        name = str(packet).split(".")[-1]
        if packet not in flop_registry and name.endswith("_"):
            packet = getattr(torch.ops.aten, name.rstrip("_"), packet)
        if packet in flop_registry:

            def shape(t):
                return t.shape if isinstance(t, torch.Tensor) else t

            self.total += flop_registry[packet](
                *tree_map(shape, args), **tree_map(shape, kwargs), out_val=tree_map(shape, out)
            )
        return out


def _train_step_flops(spec, counter) -> int:
    """Run one forward + backward of the training objective under ``counter``."""
    torch.manual_seed(0)
    model = cost.build_model(spec)
    b = spec.micro_batch
    if isinstance(spec, Seq2SeqSpec):
        from reformer.tasks.wmt14 import PackedTranslationModel, packed_loss_mask

        model = PackedTranslationModel(model, spec.src_len)
        tokens = torch.randint(4, spec.vocab_size, (b, spec.src_len + spec.tgt_len))
        mask = packed_loss_mask(tokens, spec.src_len)
    else:
        tokens = torch.randint(0, spec.vocab_size, (b, spec.seq_len))
        mask = torch.ones(b, spec.seq_len, dtype=torch.bool)
    objective = LanguageModelObjective(model)
    # The math backend spells attention out as bmm, which the counters see (the fused CPU
    # kernel is not in torch's FLOP registry).
    with sdpa_kernel(SDPBackend.MATH), counter:
        loss, _, _ = objective(tokens, mask)
        loss.backward()
    return counter.get_total_flops() if isinstance(counter, FlopCounterMode) else counter.total


# ----------------------------------------------------------------------------- FLOPs


def test_flops_of_a_tiny_transformer_by_hand():
    # b=2 sequences of l=4, d=4, 2 heads, d_ff=8, V=5, one layer, separate Q and K.
    spec = enwik8_spec("t", 5, 4, 2, 2, 10, d_model=4, n_heads=2, d_ff=8, n_layers=1, **PLAIN)
    tokens = 2 * 4
    proj_macs = 4 * 4 * 4 * tokens  # q, k, v, out: 4 matrices of 4 x 4 per token
    score_macs = 2 * (2 * 4 * 4 * 4)  # QK^T and PV: b * l * l * d each
    ff_macs = 2 * 4 * 8 * tokens
    head_macs = 4 * 5 * tokens
    f = cost.flops_per_step(spec)
    assert f["attention"] == 2 * 3 * (proj_macs + score_macs) == 4608
    assert f["feedforward"] == 2 * 3 * ff_macs == 3072
    assert f["head"] == 2 * 3 * head_macs == 960
    assert f["total"] == 4608 + 3072 + 960
    hours = budget.gpu_hours(f["total"] * 10, peak_tflops=1e-9, mfu=0.5)
    assert hours == pytest.approx(8640 * 10 / (1e-9 * 1e12 * 0.5) / 3600)


def test_flops_of_a_tiny_reversible_lsh_model_by_hand():
    # l=16, chunks of 4 (4 chunks, 4 buckets), 2 rounds, d=4, 1 head, d_ff=4, V=3, batch 1.
    lsh = {"attention": "lsh", "n_hashes": 2, "bucket_size": 4}
    spec = enwik8_spec("t", 3, 16, 1, 1, 1, d_model=4, n_heads=1, d_ff=4, n_layers=2, **lsh)
    t = 16
    proj = 3 * 16 * t  # qk, v, out
    core = 2 * 2 * t * 8 * 4  # 2 rounds x (QK^T + PV) x 16 queries x 8 keys x 4 dims
    combine = 2 * t * 4  # weighted sum of the 2 rounds' outputs
    # the paper's rule: n_buckets = 2 * 16 / 4 = 8, so R has n_buckets / 2 = 4 columns
    hashing = 2 * t * 4 * 4  # 2 rounds x 16 tokens x 4 dims x 4 columns
    per_layer = 2 * 4 * (proj + core + combine) + 2 * 2 * hashing  # 4 passes; hash: 2
    f = cost.flops_per_step(spec)
    assert f["attention"] == 2 * per_layer
    assert f["feedforward"] == 2 * (2 * 4 * (2 * 4 * 4 * t))
    assert f["head"] == 2 * 3 * (8 * 3 * t)  # the concatenated halves: width 2 d


def test_table1_and_table3_terms_by_hand():
    size = {"d_model": 8, "n_heads": 2, "d_ff": 16, "n_layers": 3}
    spec = enwik8_spec("t", 7, 64, 4, 2, 1, **size, n_hashes=2, bucket_size=8, ff_chunks=2)
    t1 = cost.table1_terms(spec)
    assert t1["full_time"] == 4 * 2 * 64 * 64 * 4
    assert t1["lsh_time"] == 4 * 2 * 2 * 64 * 16**2  # 4 l / n_c = 2 x chunk = 16
    t3 = cost.table3_activation(spec)  # micro-batch 2; Reformer row: max(b l d, b h l r c)
    assert t3["row"] == "Reformer"
    assert t3["elements"] == max(2 * 64 * 8, 2 * 2 * 64 * 2 * 16**2)
    plain = enwik8_spec("t", 7, 64, 4, 2, 1, **size, attention="full", reversible=False)
    t3 = cost.table3_activation(plain)
    assert (t3["row"], t3["elements"]) == ("Transformer", 3 * max(2 * 64 * 16, 2 * 2 * 64 * 64))


def test_flops_equal_flop_counter_mode_on_a_full_attention_transformer():
    # FlopCounterMode counts 2 M N K per matmul and 2x that for its backward; the estimator
    # counts the same matmuls, so the two agree exactly (elementwise work is in neither).
    spec = enwik8_spec("t", 11, 16, 2, 2, 1, **SMALL, **PLAIN)
    model = cost.build_model(spec)
    assert isinstance(model, TransformerLM.__mro__[1])  # a ReformerLM, as TransformerLM is
    counted = _train_step_flops(spec, FlopCounterMode(display=False))
    assert cost.flops_per_step(spec)["total"] == pytest.approx(counted, rel=1e-12)


@pytest.mark.parametrize(
    ("model", "rel"),
    [
        ({"attention": "full"}, 1e-12),  # reversible: 4 passes
        ({"attention": "full", "ff_chunks": 2}, 1e-12),  # checkpointed FF
        ({"attention": "full", "reversible": False, "loss_chunks": 2}, 1e-12),
        # LSH: the backward skips the first chunk's (empty) previous chunk in the key and
        # value gradients, 2 m^2 d_k MACs per chunk row; the estimate counts full windows.
        ({"attention": "lsh"}, 1e-2),
        ({"attention": "lsh", "reversible": False, "n_hashes": 3}, 1e-2),
    ],
)
def test_flops_equal_torch_flop_registry_counts(model, rel):
    spec = enwik8_spec("t", 11, 32, 2, 2, 1, **{**SMALL, "n_hashes": 2, "bucket_size": 8, **model})
    counted = _train_step_flops(spec, RegistryFlopCounter())
    assert cost.flops_per_step(spec)["total"] == pytest.approx(counted, rel=rel)


@pytest.mark.parametrize("reversible", [True, False])
def test_encoder_decoder_flops_equal_torch_flop_registry_counts(reversible):
    spec = Seq2SeqSpec(
        "s",
        13,
        12,
        10,
        2,
        2,
        1,
        {"d_model": 16, "n_heads": 2, "d_ff": 32, "n_layers": 2, "reversible": reversible},
    )
    counted = _train_step_flops(spec, RegistryFlopCounter())
    assert cost.flops_per_step(spec)["total"] == pytest.approx(counted, rel=1e-12)


# ----------------------------------------------------------------------------- memory


def test_activation_estimate_matches_a_measured_smoke_step_within_25_percent():
    rows = budget.check(SMOKE, COST_MODEL)
    assert {name for name, *_ in rows} >= {"dup-full"}
    for name, estimated, measured, ratio in rows:
        assert measured > 0
        assert abs(ratio - 1) <= 0.25, (name, estimated, measured)


@pytest.mark.parametrize(
    "model",
    [
        {"attention": "full", "reversible": False, "shared_qk": False},
        {"attention": "full", "reversible": False},
        {"attention": "lsh", "reversible": False, "n_hashes": 4},
        {"attention": "full", "reversible": False, "ff_chunks": 2, "loss_chunks": 2},
        {"attention": "lsh", "loss_chunks": 2},
    ],
)
def test_activation_estimate_of_other_variants_within_25_percent(model):
    size = {"d_model": 32, "n_heads": 2, "d_ff": 64, "n_layers": 2, "bucket_size": 8}
    spec = enwik8_spec("v", 16, 64, 4, 4, 1, **{**size, **model})
    estimated = cost.activation_bytes(spec)["total"]
    measured = cost.measure_activation_bytes(spec)
    assert abs(estimated / measured - 1) <= 0.25


def test_reversible_activation_does_not_grow_with_depth():
    def spec(n_layers, reversible):
        model = {"n_layers": n_layers, "attention": "full", "reversible": reversible}
        return enwik8_spec("v", 16, 64, 4, 4, 1, d_model=32, n_heads=2, **model)

    assert (
        cost.activation_bytes(spec(12, True))["layers"]
        == cost.activation_bytes(spec(2, True))["layers"]
    )
    assert (
        cost.activation_bytes(spec(12, False))["layers"]
        == 6 * cost.activation_bytes(spec(2, False))["layers"]
    )


def test_parameter_count_on_meta_equals_the_real_model():
    axial = {"positional": "axial", "axial_shape": [8, 8], "bucket_size": 16}
    spec = enwik8_spec("v", 256, 64, 4, 4, 1, d_model=32, n_heads=2, **axial)
    real = sum(p.numel() for p in cost.build_model(spec, "cpu").parameters())
    assert cost.count_parameters(spec) == real


# ----------------------------------------------------------------------------- the budget


def test_the_paper_plugs_in_this_cost_model():
    from repro.paper import load_paper

    assert load_paper("reformer").cost_model is COST_MODEL


def test_budget_rows_of_the_smoke_profile_are_this_cost_models(tmp_path):
    out = tmp_path / "metrics" / "budget.json"
    assert (
        budget.main(["--params", str(SMOKE), "--json", str(out), "--mfu", "0.5"], COST_MODEL) == 0
    )
    data = json.loads(out.read_text())
    rows = data["experiments"]
    assert [r["experiment"] for r in rows] == [s.name for s in cost.experiment_specs(SMOKE)]
    for row, spec in zip(rows, cost.experiment_specs(SMOKE), strict=True):
        assert all(isinstance(v, (int, float, str)) for v in row.values())  # flat rows
        assert list(row) == [
            "experiment",
            "params",
            "tokens_per_step",
            "attention_flops",
            "ff_flops",
            "total_flops",
            "activation_bytes",
            "table3_bytes",
            "steps",
            "gpu_hours",
        ]
        flops = cost.flops_per_step(spec)
        assert (row["attention_flops"], row["ff_flops"]) == (
            flops["attention"],
            flops["feedforward"],
        )
        assert row["table3_bytes"] == cost.table3_activation(spec)["bytes"]
        details = data["details"][spec.name]
        memory = cost.activation_bytes(spec)
        state = budget.state_bytes(row["params"], spec.optimizer)
        assert details["peak_bytes"] == memory["total"] + memory["reversible_backward"] + state
        assert details["table1"] == cost.table1_terms(spec)


def _paper_experiment(name: str) -> tuple[dict, dict, dict]:
    """(task, model, train) of one experiment of configs/paper.yaml, read as plain YAML."""
    raw = yaml.safe_load(PAPER.read_text())
    entry = raw["experiments"][name]
    return (
        entry["task"],
        {**raw["model"], **entry.get("model", {})},
        {**raw["train"], **entry.get("train", {})},
    )


def test_cli_writes_the_paper_profile_beside_the_current_one(tmp_path, capsys):
    out = tmp_path / "budget.json"
    argv = ["--params", str(SMOKE), "--paper-params", str(PAPER), "--json", str(out)]
    assert budget.main(argv, COST_MODEL) == 0
    printed = capsys.readouterr().out
    assert f"compute budget: {PAPER}" in printed and "GPU-h over 21 experiments" in printed
    data = json.loads(out.read_text())
    # the current profile stays at the top level (older readers); the paper one is added
    assert [r["experiment"] for r in data["experiments"]] == list(
        yaml.safe_load(SMOKE.read_text())["experiments"]
    )
    paper = data["paper"]
    assert paper["assumptions"]["params_file"] == str(PAPER)
    assert (paper["assumptions"]["accelerator"], paper["assumptions"]["mfu"]) == ("a100", 0.3)
    rows = {r["experiment"]: r for r in paper["experiments"]}
    assert list(rows) == list(yaml.safe_load(PAPER.read_text())["experiments"])
    for row in rows.values():
        assert all(isinstance(v, (int, float, str)) for v in row.values())  # flat rows

    # Parameters: the models built here from the YAML, without the estimator's spec code.
    for name in ("dup-full", "enwik8-transformer", "enwik8-12l"):
        task, model, train = _paper_experiment(name)
        seq_len = train["seq_len"] or yaml.safe_load(PAPER.read_text())["tasks"][task]["length"]
        vocab = 128 if task == "duplication" else 256
        with torch.device("meta"):
            lm = ReformerLM(vocab_size=vocab, max_seq_len=seq_len, **model)
        assert rows[name]["params"] == sum(p.numel() for p in lm.parameters()), name
        assert rows[name]["tokens_per_step"] == train["batch_size"] * seq_len
        assert rows[name]["steps"] == train["steps"]

    # FLOPs of enwik8-transformer written out: 2 FLOPs per MAC over B l tokens; per token
    # and layer the forward MACs are 4 d^2 (separate q, k, v, out projections) + 2 l d
    # (Q K^T and P V over all l keys) in attention, 2 d d_ff in the feed-forward; the tied
    # head is V d. Passes: 3 (forward + 2 backward), +1/2 for the checkpointed feed-forward
    # chunks (their first layer again), +1 for the checkpointed chunked loss.
    d, f, n_l, l, B, V = 1024, 4096, 3, 4096, 8, 256
    row = rows["enwik8-transformer"]
    attention = 2 * 3 * n_l * (4 * d * d + 2 * l * d) * B * l
    feedforward = 2 * 3.5 * n_l * 2 * d * f * B * l
    head = 2 * 4 * V * d * B * l
    assert row["attention_flops"] == attention
    assert row["ff_flops"] == feedforward
    assert row["total_flops"] == attention + feedforward + head
    # ... which is above the 6 N D rule of thumb for its matmul weights alone
    assert row["total_flops"] > 6 * (n_l * (4 * d * d + 2 * d * f) + V * d) * B * l

    # GPU-hours: all training FLOPs at 30% of the A100's 312 TFLOP/s, about 600 in total
    # (the figure docs/guides/reproducing.md quotes)
    for r in rows.values():
        assert math.isclose(r["gpu_hours"], r["total_flops"] * r["steps"] / (312e12 * 0.3) / 3600)
    total = sum(r["total_flops"] * r["steps"] for r in rows.values()) / (312e12 * 0.3) / 3600
    assert 585 <= total <= 625  # 605 with the paper's bucket rule (hashing: n_buckets / 2 = l / m)

    from repro.reporting import budget_tables

    tex = budget_tables(data)
    assert "tab:budget}" in tex and "tab:budget-paper}" in tex
    assert f"{total:.0f} A100-hours in total at 30\\% MFU" in tex


def test_cli_check_passes_on_the_smoke_profile(capsys):
    code = budget.main(
        ["--params", str(SMOKE), "--check", "--check-params", str(SMOKE)], COST_MODEL
    )
    assert code == 0
    assert capsys.readouterr().out.count(" ok") == len(cost.experiment_specs(SMOKE))


def test_params_with_a_task_unknown_to_the_config_are_read_as_yaml(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(
        "tasks:\n  wmt14: {vocab_size: 1000, max_len: 32}\n"
        "model: {d_model: 16, n_heads: 2, d_ff: 32, attention: full, shared_qk: false}\n"
        "train: {batch_size: 4, steps: 7}\n"
        "distributed: {nproc_per_node: 2}\n"
        "experiments:\n  wmt-base: {task: wmt14, model: {n_layers: 2}}\n"
    )
    (spec,) = cost.experiment_specs(params)
    assert isinstance(spec, Seq2SeqSpec)
    assert (spec.vocab_size, spec.src_len, spec.micro_batch, spec.steps) == (1000, 32, 2, 7)
    assert spec.m["n_layers"] == 2 and spec.m["d_model"] == 16
