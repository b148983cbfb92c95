"""params.yaml validation by the kit: each bad configuration gives one line naming key,
value, allowed; a paper's sections, tasks and checks plug in through repro.paper.

The paper here is ``tests/repro/minipaper`` (two tasks, a small model and evaluate section,
one cross-field check), so these tests hold in any project made from the template; the
reproduced paper's own sections have their tests beside the paper's other tests. The file,
the paper lookup, the profiles and the command line: test_config_files.py.
"""

from __future__ import annotations

import pytest
from config_checks import changed
from config_checks import config_error as error_of

from repro.config import ConfigError, check_runtime, parse_params

BASE = {
    "paper": "minipaper",
    "profile": "test",
    "seed": 0,
    "tasks": {"copy": {"length": 16, "n_train": 64}, "text": {}},
    "model": {"width": 32, "heads": 2},
    "train": {"steps": 10, "batch_size": 8},
    "distributed": {"nproc_per_node": 2, "device": "cpu"},
    "evaluate": {"rounds": [1, 2]},
    "experiments": {
        "small": {"task": "copy", "model": {"kind": "plain"}},
        "big": {"task": "copy", "model": {"kind": "fancy", "width": 64}, "seed": 3},
    },
}


def with_change(path: str, value: object) -> dict:
    """BASE with the dotted key ``path`` set to ``value``."""
    return changed(BASE, path, value)


def test_valid_params_resolve_experiment_overrides_over_defaults():
    params = parse_params(BASE)
    big, small = params.experiment("big"), params.experiment("small")
    assert (big.model.kind, big.model.width, big.model.heads, big.seed) == ("fancy", 64, 2, 3)
    assert (small.model.kind, small.model.width, small.seed) == ("plain", 32, 0)
    assert big.seq_len == 16 and big.train.steps == 10 and big.task_params == BASE["tasks"]["copy"]
    assert params.paper == "minipaper" and params.tracking.project == "minipaper-reproduction"
    assert params.raw == BASE
    config = params.wandb_config("big")
    assert (config["model"]["width"], config["train"]["steps"], config["seq_len"]) == (64, 10, 16)
    assert big.fingerprint(2) == big.fingerprint(2) != big.fingerprint(1)
    assert big.fingerprint(2) != small.fingerprint(2)


def test_unknown_top_level_key_suggests_the_closest():
    message = error_of({**BASE, "trian": {}})
    assert "unknown key 'trian'" in message and "did you mean 'train'?" in message
    assert "allowed: paper, profile, seed, tasks, model, train," in message


def test_unknown_nested_key_names_full_path_and_suggestion():
    message = error_of(with_change("train.stesp", 5))
    assert "'train.stesp'" in message and "did you mean 'steps'?" in message
    message = error_of(with_change("experiments.big.model.widht", 8))
    assert message == (
        "params.yaml: unknown key 'experiments.big.model.widht' (did you mean 'width'?); "
        "allowed: width, heads, kind, shared, dropout, shape"
    )
    message = error_of(with_change("experiments.big.trian", {}))
    assert "'experiments.big.trian' (did you mean 'train'?)" in message
    assert "allowed: task, model, train, evaluate, seed, description" in message


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("train.steps", "many", "train.steps = 'many': must be an integer"),
        ("train.steps", 2.5, "train.steps = 2.5: must be an integer"),
        ("train.steps", True, "train.steps = True: must be an integer"),
        ("train.resume", "yes", "train.resume = 'yes': must be true or false"),
        ("model.shared", 1, "model.shared = 1: must be true or false"),
        ("train.lr", [1], "train.lr = [1]: must be a number"),
        ("train.lr", float("nan"), "train.lr = nan: must be a finite number"),
        ("train.betas", [0.9], "train.betas = [0.9]: must be a list of 2 values"),
        ("train.betas", [0.9, 0.99, 0.9], "train.betas = [0.9, 0.99, 0.9]: must be a list of 2"),
        ("model.shape", [4], "model.shape = [4]: must be a list of 2 values"),
        ("model.shape", [4, "x"], "model.shape[1] = 'x': must be an integer"),
        ("evaluate.rounds", [1, "two"], "evaluate.rounds[1] = 'two': must be an integer"),
        ("evaluate.rounds", 3, "evaluate.rounds = 3: must be a list"),
        ("train.optimizer", "sgd", "train.optimizer = 'sgd': allowed: adamw, adafactor"),
        ("model.kind", "odd", "model.kind = 'odd': allowed: plain, fancy"),
        ("tracking.project", "", "tracking.project = '': must be a non-empty string"),
        ("train", 5, "train = 5: must be a mapping of keys to values"),
        ("experiments.big.model", [1], "experiments.big.model = [1]: must be a mapping"),
        ("experiments.big.seed", "x", "experiments.big.seed = 'x': must be an integer"),
    ],
)
def test_wrong_type(path, value, expected):
    assert expected in error_of(with_change(path, value))


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("train.batch_size", -4, "train.batch_size = -4: must be an integer >= 1"),
        ("train.betas", [0.9, 1.0], "train.betas = (0.9, 1.0): must be a number < 1.0"),
        ("train.min_lr_ratio", 2, "train.min_lr_ratio = 2.0: must be a number <= 1.0"),
        ("model.width", 0, "model.width = 0: must be an integer >= 1"),
        ("model.dropout", 1.0, "model.dropout = 1.0: must be a number < 1.0"),
        ("evaluate.rounds", [1, 0], "evaluate.rounds = [1, 0]: must be an integer >= 1"),
        ("seed", -1, "seed = -1: must be an integer >= 0"),
        ("experiments.big.seed", -1, "experiments.big.seed = -1: must be an integer >= 0"),
        ("tasks.copy.n_train", 0, "params.yaml: tasks.copy: copy param 'n_train' = 0: must be"),
    ],
)
def test_out_of_range(path, value, expected):
    assert expected in error_of(with_change(path, value))


def test_yaml_numbers_and_experiment_overrides_of_the_kit_sections():
    params = parse_params(with_change("train.lr", "1e-3"))  # YAML 1.1 reads 1e-3 as a string
    assert params.train.lr == pytest.approx(1e-3)
    params = parse_params(with_change("train.steps", 20.0))
    assert params.train.steps == 20 and isinstance(params.train.steps, int)
    assert parse_params(with_change("train.steps", "1e2")).train.steps == 100
    data = with_change("experiments.big.train", {"lr": 0.5, "betas": [0.8, 0.9]})
    big, small = parse_params(data).experiment("big"), parse_params(data).experiment("small")
    assert (big.train.lr, big.train.betas, big.train.steps) == (0.5, (0.8, 0.9), 10)
    assert (small.train.lr, small.train.betas) == (1e-3, (0.9, 0.999))


def test_experiment_evaluate_overrides_the_section_for_that_experiment_only():
    data = with_change("experiments.big.evaluate", {"full": False, "batch_size": 1})
    params = parse_params(data)
    big, small = params.experiment("big"), params.experiment("small")
    assert (big.evaluate.full, big.evaluate.batch_size, big.evaluate.rounds) == (False, 1, [1, 2])
    assert (small.evaluate.full, small.evaluate.batch_size) == (True, 8)
    assert params.wandb_config("big")["evaluate"]["batch_size"] == 1
    data["experiments"]["big"]["evaluate"] = {"round": [1]}
    assert error_of(data) == (
        "params.yaml: unknown key 'experiments.big.evaluate.round' (did you mean 'rounds'?); "
        "allowed: rounds, batch_size, full"
    )
    data["experiments"]["big"]["evaluate"] = {"batch_size": 0}
    assert "experiments.big.evaluate.batch_size = 0: must be an integer >= 1" in error_of(data)


def test_unknown_task_and_experiment_task():
    message = error_of(with_change("experiments.big.task", "copying"))
    assert message == (
        "params.yaml: experiments.big.task = 'copying' is unknown (did you mean 'copy'?); "
        "allowed: copy, text"
    )
    data = with_change("experiments.big.task", "text")
    del data["tasks"]["text"]
    assert "(add it under tasks: first; known tasks: copy, text); allowed: copy" in error_of(data)
    message = error_of(with_change("tasks.cpy", {}))
    assert (
        message
        == "params.yaml: task 'tasks.cpy' is unknown (did you mean 'copy'?); allowed: copy, text"
    )
    message = error_of(with_change("experiments.big", {"model": {"width": 64}}))
    assert message == "params.yaml: experiments.big.task = None: required; allowed: copy, text"
    assert "experiments.bad name = 'bad name': an experiment name may use letters" in error_of(
        with_change("experiments.bad name", {"task": "copy"})
    )


def test_the_tasks_sequence_length_names_train_seq_len():
    message = error_of(with_change("experiments.big.train", {"seq_len": 32}))
    assert message == (
        "params.yaml: experiments.big.train.seq_len = 32: the copy task has length 16; "
        "allowed: null or 16"
    )
    data = with_change("experiments.prose", {"task": "text"})
    assert error_of(data) == (
        "params.yaml: experiments.prose.train.seq_len = None: task 'text' needs a sequence "
        "length; allowed: an integer >= 2"
    )
    data["experiments"]["prose"]["train"] = {"seq_len": 64}
    assert parse_params(data).experiment("prose").seq_len == 64


def test_cross_field_checks_of_the_kit_and_of_the_paper():
    message = error_of(with_change("train.batch_size", 9))
    assert message == (
        "params.yaml: experiments.small.train.batch_size = 9: must be a multiple of "
        "nproc_per_node x grad_accum = 2"
    )
    message = error_of(with_change("train.warmup_steps", 11))
    assert message == (
        "params.yaml: experiments.small.train.warmup_steps = 11: must be at most train.steps = 10"
    )
    message = error_of(with_change("tasks.copy.n_train", 2))
    assert message.startswith("params.yaml: tasks.copy = 2 training sequences: must hold at least")
    assert "(experiments.small.train.batch_size / grad_accum = 8)" in message
    # the paper's check: its "model.<key> = <value>: ..." gets the experiment's path
    assert error_of(with_change("experiments.big.model.heads", 3)) == (
        "params.yaml: experiments.big.model.heads = 3: must divide model.width = 64"
    )


def test_unknown_experiment_name_suggests():
    params = parse_params(BASE)
    with pytest.raises(ConfigError, match=r"'bgi' is unknown \(did you mean 'big'\?\)"):
        params.experiment("bgi")


def test_more_ranks_than_cores():
    params = parse_params(with_change("distributed.nproc_per_node", 4))
    with pytest.raises(ConfigError) as info:
        check_runtime(params, cpu_count=2)
    message = str(info.value)
    assert message == (
        "params.yaml: distributed.nproc_per_node = 4: more ranks than the 2 CPU cores of "
        "this machine; allowed: 1 to 2"
    )
    check_runtime(parse_params(BASE), cpu_count=2)  # 2 ranks on 2 cores is fine
    params = parse_params(with_change("distributed.backend", "nccl"))
    with pytest.raises(ConfigError, match="backend = 'nccl': needs CUDA GPUs"):
        check_runtime(params, cpu_count=2)


def test_more_ranks_than_gpus():
    params = parse_params(with_change("distributed.device", "cuda"))
    with pytest.raises(ConfigError, match="more ranks than the 1 GPUs"):
        check_runtime(params, gpu_count=1)
    with pytest.raises(ConfigError, match="device = 'cuda': no CUDA GPU found"):
        check_runtime(params, gpu_count=0)
