"""Bad values of the Reformer's own sections stop a real training process before any
training, with one line, and leave the existing outputs exactly as they were: the cases of
the kit's ``tests/repro/test_reliability_config.py`` (whose machinery this reuses) for the
``model:`` section and the task parameters that decide the model's shapes.
"""

from __future__ import annotations

import pytest
from test_reliability_config import (  # noqa: F401 (dvc_repo: a fixture)
    EXP,
    bad_config_through_dvc_repro,
    dvc_repo,
    train_with,
)

# (case, params changes, expected parts of the one line)
CASES = [
    ("zero size", {"model.d_model": 0}, ["model.d_model = 0: must be an integer >= 1"]),
    (
        "length not divisible by the bucket size",
        {"model.bucket_size": 12},
        ["bucket_size = 12: the sequence length 32 is not divisible by it", "allowed:"],
    ),
    (
        "odd number of buckets",  # only with reformer-pytorch's rule: 2 l / m is always even
        {"tasks.duplication.length": 24, "model.bucket_rule": "half"},
        [
            "bucket_size = 8: gives an odd number of buckets (24 / 8 = 3) with bucket_rule",
            "allowed:",
        ],
    ),
    (
        "unknown variant",
        {f"experiments.{EXP}.model.attention": "sparse"},
        [f"experiments.{EXP}.model.attention = 'sparse'", "allowed: lsh, full"],
    ),
]


@pytest.mark.slow  # one process each (~2 s)
@pytest.mark.parametrize(("changes", "expected"), [pytest.param(c, x, id=n) for n, c, x in CASES])
def test_bad_model_config_stops_training_before_it_starts(tmp_path, changes, expected):
    train_with(tmp_path, changes, EXP, expected)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param(
            {"model.bucket_size": 12},
            "bucket_size = 12: the sequence length 32 is not divisible by it",
            id="model-param",
        ),
        pytest.param(
            {"tasks.duplication.length": 24, "model.bucket_rule": "half"},
            "odd number of buckets (24 / 8 = 3)",
            id="task-param",
        ),
    ],
)
def test_bad_config_through_dvc_repro_touches_no_output(dvc_repo, changes, expected):  # noqa: F811
    bad_config_through_dvc_repro(dvc_repo, changes, f"train@{EXP}", expected)
