"""Greedy and beam-search decoding for :class:`ReformerEncoderDecoder`.

The source is encoded once (:meth:`ReformerEncoderDecoder.encode`); every step runs the
decoder on the prefix generated so far (:meth:`ReformerEncoderDecoder.decode`) and reads the
logits of its last position. The model keeps no key/value cache, so a step costs a decoder
pass over the whole prefix; that is fine for sentence-length outputs.

Beam search follows Vaswani et al. (2017) and the paper's WMT setting: beam size 4 and the
length penalty of Wu et al. (2016)::

    score(Y) = log P(Y | X) / lp(Y),     lp(Y) = ((5 + |Y|) / 6) ** alpha,   alpha = 0.6,

where ``|Y|`` counts the generated tokens including the end-of-sequence token. A hypothesis
ends when it emits ``eos_id``; one that reaches ``max_len`` tokens without it ends there.
Every step keeps the ``beam_size`` best unfinished prefixes and, separately, the
``beam_size`` best finished hypotheses; the search stops when no unfinished prefix can beat
the worst finished one any more (with ``alpha >= 0``, the best an unfinished prefix with
log-probability ``s`` can reach is ``s / lp(max_len)``, since log-probabilities only fall
and the penalty only grows). With a beam at least as large as the number of possible
prefixes nothing is pruned and the result is the exact maximiser of the score (tested
against exhaustive search).

Neither ``pad_id`` nor ``bos_id`` is ever generated (their logits are masked): a generated
padding token would be indistinguishable from padding.

Example:
    >>> import torch
    >>> from reformer.models import ReformerEncoderDecoder
    >>> model = ReformerEncoderDecoder(vocab_size=12, d_model=8, n_heads=2, d_ff=16,
    ...                                max_seq_len=16).eval()
    >>> src = torch.tensor([[5, 6, 7, 3], [8, 9, 3, 0]])
    >>> greedy_decode(model, src, bos_id=2, eos_id=3, max_len=6).shape[0]
    2
    >>> out = beam_search(model, src, bos_id=2, eos_id=3, max_len=6)
    >>> out.tokens.shape[0], out.scores.shape
    (2, torch.Size([2]))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = [
    "BeamSearchOutput",
    "beam_search",
    "greedy_decode",
    "length_penalty",
    "strip_special",
    "translate",
]

NEG_INF = float("-inf")


def length_penalty(length: int | Tensor, alpha: float) -> float | Tensor:
    """Wu et al.'s length penalty ``((5 + length) / 6) ** alpha``.

    Example:
        >>> length_penalty(1, 0.6), round(length_penalty(7, 0.6), 6)
        (1.0, 1.515717)
    """
    return ((5.0 + length) / 6.0) ** alpha


def _check_common(model: nn.Module, src: Tensor, max_len: int | None, **ids: int) -> int:
    if src.dim() != 2 or src.dtype not in (torch.int64, torch.int32):
        raise ValueError(
            f"src of shape {tuple(src.shape)} and dtype {src.dtype} is not allowed: "
            "must be an integer tensor (batch, source_length)"
        )
    vocab = model.vocab_size
    for name, value in ids.items():
        if not isinstance(value, int) or not 0 <= value < vocab:
            raise ValueError(f"{name}={value!r} is not allowed: must be a token id in [0, {vocab})")
    limit = model.max_seq_len
    if max_len is None:
        # Vaswani et al.: at most the source length + 50 tokens.
        max_len = min(src.shape[1] + 50, limit)
    if not isinstance(max_len, int) or not 1 <= max_len <= limit:
        raise ValueError(
            f"max_len={max_len!r} is not allowed: must be an integer in [1, {limit}] "
            "(the model's max_seq_len)"
        )
    return max_len


def _banned(model: nn.Module, bos_id: int, device: torch.device) -> Tensor:
    banned = torch.zeros(model.vocab_size, dtype=torch.bool, device=device)
    banned[model.pad_id] = True
    banned[bos_id] = True
    return banned


def _next_log_probs(
    model: nn.Module, prefix: Tensor, memory: Tensor, src_mask: Tensor, banned: Tensor
) -> Tensor:
    """``(n, V)`` log-probabilities of the next token after each prefix ``(n, t)``."""
    logits = model.decode(prefix, memory, src_mask)[:, -1]  # (n, V)
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()  # accumulate scores in at least single precision
    logits = logits.masked_fill(banned, NEG_INF)
    return torch.log_softmax(logits, dim=-1)


@torch.no_grad()
def greedy_decode(
    model: nn.Module,
    src: Tensor,
    *,
    bos_id: int,
    eos_id: int,
    max_len: int | None = None,
    src_mask: Tensor | None = None,
) -> Tensor:
    """Pick the most likely next token at every step until ``eos_id`` or ``max_len``.

    Args:
        model: a :class:`ReformerEncoderDecoder` (put it in eval mode).
        src: ``(b, ls)`` source ids, padded with ``model.pad_id``.
        bos_id: the decoder's start token.
        eos_id: the end-of-sequence token.
        max_len: most generated tokens (default ``ls + 50``, at most ``model.max_seq_len``).
        src_mask: optional ``(b, ls)`` bool, True = real token (default ``src != pad_id``).

    Returns:
        ``(b, t)`` generated ids without the start token, ``t <= max_len``; each row ends
        with ``eos_id`` (unless it ran out of length) and is padded with ``model.pad_id``
        after it.

    Example:
        >>> import torch
        >>> from reformer.models import ReformerEncoderDecoder
        >>> model = ReformerEncoderDecoder(10, d_model=8, n_heads=2, max_seq_len=8).eval()
        >>> greedy_decode(model, torch.tensor([[4, 5, 3]]), bos_id=2, eos_id=3,
        ...               max_len=4).shape
        torch.Size([1, 4])
    """
    max_len = _check_common(model, src, max_len, bos_id=bos_id, eos_id=eos_id)
    if src_mask is None:
        src_mask = src != model.pad_id
    memory = model.encode(src, src_mask)
    banned = _banned(model, bos_id, src.device)
    b = src.shape[0]
    prefix = torch.full((b, 1), bos_id, dtype=torch.long, device=src.device)
    done = torch.zeros(b, dtype=torch.bool, device=src.device)
    for _ in range(max_len):
        token = _next_log_probs(model, prefix, memory, src_mask, banned).argmax(dim=-1)
        token = token.masked_fill(done, model.pad_id)  # finished rows only pad
        prefix = torch.cat([prefix, token[:, None]], dim=1)
        done |= token == eos_id
        if bool(done.all()):
            break
    return prefix[:, 1:]


@dataclass
class BeamSearchOutput:
    """What :func:`beam_search` returns.

    Attributes:
        tokens: ``(b, t)`` the best hypothesis per source, without the start token, ending
            with ``eos_id`` (unless it ran out of length), padded with ``pad_id``.
        scores: ``(b,)`` its length-penalised score ``log P / lp``.
        log_probs: ``(b,)`` its log-probability.
        lengths: ``(b,)`` its length (generated tokens, the end token included).
    """

    tokens: Tensor
    scores: Tensor
    log_probs: Tensor
    lengths: Tensor


@torch.no_grad()
def beam_search(
    model: nn.Module,
    src: Tensor,
    *,
    bos_id: int,
    eos_id: int,
    beam_size: int = 4,
    alpha: float = 0.6,
    max_len: int | None = None,
    src_mask: Tensor | None = None,
) -> BeamSearchOutput:
    """Beam search with Wu et al.'s length penalty (the paper's WMT setting: 4, 0.6).

    Args:
        model: a :class:`ReformerEncoderDecoder` (put it in eval mode).
        src: ``(b, ls)`` source ids, padded with ``model.pad_id``.
        bos_id: the decoder's start token.
        eos_id: the end-of-sequence token.
        beam_size: hypotheses kept per source ``k``.
        alpha: length-penalty exponent (``>= 0``; 0 ranks by log-probability alone).
        max_len: most generated tokens (default ``ls + 50``, at most ``model.max_seq_len``).
        src_mask: optional ``(b, ls)`` bool, True = real token (default ``src != pad_id``).

    Returns:
        A :class:`BeamSearchOutput` with the best hypothesis of every source.

    Shapes (internally): prefixes ``(b, k, t)``, their log-probabilities ``(b, k)``;
    candidates ``(b, k, V)``; finished hypotheses ``(b, k, max_len)``.

    Example:
        >>> import torch
        >>> from reformer.models import ReformerEncoderDecoder
        >>> model = ReformerEncoderDecoder(10, d_model=8, n_heads=2, max_seq_len=8).eval()
        >>> out = beam_search(model, torch.tensor([[4, 5, 3]]), bos_id=2, eos_id=3, max_len=5)
        >>> bool(out.scores[0] <= 0), int(out.lengths[0]) <= 5
        (True, True)
    """
    max_len = _check_common(model, src, max_len, bos_id=bos_id, eos_id=eos_id)
    if not isinstance(beam_size, int) or beam_size < 1:
        raise ValueError(f"beam_size={beam_size!r} is not allowed: must be an integer >= 1")
    if not math.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha={alpha!r} is not allowed: must be a finite number >= 0")
    if src_mask is None:
        src_mask = src != model.pad_id
    device = src.device
    b, k, V = src.shape[0], beam_size, model.vocab_size
    memory = model.encode(src, src_mask)  # (b, ls, d): encoded once
    memory_k = memory.repeat_interleave(k, dim=0)  # (b k, ls, d)
    mask_k = src_mask.repeat_interleave(k, dim=0)
    banned = _banned(model, bos_id, device)
    not_eos = torch.ones(V, dtype=torch.bool, device=device)
    not_eos[eos_id] = False

    fdtype = torch.float64 if memory.dtype == torch.float64 else torch.float32
    alive = torch.full((b, k, 1), bos_id, dtype=torch.long, device=device)
    alive_lp = torch.full((b, k), NEG_INF, dtype=fdtype, device=device)
    alive_lp[:, 0] = 0.0  # one real start; the copies would only duplicate it
    fin_tokens = torch.full((b, k, max_len), model.pad_id, dtype=torch.long, device=device)
    fin_score = torch.full((b, k), NEG_INF, dtype=fdtype, device=device)
    fin_lp = torch.full((b, k), NEG_INF, dtype=fdtype, device=device)
    fin_len = torch.zeros((b, k), dtype=torch.long, device=device)
    rows = torch.arange(b, device=device)[:, None]

    def merge(tokens: Tensor, lp: Tensor, length: int) -> None:
        """Add hypotheses ``(b, n, length)`` with log-probs ``(b, n)`` to the finished set."""
        nonlocal fin_tokens, fin_score, fin_lp, fin_len
        padded = torch.full(
            (b, tokens.shape[1], max_len), model.pad_id, dtype=torch.long, device=device
        )
        padded[:, :, :length] = tokens
        score = lp / length_penalty(length, alpha)
        all_score = torch.cat([fin_score, score], dim=1)  # (b, k + n)
        best = all_score.topk(k, dim=1).indices  # (b, k)
        fin_tokens = torch.cat([fin_tokens, padded], dim=1)[rows, best]
        fin_score = all_score[rows, best]
        fin_lp = torch.cat([fin_lp, lp], dim=1)[rows, best]
        lengths = torch.full_like(lp, length, dtype=torch.long)
        fin_len = torch.cat([fin_len, lengths], dim=1)[rows, best]

    for t in range(1, max_len + 1):  # t: generated tokens after this step
        logp = _next_log_probs(model, alive.view(b * k, t), memory_k, mask_k, banned)
        cand = alive_lp[:, :, None] + logp.view(b, k, V)  # (b, k, V)
        # Every alive prefix + EOS is a finished hypothesis of length t.
        with_eos = torch.cat([alive[:, :, 1:], torch.full_like(alive[:, :, :1], eos_id)], dim=2)
        merge(with_eos, cand[:, :, eos_id], t)
        # The k best continuations without EOS stay alive.
        cont = cand.masked_fill(~not_eos, NEG_INF).view(b, k * V)
        top_lp, top_idx = cont.topk(k, dim=1)  # (b, k)
        beam, token = top_idx // V, top_idx % V
        alive = torch.cat([alive[rows, beam], token[:, :, None]], dim=2)  # (b, k, t + 1)
        alive_lp = top_lp
        if t == max_len:
            # Out of length: the unfinished prefixes end here, without EOS.
            merge(alive[:, :, 1:], alive_lp, t)
            break
        # Stop when no alive prefix can still beat the worst finished hypothesis.
        bound = alive_lp.max(dim=1).values / length_penalty(max_len, alpha)
        if bool((fin_score.min(dim=1).values >= bound).all()):
            break

    best = fin_score.argmax(dim=1)  # (b,)
    flat = rows[:, 0]
    tokens = fin_tokens[flat, best]  # (b, max_len)
    lengths = fin_len[flat, best]
    longest = int(lengths.max()) if lengths.numel() else 0
    return BeamSearchOutput(
        tokens=tokens[:, : max(longest, 1)],
        scores=fin_score[flat, best],
        log_probs=fin_lp[flat, best],
        lengths=lengths,
    )


def strip_special(ids: Sequence[int], *, eos_id: int, pad_id: int, bos_id: int) -> list[int]:
    """Token ids up to (not including) the first ``eos_id``, without padding or start tokens.

    Example:
        >>> strip_special([7, 8, 3, 0, 0], eos_id=3, pad_id=0, bos_id=2)
        [7, 8]
    """
    out = []
    for token in ids:
        if token == eos_id:
            break
        if token not in (pad_id, bos_id):
            out.append(int(token))
    return out


@torch.no_grad()
def translate(
    model: nn.Module,
    sources: Sequence[Sequence[int]],
    *,
    bos_id: int,
    eos_id: int,
    method: str = "beam",
    beam_size: int = 4,
    alpha: float = 0.6,
    batch_size: int = 32,
    max_len: int | None = None,
    device: torch.device | str | None = None,
) -> list[list[int]]:
    """Decode a list of ragged source id sequences in batches; return the output ids.

    Sources longer than the model's ``max_seq_len`` are cut to it. Sources are decoded in
    order of length (less padding), and the outputs come back in the input order.

    Args:
        model: a :class:`ReformerEncoderDecoder`; it is put in eval mode.
        sources: source id lists (each already ending with the end token, as in training).
        bos_id, eos_id: start and end tokens.
        method: ``"beam"`` or ``"greedy"``.
        beam_size, alpha: beam-search settings.
        batch_size: sources per batch.
        max_len: most generated tokens per source (default its length + 50).
        device: where to run (default: the model's device).

    Returns:
        One list of output ids per source, special tokens stripped.

    Example:
        >>> from reformer.models import ReformerEncoderDecoder
        >>> model = ReformerEncoderDecoder(10, d_model=8, n_heads=2, max_seq_len=8)
        >>> outs = translate(model, [[4, 5, 3], [6, 3]], bos_id=2, eos_id=3, method="greedy")
        >>> len(outs), all(isinstance(o, list) for o in outs)
        (2, True)
    """
    if method not in ("beam", "greedy"):
        raise ValueError(f"method={method!r} is not allowed: use 'beam' or 'greedy'")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} is not allowed: must be an integer >= 1")
    model.eval()
    if device is None:
        device = next(model.parameters()).device
    limit = model.max_seq_len
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    results: list[list[int]] = [[] for _ in sources]
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        batch = [list(sources[i])[:limit] or [eos_id] for i in idx]
        width = max(len(s) for s in batch)
        src = torch.full((len(batch), width), model.pad_id, dtype=torch.long)
        for row, ids in enumerate(batch):
            src[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        src = src.to(device)
        cap = max_len if max_len is not None else min(width + 50, limit)
        if method == "greedy":
            out = greedy_decode(model, src, bos_id=bos_id, eos_id=eos_id, max_len=cap)
        else:
            out = beam_search(
                model,
                src,
                bos_id=bos_id,
                eos_id=eos_id,
                beam_size=beam_size,
                alpha=alpha,
                max_len=cap,
            ).tokens
        for row, i in enumerate(idx):
            results[i] = strip_special(
                out[row].tolist(), eos_id=eos_id, pad_id=model.pad_id, bos_id=bos_id
            )
    return results
