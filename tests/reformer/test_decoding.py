"""Greedy and beam search against independent step-by-step and exhaustive references."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from reformer.decoding import beam_search, greedy_decode, length_penalty, translate
from reformer.models import ReformerEncoderDecoder

PAD, BOS, EOS = 0, 1, 2
FREE = (3, 4, 5)  # the tokens a hypothesis may contain besides EOS
V = 6


@pytest.fixture(scope="module")
def model() -> ReformerEncoderDecoder:
    torch.manual_seed(0)
    m = ReformerEncoderDecoder(V, d_model=8, n_heads=2, d_ff=16, max_seq_len=8, pad_id=PAD)
    with torch.no_grad():  # sharper next-token distributions than the small init gives
        m.embedding.weight.mul_(6.0)
    return m.double().eval()


SOURCES = torch.tensor([[3, 4, 5, 2], [5, 3, 2, 0]])  # the second is padded


@torch.no_grad()
def _log_prob(model, src: torch.Tensor, seq: list[int]) -> float:
    """log P(seq | src) by teacher forcing through ``forward`` (not encode/decode)."""
    tgt_in = torch.tensor([[BOS, *seq[:-1]]])
    logits = model(src[None], tgt_in)[0]  # (t, V)
    logits[:, [PAD, BOS]] = -math.inf  # never generated: renormalise over the rest
    logp = torch.log_softmax(logits, dim=-1)
    return float(sum(logp[i, tok] for i, tok in enumerate(seq)))


_CANDIDATES: dict[tuple, list[tuple[list[int], float]]] = {}


def _exhaustive_best(model, src: torch.Tensor, max_len: int, alpha: float):
    """Score every possible output: ``w EOS`` with ``|w| < max_len``, or ``w`` with
    ``|w| = max_len`` (ran out of length); return the best by ``log P / lp``."""
    key = (tuple(src.tolist()), max_len)
    if key not in _CANDIDATES:  # log-probabilities do not depend on alpha: compute once
        seqs = [
            [*body, EOS] if n < max_len else list(body)
            for n in range(1, max_len + 1)
            for body in itertools.product(FREE, repeat=n)
        ] + [[EOS]]
        _CANDIDATES[key] = [(seq, _log_prob(model, src, seq)) for seq in seqs]
    best = None
    for seq, lp in _CANDIDATES[key]:
        score = lp / ((5 + len(seq)) / 6) ** alpha
        if best is None or score > best[0]:
            best = (score, seq, lp)
    return best


@pytest.mark.parametrize("alpha", [0.6, 0.0, 2.0])
def test_beam_search_with_an_exhaustive_beam_finds_the_best_scoring_sequence(model, alpha):
    max_len = 4
    beam = len(FREE) ** max_len  # as many as there are prefixes: nothing is ever pruned
    out = beam_search(
        model, SOURCES, bos_id=BOS, eos_id=EOS, beam_size=beam, alpha=alpha, max_len=max_len
    )
    for row in range(len(SOURCES)):
        src = SOURCES[row][SOURCES[row] != PAD]
        score, seq, lp = _exhaustive_best(model, src, max_len, alpha)
        length = int(out.lengths[row])
        assert out.tokens[row, :length].tolist() == seq
        assert (out.tokens[row, length:] == PAD).all()
        assert float(out.scores[row]) == pytest.approx(score, abs=1e-9)
        assert float(out.log_probs[row]) == pytest.approx(lp, abs=1e-9)


def test_beam_search_scores_are_consistent_with_teacher_forcing(model):
    out = beam_search(model, SOURCES, bos_id=BOS, eos_id=EOS, beam_size=4, alpha=0.6, max_len=6)
    for row in range(len(SOURCES)):
        length = int(out.lengths[row])
        seq = out.tokens[row, :length].tolist()
        src = SOURCES[row][SOURCES[row] != PAD]
        lp = _log_prob(model, src, seq)
        assert float(out.log_probs[row]) == pytest.approx(lp, abs=1e-9)
        assert float(out.scores[row]) == pytest.approx(lp / length_penalty(length, 0.6))
        assert PAD not in seq and BOS not in seq


@torch.no_grad()
def test_greedy_equals_an_independent_step_by_step_argmax(model):
    max_len = 7
    out = greedy_decode(model, SOURCES, bos_id=BOS, eos_id=EOS, max_len=max_len)
    for row in range(len(SOURCES)):
        src = SOURCES[row][SOURCES[row] != PAD][None]
        prefix = [BOS]
        for _ in range(max_len):
            logits = model(src, torch.tensor([prefix]))[0, -1]
            logits[[PAD, BOS]] = -math.inf
            prefix.append(int(logits.argmax()))
            if prefix[-1] == EOS:
                break
        expected = prefix[1:]
        got = out[row].tolist()
        assert got[: len(expected)] == expected
        assert all(t == PAD for t in got[len(expected) :])


def test_translate_returns_outputs_in_input_order_without_special_tokens(model):
    sources = [[5, 3, EOS], [3, 4, 5, 3, 4, EOS], [4, EOS]]
    batched = translate(
        model, sources, bos_id=BOS, eos_id=EOS, method="beam", batch_size=2, max_len=5
    )
    for src, got in zip(sources, batched, strict=True):
        single = beam_search(model, torch.tensor([src]), bos_id=BOS, eos_id=EOS, max_len=5)
        length = int(single.lengths[0])
        expected = [t for t in single.tokens[0, :length].tolist() if t != EOS]
        assert got == expected
        assert EOS not in got and PAD not in got


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"beam_size": 0}, "beam_size=0 is not allowed"),
        ({"alpha": -1.0}, "alpha=-1.0 is not allowed"),
        ({"max_len": 9}, "max_len=9 is not allowed: must be an integer in [1, 8]"),
        ({"eos_id": 6}, "eos_id=6 is not allowed: must be a token id in [0, 6)"),
    ],
)
def test_bad_arguments_give_one_line_errors(model, kwargs, message):
    args = {"bos_id": BOS, "eos_id": EOS, **kwargs}
    with pytest.raises(ValueError) as err:
        beam_search(model, SOURCES, **args)
    assert message in str(err.value) and "\n" not in str(err.value)
