"""The Reformer's sections of params.yaml through the kit's validation (reformer/config.py):
each bad value gives one line naming key, value, allowed; the shapes its model can run; its
translation set-up; and the experiments of its profiles. (The kit's own checks, on a paper
made for them: tests/repro/test_config.py.)"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import replace as dataclass_replace
from pathlib import Path

import pytest
import yaml
from config_checks import changed
from config_checks import config_error as error_of

from reformer.config import (
    EvaluateConfig,
    ModelConfig,
    check_experiment,
    eval_modes,
    model_kwargs,
)
from repro.config import (
    DistributedConfig,
    ExperimentConfig,
    load_params,
    parse_params,
)

ROOT = Path(__file__).resolve().parents[2]

BASE = {  # the paper comes from pyproject.toml: [tool.repro] paper = "reformer"
    "profile": "test",
    "seed": 0,
    "tasks": {
        "duplication": {
            "length": 64,
            "vocab_size": 16,
            "n_train": 128,
            "n_valid": 8,
            "n_test": 8,
            "seed": 0,
        }
    },
    "model": {"d_model": 32, "n_heads": 2, "d_ff": 64, "bucket_size": 16, "n_hashes": 2},
    "train": {"steps": 10, "batch_size": 8},
    "distributed": {"nproc_per_node": 2, "device": "cpu"},
    "experiments": {
        "dup-full": {"task": "duplication", "model": {"attention": "full"}},
        "dup-lsh4": {"task": "duplication", "model": {"attention": "lsh", "n_hashes": 4}},
    },
}


def with_change(path: str, value: object) -> dict:
    """BASE with the dotted key ``path`` set to ``value``."""
    return changed(BASE, path, value)


def test_valid_params_resolve_experiment_overrides_over_defaults():
    params = parse_params(BASE)
    lsh = params.experiment("dup-lsh4")
    assert (lsh.model.attention, lsh.model.n_hashes, lsh.model.d_model) == ("lsh", 4, 32)
    full = params.experiment("dup-full")
    assert (full.model.attention, full.model.n_hashes) == ("full", 2)  # default kept
    assert full.seq_len == 64 and full.train.steps == 10
    kwargs = model_kwargs(lsh, vocab_size=16)
    assert kwargs["max_seq_len"] == 64 and kwargs["vocab_size"] == 16


def test_unknown_nested_key_names_full_path_and_suggestion():
    message = error_of(with_change("train.stesp", 5))
    assert "'train.stesp'" in message and "did you mean 'steps'?" in message
    message = error_of(with_change("experiments.dup-full.model.atention", "full"))
    assert "'experiments.dup-full.model.atention'" in message
    assert "did you mean 'attention'?" in message


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("train.steps", "many", "train.steps = 'many': must be an integer"),
        ("model.reversible", "yes", "model.reversible = 'yes': must be true or false"),
        ("train.lr", [1], "train.lr = [1]: must be a number"),
        ("evaluate.n_hashes", [1, "two"], "evaluate.n_hashes[1] = 'two': must be an integer"),
        ("train.lr", float("nan"), "train.lr = nan: must be a finite number"),
        ("train.betas", [0.9], "train.betas = [0.9]: must be a list of 2 values"),
    ],
)
def test_wrong_type(path, value, expected):
    assert expected in error_of(with_change(path, value))


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("model.d_model", 0, "model.d_model = 0: must be an integer >= 1"),
        ("train.batch_size", -4, "train.batch_size = -4: must be an integer >= 1"),
        ("evaluate.n_hashes", [1, 0], "evaluate.n_hashes = [1, 0]: must be an integer >= 1"),
        ("model.dropout", 1.0, "model.dropout = 1.0: must be a number < 1.0"),
        ("train.betas", [0.9, 1.0], "train.betas = (0.9, 1.0): must be a number < 1.0"),
        ("tasks.duplication.n_train", 0, "'n_train' = 0: must be > 0"),
    ],
)
def test_non_positive_sizes(path, value, expected):
    assert expected in error_of(with_change(path, value))


def test_length_not_divisible_by_bucket_size():
    message = error_of(with_change("model.bucket_size", 24))
    assert "model.bucket_size = 24" in message
    assert "sequence length 64 is not divisible" in message and "allowed:" in message


def test_odd_number_of_buckets_only_with_the_half_rule():
    data = with_change("tasks.duplication.length", 48)
    assert parse_params(data).experiment("dup-lsh4").model.bucket_rule == "paper"  # 6 buckets
    data["model"]["bucket_rule"] = "half"
    message = error_of(data)  # 48 / 16 = 3 buckets
    assert "model.bucket_size = 16" in message and "odd number of buckets" in message
    assert "48 / 16 = 3" in message and "'half'" in message and "\n" not in message
    data["model"]["bucket_rule"] = "double"
    assert "model.bucket_rule = 'double'" in error_of(data)


def test_unknown_task_and_unknown_variant():
    message = error_of(with_change("experiments.dup-full.task", "copying"))
    assert "experiments.dup-full.task = 'copying' is unknown" in message
    assert "allowed: duplication" in message
    message = error_of(with_change("tasks.copy", {}))
    assert "task 'tasks.copy' is unknown" in message and "allowed: duplication, enwik8" in message
    message = error_of(with_change("experiments.dup-full.model.attention", "sparse"))
    assert "experiments.dup-full.model.attention = 'sparse'" in message
    assert "allowed: lsh, full" in message


def test_lsh_without_shared_qk_and_batch_not_divisible_by_ranks():
    message = error_of(with_change("experiments.dup-lsh4.model.shared_qk", False))
    assert "experiments.dup-lsh4.model.shared_qk = False" in message
    message = error_of(with_change("train.batch_size", 9))
    assert "train.batch_size = 9" in message and "nproc_per_node x grad_accum = 2" in message


def test_default_profile_has_the_table2_experiments_and_the_one_head_model():
    params = load_params(ROOT / "configs" / "default.yaml")
    assert list(params.experiments) == [
        "dup-full",
        "dup-lsh1",
        "dup-lsh2",
        "dup-lsh4",
        "dup-full-h1",
    ]
    assert all(e.model.shared_qk for e in params.experiments.values())
    assert all(e.model.bucket_rule == "paper" for e in params.experiments.values())
    variants = {n: (e.model.attention, e.model.n_hashes) for n, e in params.experiments.items()}
    assert variants["dup-full"][0] == "full"
    assert [variants[f"dup-lsh{r}"] for r in (1, 2, 4)] == [("lsh", 1), ("lsh", 2), ("lsh", 4)]
    one, four = params.experiment("dup-full-h1"), params.experiment("dup-full")
    assert one.model == dataclass_replace(four.model, n_heads=1)  # only the heads differ
    ev = four.evaluate  # the evaluation-time experiments of every model
    assert ev.no_self_mask and ev.qk_scales and ev.bucket_sizes and ev.bucket_rules == ["half"]


def _profile(name: str):
    return load_params(ROOT / "configs" / f"{name}.yaml")


def test_heads_profile_is_the_grid_with_one_head_beside_four_and_separate_qk():
    exps = _profile("heads").experiments
    for name in ("full", "lsh1", "lsh2", "lsh4"):
        four, one = exps[f"dup-{name}"], exps[f"dup-{name}-h1"]
        assert (four.model.n_heads, one.model.n_heads) == (4, 1)
        assert one.model == dataclass_replace(four.model, n_heads=1)
    for name, heads in (("dup-full-sepqk", 4), ("dup-full-sepqk-h1", 1)):
        sep = exps[name]
        assert (sep.model.attention, sep.model.shared_qk, sep.model.n_heads) == (
            "full",
            False,
            heads,
        )
        assert sep.evaluate.lsh_separate_qk and "lsh1" in [
            m.label for m in eval_modes(sep, sep.evaluate)
        ]


def test_seeds_profile_trains_each_table2_model_with_five_seeds():
    exps = _profile("seeds").experiments
    default = _profile("default").experiments
    for name in ("full", "lsh1", "lsh2", "lsh4"):
        runs = [exps[f"dup-{name}"]] + [exps[f"dup-{name}-s{k}"] for k in range(1, 5)]
        assert [e.seed for e in runs] == [0, 1, 2, 3, 4]
        assert all(e.model == default[f"dup-{name}"].model for e in runs)  # only the seed differs
        assert all(e.train == default[f"dup-{name}"].train for e in runs)


def test_table2_profile_is_the_papers_length_with_the_papers_bucket_rule():
    params = _profile("table2")
    assert {"dup-full", "dup-lsh1", "dup-lsh2", "dup-lsh4", "dup-full-h1"} <= set(
        params.experiments
    )
    for exp in params.experiments.values():
        m = exp.model
        assert exp.seq_len == 1024 and exp.task_params["vocab_size"] == 128
        assert (m.bucket_rule, m.bucket_size) == ("paper", 64)  # 2 * 1024 / 64 = 32 buckets
        assert m.n_heads == (1 if exp.name.endswith("-h1") else 4)
        assert exp.train.steps * exp.train.batch_size >= 2000 * 8  # paper.md: ~2,000 steps at 8


WMT = {"max_len": 12, "vocab_size": 64}  # validated only (nothing is downloaded here)


def wmt_params(**experiment: object) -> dict:
    """BASE plus a wmt14 task and one translation experiment with ``experiment`` keys."""
    data = copy.deepcopy(BASE)
    data["tasks"]["wmt14"] = dict(WMT)
    data["experiments"]["wmt"] = {
        "task": "wmt14",
        "model": {"attention": "full", "shared_qk": False, "n_layers": 2},
        **experiment,
    }
    return data


def test_translation_experiment_packs_pairs_and_builds_an_encoder_decoder():
    params = parse_params(wmt_params())
    exp = params.experiment("wmt")
    assert exp.seq_len == 2 * WMT["max_len"]  # source + target, packed
    kwargs = model_kwargs(exp, vocab_size=64)
    # n_layers is the depth of both stacks; positions cover one side (max_len)
    assert (kwargs["n_encoder_layers"], kwargs["n_decoder_layers"]) == (2, 2)
    assert (kwargs["max_seq_len"], kwargs["vocab_size"], kwargs["d_model"]) == (12, 64, 32)
    assert [tuple(m[:3]) for m in eval_modes(exp, exp.evaluate)] == [
        ("beam", "full", None),
        ("greedy", "full", None),
    ]
    assert (exp.evaluate.beam_size, exp.evaluate.length_penalty) == (4, 0.6)  # the paper's


def test_translation_rejects_lsh_and_a_mismatched_length():
    lsh = wmt_params(model={"attention": "lsh", "shared_qk": True})
    assert error_of(lsh) == (
        "params.yaml: experiments.wmt.model.attention = 'lsh': the encoder-decoder uses full "
        "attention (the paper's WMT model); allowed: full"
    )
    wrong_len = wmt_params(model={"attention": "full", "shared_qk": False}, train={"seq_len": 12})
    assert "experiments.wmt.train.seq_len = 12" in error_of(wrong_len)
    assert "allowed: null or 24" in error_of(wrong_len)
    bad_task = wmt_params()
    bad_task["tasks"]["wmt14"]["max_len"] = 2
    assert error_of(bad_task).startswith("params.yaml: tasks.wmt14: wmt14 param 'max_len' = 2")


def test_experiment_evaluate_overrides_the_section_for_that_experiment_only():
    data = copy.deepcopy(BASE)
    data["evaluate"] = {"batch_size": 16, "n_hashes": [1, 2]}
    data["experiments"]["dup-lsh4"]["evaluate"] = {"full": False, "batch_size": 1}
    params = parse_params(data)
    lsh, full = params.experiment("dup-lsh4"), params.experiment("dup-full")
    assert (lsh.evaluate.full, lsh.evaluate.batch_size, lsh.evaluate.n_hashes) == (
        False,
        1,
        [1, 2],
    )
    assert [m[0] for m in eval_modes(lsh, lsh.evaluate)] == ["lsh1", "lsh2"]
    assert (full.evaluate.full, full.evaluate.batch_size) == (True, 16)
    assert params.wandb_config("dup-lsh4")["evaluate"]["batch_size"] == 1
    data["experiments"]["dup-lsh4"]["evaluate"] = {"beam": 4}
    assert error_of(data).startswith(
        "params.yaml: unknown key 'experiments.dup-lsh4.evaluate.beam' (did you mean "
        "'beam_size'?); allowed: n_hashes,"
    )
    data["experiments"]["dup-lsh4"]["evaluate"] = {"length_penalty": -1}
    assert "experiments.dup-lsh4.evaluate.length_penalty = -1" in error_of(data)


def test_paper_profile_defines_table4_and_the_section5_ablations():
    params = load_params(ROOT / "configs" / "paper.yaml")
    exps = params.experiments
    base, big = exps["wmt14-reversible-base"], exps["wmt14-reversible-big"]
    # Table 4 (Vaswani et al.'s base and big shapes, reversible, rsqrt warmup 4000)
    assert (base.model.n_layers, base.model.d_model, base.model.d_ff, base.model.n_heads) == (
        6,
        512,
        2048,
        8,
    )
    assert (big.model.d_model, big.model.d_ff, big.model.n_heads) == (1024, 4096, 16)
    assert (base.model.dropout, big.model.dropout) == (0.1, 0.3)
    assert [
        exps[n].train.steps
        for n in ("wmt14-reversible-base", "wmt14-reversible-base-500k", "wmt14-reversible-big")
    ] == [100_000, 500_000, 300_000]
    for exp in (base, big):
        assert exp.model.reversible and exp.train.schedule == "rsqrt"
        assert exp.train.warmup_steps == 4000
        assert exp.evaluate.max_batches is None  # the whole newstest2014
    # Section 5: 3 layers, d 1024, d_ff 4096, 8 heads, batch 8, at 4096 and 65536
    ablations = {n: e for n, e in exps.items() if n.startswith("enwik8-") and n != "enwik8-12l"}
    for exp in ablations.values():
        m = exp.model
        assert (m.n_layers, m.d_model, m.d_ff, m.n_heads) == (3, 1024, 4096, 8)
        assert exp.train.batch_size == 8 and m.positional == "axial"
    lengths = {n: e.seq_len for n, e in ablations.items()}
    assert {lengths[f"enwik8-lsh{r}"] for r in (1, 2, 4, 8)} == {4096}
    assert {lengths[f"enwik8-64k-lsh{r}"] for r in (1, 2, 4, 8)} == {65536}
    assert [exps[f"enwik8-lsh{r}"].model.n_hashes for r in (1, 2, 4, 8)] == [1, 2, 4, 8]
    # each Figure 3 comparison changes one thing against the ordinary Transformer
    t = exps["enwik8-transformer"].model
    assert (t.shared_qk, t.reversible, t.attention) == (False, False, "full")
    assert exps["enwik8-shared-qk"].model == dataclass_replace(t, shared_qk=True)
    assert exps["enwik8-reversible"].model == dataclass_replace(t, reversible=True)
    # full attention at 65536 would not fit: those runs are never evaluated with it
    assert not any(
        m[0] == "full"
        for n, e in exps.items()
        if e.seq_len == 65536
        for m in eval_modes(e, e.evaluate)
    )
    assert exps["enwik8-12l"].model.n_layers == 12 and exps["enwik8-12l"].train.steps == 20_000


def test_every_claim_names_experiments_of_a_profile():
    claims = yaml.safe_load((ROOT / "report" / "claims.yaml").read_text())
    paper = load_params(ROOT / "configs" / "paper.yaml").experiments
    every = set()
    for path in (ROOT / "configs").glob("*.yaml"):
        experiments = load_params(path).experiments
        every |= set(experiments)  # a bare name: the current profile's experiment
        every |= {f"{path.stem}/{e}" for e in experiments}  # a saved run: <profile>/<exp>
    named = {e for c in claims["claims"] for e in c.get("experiments", [])}
    from repro.reporting.generated import table_experiments

    named |= {e for table in claims["tables"] for e in table_experiments(table)}
    assert named and named <= every, sorted(named - every)
    assert any("/" in e for e in named)  # the report quotes other profiles' saved runs
    table2 = {row["experiment"] for row in claims["tables"][0]["rows"]}
    assert table2 <= set(paper)  # the paper's own grid runs at the paper's scale
    # Table 4: the paper's three numbers for each of its three reversible models
    table4 = {
        (c["experiments"][0], c["metric"]): c["paper"]
        for c in claims["claims"]
        if c.get("experiments", [""])[0].startswith("wmt14-")
    }
    assert table4 == {
        ("wmt14-reversible-base", "eval/bleu"): 27.6,
        ("wmt14-reversible-base", "eval/sacrebleu_uncased"): 27.4,
        ("wmt14-reversible-base", "eval/sacrebleu_cased"): 26.9,
        ("wmt14-reversible-base-500k", "eval/bleu"): 28.0,
        ("wmt14-reversible-base-500k", "eval/sacrebleu_uncased"): 27.9,
        ("wmt14-reversible-base-500k", "eval/sacrebleu_cased"): 27.4,
        ("wmt14-reversible-big", "eval/bleu"): 29.1,
        ("wmt14-reversible-big", "eval/sacrebleu_uncased"): 28.9,
        ("wmt14-reversible-big", "eval/sacrebleu_cased"): 28.4,
    }


def test_profiles_give_every_pipeline_section():
    # smoke: tiny shapes; default: the few-minute sweep; paper: the whole sweep
    expected = {"smoke": {"quick": True}, "default": {"mode": "small"}, "paper": {"quick": False}}
    for profile, benchmark in expected.items():
        raw = yaml.safe_load((ROOT / "configs" / f"{profile}.yaml").read_text())
        assert raw["benchmark"] == benchmark, profile
        assert set(raw["budget"]) <= {"accelerator", "mfu", "tflops"}, profile
    smoke = load_params(ROOT / "configs" / "smoke.yaml")
    assert smoke.experiment("wmt14-smoke").task == "wmt14"
    # the committed fixture archives, pinned by the sha256 that prepare checks
    for source in [*smoke.tasks["wmt14"]["train"], smoke.tasks["wmt14"]["test"]]:
        path = ROOT / source["url"]
        algo, expected = source["checksum"].split(":")
        assert algo == "sha256" and hashlib.sha256(path.read_bytes()).hexdigest() == expected


def test_heads_must_divide_the_width_and_axial_shape_must_cover_the_length():
    assert error_of(with_change("model.n_heads", 3)) == (
        "params.yaml: experiments.dup-full.model.n_heads = 3: must divide model.d_model = 32"
    )
    data = with_change("model.positional", "axial")
    data["model"]["axial_shape"] = [4, 8]
    assert error_of(data) == (
        "params.yaml: experiments.dup-full.model.axial_shape = (4, 8): positional: axial needs "
        "[a, b] with a * b >= 64"
    )
    data["model"]["axial_shape"] = [8, 8]
    assert parse_params(data).experiment("dup-full").model.axial_shape == (8, 8)
    data["model"]["axial_shape"] = [8]
    assert "model.axial_shape = [8]: must be a list of 2 values" in error_of(data)


def test_check_experiment_names_the_key_relative_to_the_experiment():
    """The plug-in's message; the kit prefixes ``params.yaml: experiments.<name>.``."""
    exp = ExperimentConfig(
        "e", "duplication", {}, ModelConfig(bucket_size=30), None, 0, 64, EvaluateConfig()
    )
    try:
        check_experiment(exp, DistributedConfig())
    except ValueError as err:
        assert str(err).startswith("model.bucket_size = 30: the sequence length 64 is not")
    else:
        raise AssertionError("bucket_size 30 accepted for length 64")
    # full attention, evaluated without LSH: any bucket size is fine
    full = ModelConfig(attention="full", shared_qk=False, bucket_size=30)
    check_experiment(dataclass_replace(exp, model=full), DistributedConfig())
