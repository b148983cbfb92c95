"""BLEU wrappers against hand-computed values and sacreBLEU's documented example."""

from __future__ import annotations

import math

import pytest

from reformer.bleu import bleu_scores, sacrebleu_score, split_compounds, tokenized_bleu


def _bleu(precisions: list[float], hyp_len: int, ref_len: int) -> float:
    """Corpus BLEU from its definition: BP * geometric mean of the n-gram precisions."""
    bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return 100 * bp * math.exp(sum(math.log(p) for p in precisions) / len(precisions))


def test_sacrebleu_documented_example():
    # sacreBLEU's README: two reference streams, 13a tokenisation -> BLEU = 48.53.
    refs = [
        ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
        ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
    ]
    hyps = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
    score, signature = sacrebleu_score(hyps, refs, tokenize="13a")
    assert round(score, 2) == 48.53
    assert "tok:13a" in signature and "case:mixed" in signature


def test_cased_and_uncased_sacrebleu_by_hand():
    hyp, ref = ["The cat sat on a mat"], ["the cat sat on the mat"]
    # Uncased: 1-grams 5/6, 2-grams 3/5 (the cat, cat sat, sat on), 3-grams 2/4, 4-grams 1/3.
    uncased = _bleu([5 / 6, 3 / 5, 2 / 4, 1 / 3], 6, 6)
    # Cased ("The" != "the"): 4/6, 2/5, 1/4 and no 4-gram match; sacreBLEU's default "exp"
    # smoothing replaces the first zero precision by 1 / (2 * 3 candidate 4-grams).
    cased = _bleu([4 / 6, 2 / 5, 1 / 4, 1 / (2 * 3)], 6, 6)
    scores = bleu_scores(hyp, ref)
    assert scores["sacrebleu_uncased"] == pytest.approx(uncased, abs=1e-9)
    assert scores["sacrebleu_cased"] == pytest.approx(cased, abs=1e-9)
    assert "case:lc" in scores["signature_uncased"] and "tok:intl" in scores["signature_cased"]


def test_tokenized_bleu_by_hand_with_brevity_penalty_and_compounds():
    # Tokenised ("13a" splits the final period) and compound-split:
    # hyp:  ein Wort ##AT##-##AT## Spiel .            (5 tokens)
    # ref:  ein Wort ##AT##-##AT## Spiel ist gut .    (7 tokens)
    # Every hypothesis n-gram is in the reference except those crossing "Spiel ."
    # 1-grams 5/5, 2-grams 3/4, 3-grams 2/3, 4-grams 1/2; BP = exp(1 - 7/5).
    got = tokenized_bleu(["ein Wort-Spiel."], ["ein Wort-Spiel ist gut."])
    assert got == pytest.approx(_bleu([1, 3 / 4, 2 / 3, 1 / 2], 5, 7), abs=1e-9)


def test_tokenized_bleu_is_unsmoothed_and_case_sensitive():
    # No 4-gram match and no smoothing -> 0, as multi-bleu.perl.
    assert tokenized_bleu(["a b c x e"], ["a b c d e"]) == 0.0
    assert tokenized_bleu(["A b c d e"], ["a b c d e"]) < 100.0


def test_split_compounds_follows_the_perl_substitution():
    assert split_compounds("Tür-Öffner 2-3") == "Tür ##AT##-##AT## Öffner 2 ##AT##-##AT## 3"
    assert split_compounds("- a - b") == "- a - b"  # free-standing hyphens stay


def test_mismatched_lengths_are_a_one_line_error():
    with pytest.raises(ValueError, match=r"references\[0\] has 1 segments and hypotheses 2"):
        bleu_scores(["a", "b"], ["a"])
