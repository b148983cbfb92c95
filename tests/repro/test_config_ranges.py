"""Values that ``config check`` once accepted but the code could not take: each is now
refused with one line naming the key and what is allowed, and the largest value allowed is
one the code does take (checked against torch, datetime and W&B themselves).

The paper is the kit's fixture paper (tests/repro/minipaper), as in test_config.py; a
paper's own ranges (its model and evaluate sections) are tested in the paper's tests.
"""

from __future__ import annotations

import datetime

import pytest
import torch
from test_config import BASE, error_of, with_change

from repro.config import check_runtime, parse_params
from repro.training.loop import _rank_seed

SEED_MAX = 2**32 - 1
YEAR_S = 365 * 24 * 3600


# ----------------------------------------------------------------------------- seeds


@pytest.mark.parametrize("path", ["seed", "experiments.big.seed"])
def test_a_seed_beyond_32_bits_is_refused(path):
    # 2**62 passed: every rank then crashed in torch.manual_seed(seed * 1_000_003 + rank + 1)
    assert error_of(with_change(path, 2**62)) == (
        f"params.yaml: {path} = {2**62}: must be an integer <= {SEED_MAX}"
    )


def test_the_largest_seed_allowed_seeds_every_rank_of_a_large_job():
    params = parse_params(with_change("experiments.big.seed", SEED_MAX))
    seed = params.experiment("big").seed
    torch.manual_seed(seed)  # the initial weights
    torch.manual_seed(_rank_seed(seed, rank=1023))  # each rank's stream in fit()
    gen = torch.Generator()
    gen.manual_seed(seed + 10**6)  # DistributedSampler: seed + epoch


# ----------------------------------------------------------------------------- integers


@pytest.mark.parametrize(
    "path", ["train.steps", "train.log_every", "model.width", "experiments.big.model.width"]
)
def test_an_integer_beyond_64_bits_is_refused(path):
    # torch.nn.Linear(2**70, ...) or tqdm(total=2**70) raise "Overflow when unpacking long"
    assert error_of(with_change(path, 2**70)).endswith(
        f"{path} = {2**70}: must be a 64-bit integer (between -2**63 and 2**63 - 1)"
    )


def test_a_float_written_integer_beyond_64_bits_is_refused():
    assert "must be a 64-bit integer" in error_of(with_change("train.steps", "1e30"))


@pytest.mark.parametrize("path", ["distributed.timeout_s", "tracking.init_timeout_s"])
def test_a_wait_longer_than_a_year_is_refused(path):
    # timeout_s = 10**14 passed and every rank crashed in timedelta(seconds=...) (OverflowError)
    assert error_of(with_change(path, 10**14)) == (
        f"params.yaml: {path} = {10**14}: must be an integer <= {YEAR_S}"
    )
    with pytest.raises(OverflowError):
        datetime.timedelta(seconds=10**14)


def test_the_longest_wait_allowed_is_a_timedelta():
    params = parse_params(with_change("distributed.timeout_s", YEAR_S))
    assert datetime.timedelta(seconds=params.distributed.timeout_s).days == 365


# ----------------------------------------------------------------------------- W&B names


def test_a_tag_longer_than_wandb_allows_is_refused():
    # wandb.init refused it: the run went unrecorded, and evaluate and the report failed later
    tag = "x" * 65
    assert error_of(with_change("tracking.tags", ["smoke", tag])) == (
        f"params.yaml: tracking.tags[1] = {tag!r}: must be at most 64 characters (a W&B tag)"
    )


def test_wandb_takes_the_longest_tag_and_refuses_one_more():
    wandb = pytest.importorskip("wandb")
    params = parse_params(with_change("tracking.tags", ["x" * 64]))
    wandb.Settings(run_tags=tuple(params.tracking.tags))  # accepted
    with pytest.raises(ValueError, match="64 characters"):
        wandb.Settings(run_tags=("x" * 65,))


@pytest.mark.parametrize("project", ["team/paper", "a:b", "what?", "p" * 129])
def test_a_project_name_wandb_refuses_is_refused(project):
    wandb = pytest.importorskip("wandb")
    with pytest.raises(Exception, match="Invalid project name"):
        wandb.Settings(project=project)
    message = error_of(with_change("tracking.project", project))
    assert message.startswith(f"params.yaml: tracking.project = {project!r}: ")
    assert message.endswith("(a W&B project name)")


def test_wandb_takes_the_longest_project_name():
    wandb = pytest.importorskip("wandb")
    params = parse_params(with_change("tracking.project", "p-_.x" * 25 + "abc"))
    assert len(params.tracking.project) == 128
    wandb.Settings(project=params.tracking.project)


# ----------------------------------------------------------------------------- experiment names


def _renamed(name: str) -> dict:
    data = with_change("experiments", {name: {"task": "copy"}})
    return data


def test_an_experiment_name_that_reads_as_an_option_is_refused():
    # `python pipelines/train.py -x` stopped with an argparse usage error, not training it
    assert error_of(_renamed("-x")) == (
        "params.yaml: experiments.-x = '-x': an experiment name may use letters, digits, "
        "- and _, and starts with a letter or digit"
    )
    assert parse_params(_renamed("x-")).experiment("x-").name == "x-"


def test_an_experiment_name_too_long_for_its_files_is_refused():
    # models/<name>/ and metrics/.<name>.json.<random>.tmp must fit a file name (255 bytes)
    assert error_of(_renamed("e" * 101)).endswith(
        "an experiment name may be at most 100 characters"
    )
    assert parse_params(_renamed("e" * 100)).experiments


# ----------------------------------------------------------------------------- this machine


def test_more_threads_per_rank_than_cores_is_refused():
    # torch.set_num_threads takes 10**6 and the first parallel operation then crashes
    params = parse_params(with_change("distributed.threads_per_rank", 3))
    with pytest.raises(Exception) as info:
        check_runtime(params, cpu_count=2)
    assert str(info.value) == (
        "params.yaml: distributed.threads_per_rank = 3: more threads than the 2 CPU cores of "
        "this machine; allowed: 1 to 2, or null (the cores divided by the ranks)"
    )
    check_runtime(parse_params(with_change("distributed.threads_per_rank", 2)), cpu_count=2)
    check_runtime(parse_params(BASE), cpu_count=2)  # null: divided by the ranks
