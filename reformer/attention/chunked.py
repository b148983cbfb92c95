"""LSH attention as a function: sort by bucket, chunk, attend, unsort, combine the rounds.

:func:`lsh_attend` takes the shared query/key vectors, the values and the bucket of every
position in every round (:func:`~reformer.attention.hashing.hash_vectors`), and

1. sorts the positions of every round stably by ``(bucket, position)`` (Figure 2);
2. builds, on original positions, the masks of each chunk's window (another bucket unless
   ``attend_across_buckets``, causal, padding) and, for Eq. 16, one integer code per
   position and round from which :mod:`reformer.attention.window` counts how many rounds
   put a key in a query's set;
3. runs the chunked window attention (``_WindowAttention``);
4. undoes the sort and combines the rounds as ``o = sum_r exp(z_r - logsumexp_r(z_r)) o_r``
   (Eq. 6 and Appendix A), one round at a time (``_CombineRounds``).

Everything is batched over batch, heads and rounds. The duplicate counts cost
``O(b h r^2 l 2m)`` integer comparisons and are computed only when ``n_hashes > 1`` and the
correction is on.

Shape notation: ``b`` batch, ``l`` length, ``h`` heads, ``d`` head dimension, ``r`` rounds,
``c`` chunks per round (``l / bucket_size``), ``m`` chunk length, ``w = 2 m``.
"""

from __future__ import annotations

import torch
from einops import rearrange

from reformer.attention.window import _WindowAttention, sum_rounds

__all__ = ["lsh_attend"]


def _window(t: torch.Tensor, n_chunks: int) -> torch.Tensor:
    """``(T, m, ...) -> (T, w, ...)``: each chunk preceded by the chunk before it.

    ``T`` runs over (batch, head, round, chunk), so the chunk "before" chunk 0 of a round
    is the last chunk of another round (or head); those keys are masked. With one chunk per
    round there is nothing to look back to (``w = m``, no duplicate keys).
    """
    if n_chunks == 1:
        return t
    return torch.cat([t.roll(1, dims=0), t], dim=1)


def _window_codes(
    codes: torch.Tensor, gather_idx: torch.Tensor, n_chunks: int, m: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sorted slot, the codes of all rounds, for queries and for their key windows.

    Args:
        codes: ``(b l h, r)`` per position and round an integer code such that key ``j``
            is in query ``i``'s set in round ``r'`` iff ``code_r'(i) - code_r'(j)`` is 0 or 1.
        gather_idx: ``(b h r l)`` row of ``codes`` for each sorted slot.
        n_chunks: chunks per round ``c``.
        m: chunk length.

    Returns:
        ``(r, T, m, 1)`` query codes and ``(r, T, w)`` key codes (``T = b h r c``).
    """
    r = codes.shape[1]
    q_code = codes.to(torch.int32).index_select(0, gather_idx).view(-1, m, r)  # (T, m, r)
    k_code = rearrange(_window(q_code, n_chunks), "t w r -> r t w").contiguous()
    return rearrange(q_code, "t m r -> r t m")[..., None], k_code


class _CombineRounds(torch.autograd.Function):
    """Undo each round's sort and combine the rounds (Eq. 6 and Appendix A):
    ``y_i = sum_r w_r(i) o_r(i)`` with ``w_r(i) = exp(z_r(i) - logsumexp_r z_r(i))``.

    Inputs: ``out`` ``(S, d)`` and ``lse`` ``(S,)`` per sorted slot (``S = r n``);
    ``undo_idx`` ``(r, n)`` the slot of every row in every round; ``slot_row`` ``(S,)`` the
    row of every slot and ``redo_idx`` ``(S,)`` its inverse, the flat ``(r, n)`` index of
    every slot. Output: ``(n, d)``.

    The rows are gathered one round at a time, from that round's ``n`` slots, rather than
    from all ``r n`` slots at once: a source of ``n`` rows stays in cache where one of
    ``r n`` rows does not (at 32,768 tokens and 8 rounds, 8 MiB against 64 MiB). The
    backward gathers the output gradient (``n`` rows) into the sorted order instead of
    permuting an ``r n``-row gradient back: ``d o_r(i) = w_r(i) g_i`` and
    ``d z_r(i) = w_r(i) (g_i . o_r(i) - g_i . y_i)``.
    """

    @staticmethod
    def forward(ctx, out, lse, undo_idx, slot_row, redo_idx):
        r, n = undo_idx.shape
        ctx.set_materialize_grads(False)
        if r == 1:
            ctx.save_for_backward(slot_row)
            return out.index_select(0, undo_idx[0])
        weights = torch.softmax(lse.index_select(0, undo_idx.view(-1)).view(r, n, 1), dim=0)
        y = sum_rounds(out, undo_idx, weights)
        w_slot = weights.view(-1).index_select(0, redo_idx)  # w_r(i) of every slot
        ctx.save_for_backward(slot_row, out, y, w_slot)
        return y

    @staticmethod
    def backward(ctx, g):
        if g is None:
            return None, None, None, None, None
        slot_row = ctx.saved_tensors[0]
        g_slots = g.index_select(0, slot_row)  # (S, d)
        if len(ctx.saved_tensors) == 1:
            return g_slots, None, None, None, None
        _, out, y, w_slot = ctx.saved_tensors
        g_lse = torch.einsum("sd,sd->s", g_slots, out)
        g_lse.sub_(torch.einsum("nd,nd->n", g, y).index_select(0, slot_row)).mul_(w_slot)
        return g_slots.mul_(w_slot[:, None]), g_lse, None, None, None


def lsh_attend(
    qk: torch.Tensor,
    v: torch.Tensor,
    buckets: torch.Tensor,
    bucket_size: int,
    *,
    causal: bool = False,
    mask: torch.Tensor | None = None,
    attend_across_buckets: bool = False,
    allow_duplicate_attention: bool = False,
    dropout_p: float = 0.0,
) -> torch.Tensor:
    """Chunked shared-QK attention inside hash buckets, all rounds and heads at once.

    Args:
        qk: ``(b, l, h, d)`` shared query/key vectors (the keys are normalised here).
        v: ``(b, l, h, d)`` values.
        buckets: ``(b, h, r, l)`` int bucket id of every position in every round.
        bucket_size: chunk length ``m``; must divide ``l``.
        causal: mask keys at later positions than the query.
        mask: optional ``(b, l)`` bool padding mask, True = real token (masks keys).
        attend_across_buckets: let a query attend to keys of other buckets in its window.
        allow_duplicate_attention: skip the ``log N_ij`` correction of Eq. 16.
        dropout_p: dropout probability on the attention weights (0 in evaluation).

    Returns:
        ``(b, l, h, d)`` attention output.

    Example:
        >>> qk, v = torch.randn(1, 8, 2, 4), torch.randn(1, 8, 2, 4)
        >>> buckets = torch.randint(0, 2, (1, 2, 3, 8))  # 3 rounds, 2 buckets
        >>> lsh_attend(qk, v, buckets, bucket_size=4, causal=True).shape
        torch.Size([1, 8, 2, 4])
    """
    b, l, h, d = qk.shape
    r = buckets.shape[2]
    if not 1 <= r <= 255:  # the per-slab round sums are uint8
        raise ValueError(f"n_hashes={r} must be between 1 and 255")
    if l % bucket_size:
        raise ValueError(f"sequence length {l} must be divisible by bucket_size={bucket_size}")
    m = bucket_size
    c = l // m
    T = b * h * r * c
    device = qk.device
    positions = torch.arange(l, device=device)

    # Sort by (bucket, position): the keys are unique, so any sort is the stable sort.
    sorted_key, sorted_pos = (buckets * l + positions).sort(dim=-1)  # (b, h, r, l)
    # rank[b, h, r, i]: where position i sits in round r's sorted order.
    rank = torch.empty_like(sorted_pos).scatter_(-1, sorted_pos, positions.expand_as(sorted_pos))
    # Row of the (b l h) layout of the projections for every sorted slot.
    batch_base = (torch.arange(b, device=device) * (l * h)).view(b, 1, 1, 1)
    head_off = torch.arange(h, device=device).view(1, h, 1, 1)
    gather_idx = (batch_base + sorted_pos * h + head_off).reshape(-1)  # (b h r l)

    with torch.no_grad():
        masked = None
        q_pos = sorted_pos.view(T, m)
        if not attend_across_buckets:
            q_bucket = (sorted_key // l).view(T, m)
            masked = _window(q_bucket, c)[:, None, :] != q_bucket[:, :, None]  # (T, m, w)
        if causal:
            if masked is not None:
                # Within one bucket the sorted order is the position order, so among keys of
                # the query's bucket only the later slots of its own chunk are in its future.
                later = torch.ones(m, m, dtype=torch.bool, device=device).triu_(1)
                masked[:, :, -m:] |= later
            else:
                masked = _window(q_pos, c)[:, None, :] > q_pos[:, :, None]
        if mask is not None:
            keep = mask[:, :, None].expand(b, l, h).reshape(-1).index_select(0, gather_idx)
            padded = ~_window(keep.view(T, m), c)[:, None, :]  # (T, 1, w)
            masked = padded if masked is None else masked.logical_or_(padded)

        codes = None
        if r > 1 and not allow_duplicate_attention:
            # Key j is in query i's set of round r' iff same bucket (unless attending across
            # buckets) and chunk_r'(j) in {chunk_r'(i), chunk_r'(i) - 1}: one integer code per
            # position and round turns that into code(i) - code(j) in {0, 1}. The causal and
            # padding masks do not depend on the round, so they need no counting.
            code = rank // m  # chunk id, (b, h, r, l)
            if not attend_across_buckets:
                code = code + buckets * (c + 1)  # |difference| >= 2 across buckets
            code = rearrange(code, "b h r l -> (b l h) r")
            codes = _window_codes(code, gather_idx, c, m)

    # Undo the sort: for every round, the sorted slot of every (b l h) row.
    round_base = (torch.arange(b * h * r, device=device) * l).view(b, h, r, 1)
    undo_idx = rearrange(round_base + rank, "b h r l -> r (b l h)").contiguous()
    n = b * l * h
    # ... and its inverse: the flat (r, n) index of every sorted slot.
    slot_round = torch.arange(r, device=device).view(1, 1, r, 1).expand(b, h, r, l).reshape(-1)
    redo_idx = slot_round * n + gather_idx

    # The keys (unit-length queries, 1/sqrt(d) folded in) are made from the sorted queries.
    out, lse = _WindowAttention.apply(
        qk.reshape(n, d),
        v.reshape(n, d),
        gather_idx,
        undo_idx,
        masked,
        codes,
        c,
        m,
        dropout_p,
    )
    out = _CombineRounds.apply(out.view(T * m, d), lse.view(T * m), undo_idx, gather_idx, redo_idx)
    return out.view(b, l, h, d)
