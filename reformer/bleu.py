"""BLEU as the paper's Table 4 reports it: tokenised BLEU and sacreBLEU, cased and uncased.

Table 4 gives three numbers per model on newstest2014: "BLEU", and sacreBLEU uncased and
cased. They are computed here as follows.

- **sacreBLEU** (Post, 2018), :func:`sacrebleu_score`: detokenised hypotheses against the
  raw references, corpus BLEU with the ``sacrebleu`` package. The tokenizer defaults to
  ``intl`` (the international tokenisation of mteval-v14, which t2t and trax use); the full
  signature (``nrefs:1|case:mixed|eff:no|tok:intl|smooth:exp|version:...``) is returned with
  every score so a reader can compare like with like, and ``tokenize="13a"`` (sacreBLEU's
  default) is one argument away.
- **tokenised BLEU** (the first column; Vaswani et al.'s "BLEU"), :func:`tokenized_bleu`:
  the recipe of tensor2tensor's ``get_ende_bleu.sh``: tokenise hypotheses and references,
  split hyphenated compounds (``Wort-Spiel`` -> ``Wort ##AT##-##AT## Spiel``), then BLEU over
  the tokens, case-sensitive, without smoothing (``multi-bleu.perl``). The tokenizer here is
  sacreBLEU's ``13a`` (mteval-v13a) instead of Moses' ``tokenizer.perl``, which no
  maintained Python package reproduces byte for byte; the two differ on a few characters
  (Moses escapes ``& < > " '`` and keeps some abbreviations whole), so this column is
  comparable to the paper's only to a few tenths of a point.

All scores are on the 0-100 scale.

Example:
    >>> scores = bleu_scores(["Der Hund biss den Mann ."], ["Der Hund biss den Mann ."])
    >>> [round(scores[k], 2) for k in ("bleu", "sacrebleu_cased", "sacrebleu_uncased")]
    [100.0, 100.0, 100.0]
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = [
    "DEFAULT_TOKENIZE",
    "bleu_scores",
    "sacrebleu_score",
    "split_compounds",
    "tokenized_bleu",
]

#: sacreBLEU tokenizer of the sacreBLEU columns.
DEFAULT_TOKENIZE = "intl"
_COMPOUND = re.compile(r"(\S)-(\S)")


def _as_streams(
    hypotheses: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]]
) -> list[list[str]]:
    """References as sacreBLEU's streams: one list per reference set, aligned with hyps."""
    if isinstance(hypotheses, str):
        raise ValueError("hypotheses is a str: pass a list of sentences, one per segment")
    refs = list(references)
    streams = [refs] if refs and isinstance(refs[0], str) else [list(r) for r in refs]
    for i, stream in enumerate(streams):
        if len(stream) != len(hypotheses):
            raise ValueError(
                f"references[{i}] has {len(stream)} segments and hypotheses {len(hypotheses)}: "
                "each reference stream needs one segment per hypothesis"
            )
    return streams


def sacrebleu_score(
    hypotheses: Sequence[str],
    references: Sequence[str] | Sequence[Sequence[str]],
    *,
    lowercase: bool = False,
    tokenize: str = DEFAULT_TOKENIZE,
) -> tuple[float, str]:
    """Corpus sacreBLEU of detokenised hypotheses.

    Args:
        hypotheses: one detokenised sentence per segment.
        references: one reference per segment, or a list of such reference streams.
        lowercase: uncased BLEU (both sides lowercased).
        tokenize: a sacreBLEU tokenizer name (``intl``, ``13a``, ``none``, ...).

    Returns:
        ``(score, signature)``, the score on the 0-100 scale.

    Example:
        >>> score, sig = sacrebleu_score(["The cat sat."], ["The cat sat."], tokenize="13a")
        >>> round(score, 2), sig.split("|")[1:4]
        (100.0, ['case:mixed', 'eff:no', 'tok:13a'])
    """
    from sacrebleu.metrics import BLEU

    streams = _as_streams(hypotheses, references)
    metric = BLEU(lowercase=lowercase, tokenize=tokenize)
    result = metric.corpus_score(list(hypotheses), streams)
    return float(result.score), str(metric.get_signature())


def split_compounds(text: str) -> str:
    """Split hyphenated compounds the way tensor2tensor's ``get_ende_bleu.sh`` does.

    One left-to-right pass over non-overlapping matches, as Perl's ``s{(\\S)-(\\S)}{...}g``:
    in ``a-b-c`` the second hyphen's left neighbour is taken by the first match and stays.

    Example:
        >>> split_compounds("ein Wort-Spiel und 3-2, a-b-c")
        'ein Wort ##AT##-##AT## Spiel und 3 ##AT##-##AT## 2, a ##AT##-##AT## b-c'
    """
    return _COMPOUND.sub(r"\1 ##AT##-##AT## \2", text)


def tokenized_bleu(
    hypotheses: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]]
) -> float:
    """Tokenised, compound-split, case-sensitive, unsmoothed corpus BLEU (Table 4's "BLEU").

    Args:
        hypotheses: detokenised sentences.
        references: one reference per segment (or a list of streams).

    Returns:
        BLEU on the 0-100 scale (0 when some n-gram order has no match, as multi-bleu.perl).

    Example:
        >>> round(tokenized_bleu(["a b c d e"], ["a b c d f"]), 2)  # (4/5 3/4 2/3 1/2)^(1/4)
        66.87
    """
    from sacrebleu.metrics import BLEU
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    tok = Tokenizer13a()
    streams = _as_streams(hypotheses, references)

    def prepare(text: str) -> str:
        return split_compounds(tok(text.strip()))

    metric = BLEU(tokenize="none", smooth_method="none", force=True)
    result = metric.corpus_score(
        [prepare(h) for h in hypotheses], [[prepare(r) for r in s] for s in streams]
    )
    return float(result.score)


def bleu_scores(
    hypotheses: Sequence[str],
    references: Sequence[str] | Sequence[Sequence[str]],
    *,
    tokenize: str = DEFAULT_TOKENIZE,
) -> dict[str, float | str]:
    """The three numbers of the paper's Table 4 (and the sacreBLEU signatures).

    Returns:
        ``{"bleu": tokenised BLEU, "sacrebleu_uncased": ..., "sacrebleu_cased": ...,
        "signature_uncased": ..., "signature_cased": ...}``.

    Example:
        >>> s = bleu_scores(["the cat sat on a mat"], ["The cat sat on the mat"])
        >>> s["sacrebleu_uncased"] > s["sacrebleu_cased"]
        True
    """
    uncased, sig_uncased = sacrebleu_score(
        hypotheses, references, lowercase=True, tokenize=tokenize
    )
    cased, sig_cased = sacrebleu_score(hypotheses, references, lowercase=False, tokenize=tokenize)
    return {
        "bleu": tokenized_bleu(hypotheses, references),
        "sacrebleu_uncased": uncased,
        "sacrebleu_cased": cased,
        "signature_uncased": sig_uncased,
        "signature_cased": sig_cased,
    }
