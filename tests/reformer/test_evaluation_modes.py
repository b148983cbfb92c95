"""The Table 2 evaluation and its experiments: the modes of each experiment, the copy rate
(share of predictions equal to the current token) against a hand count, and the evaluation
of a trained model in every mode (other bucket sizes, no self-mask, separate Q and K)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from reformer.config import EvalMode, eval_modes
from reformer.experiment import build_model, evaluate
from reformer.tasks import load_split
from reformer.tasks.duplication import prepare_duplication
from repro.config import ConfigError, parse_params
from repro.training import evaluate_lm

TASK = {"length": 32, "vocab_size": 8, "n_train": 8, "n_valid": 4, "n_test": 6, "seed": 0}


def params(experiment: dict, evaluate: dict | None = None):
    return parse_params(
        {
            "paper": "reformer",
            "tasks": {"duplication": TASK},
            "model": {"d_model": 16, "n_heads": 2, "d_ff": 16, "bucket_size": 8},
            "train": {"batch_size": 2},
            "evaluate": {"batch_size": 4, **(evaluate or {})},
            "experiments": {"e": {"task": "duplication", **experiment}},
        }
    )


class FixedPredictions(nn.Module):
    """Logits whose argmax at (sequence i, position t) is ``predictions[i, t]``; the batch
    is recognised by its first token (each test sequence starts with a distinct token)."""

    def __init__(self, sequences: torch.Tensor, predictions: torch.Tensor) -> None:
        super().__init__()
        self.table = {int(s[0]): p for s, p in zip(sequences, predictions, strict=True)}
        self.vocab = int(max(sequences.max(), predictions.max())) + 1

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        picks = torch.stack([self.table[int(t[0])] for t in tokens])
        return torch.nn.functional.one_hot(picks, self.vocab).float()


def test_copy_rate_is_the_share_of_counted_predictions_equal_to_the_current_token():
    tokens = torch.tensor([[1, 5, 6, 5, 6, 7], [2, 3, 3, 4, 4, 3], [0, 7, 7, 7, 1, 2]])
    loss_mask = torch.tensor([[False, True, True, True, True, False]] * 3)
    predictions = torch.tensor([[0, 5, 5, 6, 6, 0], [0, 3, 4, 4, 0, 0], [0, 7, 7, 0, 1, 0]])
    data = [{"tokens": t, "loss_mask": m} for t, m in zip(tokens, loss_mask, strict=True)]
    # by hand: position t counts when loss_mask[t] and t is not the last position
    counted = copies = correct = 0
    rows = zip(tokens.tolist(), loss_mask.tolist(), predictions.tolist(), strict=True)
    for seq, mask, pred in rows:
        for t in range(len(seq) - 1):
            if mask[t]:
                counted += 1
                copies += pred[t] == seq[t]
                correct += pred[t] == seq[t + 1]
    assert (counted, copies, correct) == (12, 7, 7)  # worked out on paper too
    model = FixedPredictions(tokens, predictions)
    m = evaluate_lm(model, data, batch_size=2, device=torch.device("cpu"))
    assert m["count"] == counted
    assert m["copy_rate"] == pytest.approx(copies / counted)
    assert m["accuracy"] == pytest.approx(correct / counted)


def test_modes_of_each_kind_of_experiment():
    ev = {
        "n_hashes": [1, 2],
        "bucket_sizes": [4, 16],
        "bucket_rounds": [1],
        "no_self_mask": True,
        "raw_keys": True,
        "qk_scales": [16],
    }
    shared = params({"model": {"attention": "lsh"}}, ev).experiment("e")
    labels = [m.label for m in eval_modes(shared, shared.evaluate)]
    assert labels == [
        "full",
        "full-noself",
        "full-rawkeys",
        "full-x16",
        "full-noself-x16",
        "lsh1",
        "lsh2",
        "lsh1-b4",
        "lsh1-b16",
    ]
    assert eval_modes(shared, shared.evaluate)[2].unit_keys is False
    assert eval_modes(shared, shared.evaluate)[4] == EvalMode(
        "full-noself-x16", "full", None, None, False, 16
    )
    assert eval_modes(shared, shared.evaluate)[1] == EvalMode(
        "full-noself", "full", None, None, False
    )
    separate = params({"model": {"attention": "full", "shared_qk": False}}, ev).experiment("e")
    assert [m.label for m in eval_modes(separate, separate.evaluate)] == ["full"]
    with_lsh = params(
        {"model": {"attention": "full", "shared_qk": False}, "evaluate": {"lsh_separate_qk": True}},
        ev,
    ).experiment("e")
    assert [m.label for m in eval_modes(with_lsh, with_lsh.evaluate)] == [
        "full",
        "lsh1",
        "lsh2",
        "lsh1-b4",
        "lsh1-b16",
    ]


def test_an_evaluation_bucket_size_that_does_not_fit_is_a_one_line_error():
    with pytest.raises(ConfigError) as info:
        params({"model": {"attention": "lsh"}}, {"bucket_sizes": [5]})
    message = str(info.value)
    assert "experiments.e.evaluate.bucket_sizes = 5" in message and "\n" not in message
    assert "not divisible" in message and "allowed:" in message


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_duplication(tmp_path_factory.mktemp("dup") / "duplication", dict(TASK))


@pytest.mark.parametrize("shared_qk", [True, False])
def test_evaluate_reports_accuracy_and_copy_rate_for_every_mode(data_dir, shared_qk):
    ev = {
        "n_hashes": [1, 2],
        "bucket_sizes": [4, 16],
        "bucket_rounds": [1, 2],
        "no_self_mask": True,
        "raw_keys": True,
        "qk_scales": [4],
    }
    exp = params(
        {
            "model": {"attention": "full", "shared_qk": shared_qk},
            "evaluate": {"lsh_separate_qk": True},
        },
        ev,
    ).experiment("e")
    torch.manual_seed(0)
    model = build_model(exp, vocab_size=TASK["vocab_size"]).core
    result = evaluate(exp, model, data_dir, torch.device("cpu"))
    labels = [m.label for m in eval_modes(exp, exp.evaluate)]
    assert ("full-noself" in labels) == shared_qk and "lsh2-b16" in labels
    assert set(result.metrics) == {"accuracy", "copy_rate"}
    for family in ("accuracy", "copy_rate"):
        assert list(result.metrics[family]) == labels
        for label, value in result.metrics[family].items():
            assert result.summary[f"eval/{family}_{label}"] == value and 0 <= value <= 1
    assert model.bucket_size == 8  # the sweep leaves the trained bucket size
    # each mode is the model switched to that mode and evaluated by the kit
    test_set = load_split(data_dir, "test", exp.seq_len)
    model.set_attention("full", self_mask=not shared_qk)
    expected = evaluate_lm(model, test_set, 4, torch.device("cpu"))
    label = "full-noself" if shared_qk else "full"
    assert result.metrics["copy_rate"][label] == round(expected["copy_rate"], 6)
    if shared_qk:  # queries x 4 by hand: every score x 4
        model.set_attention("full", self_mask=False)
        for block in model.layers.blocks:
            block.f.fn.to_qk.weight.data *= 4
        expected = evaluate_lm(model, test_set, 4, torch.device("cpu"))
        for block in model.layers.blocks:
            block.f.fn.to_qk.weight.data /= 4
        assert result.metrics["accuracy"]["full-noself-x4"] == round(expected["accuracy"], 6)
        assert result.metrics["copy_rate"]["full-noself-x4"] == round(expected["copy_rate"], 6)
        model.set_attention("full", self_mask=True, unit_keys=False)
        expected = evaluate_lm(model, test_set, 4, torch.device("cpu"))
        model.set_attention("full", unit_keys=True)
        assert result.metrics["accuracy"]["full-rawkeys"] == round(expected["accuracy"], 6)
    model.set_attention("lsh", 1, bucket_size=16)
    torch.manual_seed(exp.evaluate.seed)
    expected = evaluate_lm(model, test_set, 4, torch.device("cpu"))
    assert result.metrics["accuracy"]["lsh1-b16"] == round(expected["accuracy"], 6)


def test_lsh_with_raw_keys_is_a_one_line_error():
    with pytest.raises(ConfigError) as info:
        params({"model": {"attention": "lsh", "unit_keys": False}})
    assert "experiments.e.model.unit_keys = False: LSH attention normalises" in str(info.value)
    raw = params({"model": {"attention": "full", "unit_keys": False}}).experiment("e")
    assert build_model(raw, 8).core.layers.blocks[0].f.fn.unit_keys is False
