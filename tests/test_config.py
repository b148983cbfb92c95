"""params.yaml validation: each bad configuration gives one line naming key, value, allowed."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reformer.config import (
    ConfigError,
    check_runtime,
    load_params,
    parse_params,
    use_profile,
)

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

BASE = {
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
    data = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return data


def error_of(data: dict) -> str:
    with pytest.raises(ConfigError) as info:
        parse_params(data)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def test_valid_params_resolve_experiment_overrides_over_defaults():
    params = parse_params(BASE)
    lsh = params.experiment("dup-lsh4")
    assert (lsh.model.attention, lsh.model.n_hashes, lsh.model.d_model) == ("lsh", 4, 32)
    full = params.experiment("dup-full")
    assert (full.model.attention, full.model.n_hashes) == ("full", 2)  # default kept
    assert full.seq_len == 64 and full.train.steps == 10
    kwargs = lsh.model_kwargs(vocab_size=16)
    assert kwargs["max_seq_len"] == 64 and kwargs["vocab_size"] == 16


def test_unknown_top_level_key_suggests_the_closest():
    message = error_of({**BASE, "trian": {}})
    assert "unknown key 'trian'" in message and "did you mean 'train'?" in message
    assert "allowed:" in message


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


def test_odd_number_of_buckets():
    data = with_change("tasks.duplication.length", 48)
    message = error_of(data)  # 48 / 16 = 3 buckets
    assert "model.bucket_size = 16" in message and "odd number of buckets" in message
    assert "48 / 16 = 3" in message


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


def test_unknown_experiment_name_suggests():
    params = parse_params(BASE)
    with pytest.raises(ConfigError, match=r"'dup-lsh' is unknown \(did you mean 'dup-lsh4'\?\)"):
        params.experiment("dup-lsh")


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


def test_more_ranks_than_gpus():
    params = parse_params(with_change("distributed.device", "cuda"))
    with pytest.raises(ConfigError, match="more ranks than the 1 GPUs"):
        check_runtime(params, gpu_count=1)


def test_yaml_1_1_exponent_strings_are_numbers():
    params = parse_params(with_change("train.lr", "1e-3"))
    assert params.train.lr == pytest.approx(1e-3)


def test_bad_yaml_is_one_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  steps: [1,\n")
    with pytest.raises(ConfigError) as info:
        load_params(path)
    assert "\n" not in str(info.value) and "not valid YAML (line" in str(info.value)


@pytest.mark.parametrize("profile", ["smoke", "default", "paper"])
def test_profiles_are_valid(profile):
    params = load_params(ROOT / "configs" / f"{profile}.yaml")
    assert params.profile == profile and params.experiments


def test_default_profile_has_the_table2_experiments():
    params = load_params(ROOT / "configs" / "default.yaml")
    assert list(params.experiments) == ["dup-full", "dup-lsh1", "dup-lsh2", "dup-lsh4"]
    assert all(e.model.shared_qk for e in params.experiments.values())
    variants = {n: (e.model.attention, e.model.n_hashes) for n, e in params.experiments.items()}
    assert variants["dup-full"][0] == "full"
    assert [variants[f"dup-lsh{r}"] for r in (1, 2, 4)] == [("lsh", 1), ("lsh", 2), ("lsh", 4)]


def test_use_profile_copies_the_profile_verbatim(tmp_path):
    (tmp_path / "configs").mkdir()
    source = (ROOT / "configs" / "smoke.yaml").read_text()
    (tmp_path / "configs" / "smoke.yaml").write_text(source)
    use_profile("smoke", tmp_path)
    assert (tmp_path / "params.yaml").read_text() == source
    with pytest.raises(ConfigError, match=r"profile 'smok' is unknown \(did you mean 'smoke'\?\)"):
        use_profile("smok", tmp_path)


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [PY, "-m", "reformer.config", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_check_fails_with_one_line_and_status_2(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(with_change("model.bucket_size", 24)))
    result = run_cli("check", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: params.yaml: ")
    assert "bucket_size = 24" in lines[0]


def test_bad_params_stop_training_before_touching_outputs(tmp_path):
    """The train entry point exits 2 with one line and leaves existing outputs alone."""
    data = with_change("distributed.nproc_per_node", 1024)
    data["train"]["batch_size"] = 1024
    data["tasks"]["duplication"]["n_train"] = 1024
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    model_dir = tmp_path / "models" / "dup-full"
    model_dir.mkdir(parents=True)
    (model_dir / "model.pt").write_bytes(b"previous weights")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = subprocess.run(
        [PY, str(ROOT / "pipelines" / "train.py"), "dup-full"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "distributed.nproc_per_node = 1024: more ranks than the" in lines[0]
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert (model_dir / "model.pt").read_bytes() == b"previous weights"
