"""Locality-sensitive-hashing (LSH) self-attention, as defined in the paper (Section 2).

Map from the paper to this module:

* **Shared QK** (Section 2, "Shared-QK Transformer"): one projection ``to_qk`` gives the
  queries; the keys are the queries normalised to unit length, ``k_j = q_j / ||q_j||``;
  scores are scaled by ``1 / sqrt(d_head)``.
* **Hashing** (Section 2, "Locality sensitive hashing"): for each head and each round a
  random matrix ``R`` of shape ``(d_head, n_buckets / 2)`` is drawn afresh in every forward
  pass and ``h(x) = argmax([xR; -xR])`` (:func:`hash_vectors`). Rotations are shared across
  the batch.
* **Sorting and chunking** (Figure 2, Eq. 3-5): in every round the positions are sorted
  stably by ``(bucket, position)`` and the sorted sequence is cut into chunks of
  ``bucket_size`` (the paper's ``m``); each chunk attends to itself and to the chunk before
  it in the same round. The first chunk has no look-back (no wrap-around).
* **Masks** (Section 2 and Eq. 16), all on original positions: a key in another bucket is
  masked (unless ``attend_across_buckets``), ``causal`` masks keys after the query, the
  padding mask masks keys, and the self score ``i -> i`` is replaced by ``-1e5`` so a query
  attends to itself only when nothing else is allowed
  (:mod:`reformer.attention.masks`).
* **Multi-round hashing** (Eq. 6 and Appendix A): each round ``r`` gives an output
  ``o_r`` and the log-sum-exp ``z_r`` of its scores; the rounds are combined as
  ``o = sum_r exp(z_r - logsumexp_r(z_r)) o_r``.
* **Duplicate correction** (Eq. 16): a key ``j`` found by query ``i`` in several rounds has
  ``log N_ij`` subtracted from its score, where ``N_ij`` counts the rounds whose attention
  set of ``i`` holds ``j``. The combined output is then exactly softmax attention over the
  union of the rounds' attention sets (over the multiset, with weight ``N_ij``, when
  ``allow_duplicate_attention=True``).

How the public implementations differ (facts, not code, were compared):

* reformer-pytorch (``reformer_pytorch.LSHSelfAttention``): allows duplicate attention and
  attention across buckets by default (the paper does neither; here both default to the
  paper's choice), draws one set of rotations shared by all heads by default, uses ``-5e4``
  for the self score (chosen for float16) and needs the length to be divisible by twice the
  bucket size.
* HuggingFace ``transformers`` ``ReformerModel``: rotations per head, no duplicate counting
  across rounds, keys scaled by an RMS norm rather than normalised to unit length, and LSH
  layers mixed with local-attention layers.

Implementation: everything is batched over batch, heads and rounds. The positions of all
rounds are sorted once; the sorted rows are gathered into one buffer in which each chunk's
key window ``[chunk before, chunk]`` is a strided view, and a custom autograd function
computes the ``(b h r c, m, 2m)`` scores, masks and a fused softmax, keeping only the
attention weights for its hand-written backward. Nothing of size ``l x l`` is formed;
the activation memory is ``O(b h r l (2m + d))``, linear in the length. The duplicate
counts cost ``O(b h r^2 l 2m)`` integer comparisons and are computed only when
``n_hashes > 1`` and the correction is on. A query whose keys are all masked (a padded
position whose own key is padding) gets a zero output.

Reversible recompute: the reversible block recomputes this layer in its backward pass and
must get the same rotations and dropout masks. Rotations come from ``self.generator`` when
one is set, otherwise from torch's global RNG of the input's device (dropout always uses the
global RNG). The block therefore saves and restores the global CPU/CUDA RNG state, plus the
generator states returned by :func:`get_rng_states` (or each module's :meth:`rng_state`),
restored with :func:`set_rng_states` (or :meth:`set_rng_state`).

Shape notation: ``b`` batch, ``l`` length, ``h`` heads, ``d`` head dimension,
``r`` rounds (``n_hashes``), ``c`` chunks per round (``l / bucket_size``), ``m`` chunk
length (``bucket_size``), ``w = 2 m`` keys per chunk (itself and one chunk back).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from reformer.attention.masks import (
    check_heads,
    check_padding_mask,
    hard_mask_value,
    self_mask_value,
)
from reformer.recompute import AutocastState, capture_rng, cuda_devices, replaying, restore_rng

# Positions hashed at once: bounds the ``(b, h, r, slice, n_buckets / 2)`` projection that
# the argmax reads (64 Mi elements, 256 MiB in float32), so long sequences with many buckets
# do not materialise an ``l x n_buckets`` tensor.
_HASH_SLAB = 1 << 26


def _hash_one(qk: torch.Tensor, rotations: torch.Tensor, out: torch.Tensor) -> None:
    """``out[b, h, r, l] = argmax([xR; -xR])`` for one rotation tensor, in length slices.

    The argmax over the concatenation is taken as a max and a min of ``xR`` (the largest
    entry of ``-xR`` is minus the smallest of ``xR``), so ``[xR; -xR]`` is never built. Ties
    resolve as the argmax of the concatenation does: the first index, and the positive
    half before the negative one.
    """
    b, l, h, _ = qk.shape
    half = rotations.shape[-1]
    step = max(1, _HASH_SLAB // max(1, b * h * rotations.shape[1] * half))
    for start in range(0, l, step):
        proj = torch.einsum("blhd,hrdk->bhrlk", qk[:, start : start + step], rotations)
        top, top_idx = proj.max(dim=-1)
        low, low_idx = proj.min(dim=-1)
        torch.where(top >= -low, top_idx, low_idx + half, out=out[..., start : start + step])


def hash_vectors(
    qk: torch.Tensor, rotations: torch.Tensor | Sequence[torch.Tensor]
) -> torch.Tensor:
    """Angular LSH: ``h(x) = argmax([xR; -xR])`` per head and round (paper, Section 2).

    With a sequence of rotation tensors the buckets are factorised: each factor ``i`` hashes
    into ``n_i`` buckets with its own rotations and the bucket id is the mixed-radix number
    ``h_0 + n_0 (h_1 + n_1 (h_2 + ...))``, so ``prod n_i`` buckets cost ``sum n_i / 2``
    projections per vector instead of ``prod n_i / 2`` (for long sequences, where the number
    of buckets grows with the length; the authors' trax code offers the same).

    Computed in at least float32 (outside autocast), so low-precision inputs do not create
    ties; no gradient flows through the hash.

    Args:
        qk: ``(b, l, h, d)`` shared query/key vectors.
        rotations: ``(h, r, d, n_buckets // 2)`` random matrices, or a sequence of them with
            the factors' bucket counts.

    Returns:
        ``(b, h, r, l)`` int64 bucket ids in ``[0, n_buckets)``.

    Example:
        >>> qk = torch.tensor([[[[1.0, 0.0]], [[-1.0, 0.0]]]])  # (b=1, l=2, h=1, d=2)
        >>> rotations = torch.eye(2).reshape(1, 1, 2, 2)  # (h=1, r=1, d=2, n_buckets/2=2)
        >>> hash_vectors(qk, rotations).tolist()
        [[[[0, 2]]]]
        >>> hash_vectors(qk, [rotations, rotations]).tolist()  # 4 x 4 factorised buckets
        [[[[0, 10]]]]
    """
    factors = [rotations] if isinstance(rotations, torch.Tensor) else list(rotations)
    b, l, h, _ = qk.shape
    dtype = torch.promote_types(qk.dtype, torch.float32)
    buckets = torch.empty(b, h, factors[0].shape[1], l, dtype=torch.long, device=qk.device)
    with torch.no_grad(), torch.autocast(qk.device.type, enabled=False):
        x = qk.detach().to(dtype)
        _hash_one(x, factors[0].to(qk.device, dtype), buckets)
        radix = 2 * factors[0].shape[-1]
        scratch = torch.empty_like(buckets) if len(factors) > 1 else None
        for factor in factors[1:]:  # the next digits of the mixed-radix bucket id
            _hash_one(x, factor.to(qk.device, dtype), scratch)
            buckets.add_(scratch, alpha=radix)
            radix *= 2 * factor.shape[-1]
    return buckets


def _window(t: torch.Tensor, n_chunks: int) -> torch.Tensor:
    """``(T, m, ...) -> (T, w, ...)``: each chunk preceded by the chunk before it.

    ``T`` runs over (batch, head, round, chunk), so the chunk "before" chunk 0 of a round
    is the last chunk of another round (or head); those keys are masked. With one chunk per
    round there is nothing to look back to (``w = m``, no duplicate keys).
    """
    if n_chunks == 1:
        return t
    return torch.cat([t.roll(1, dims=0), t], dim=1)


# How many (round, query, key) comparisons the duplicate count makes at once. On the CPU the
# temporaries stay at 16 MiB, small enough for the allocator to reuse between calls.
_COUNT_SLAB = {"cpu": 1 << 24}
_COUNT_SLAB_DEFAULT = 1 << 28


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


def _divide_by_duplicate_counts(
    weights: torch.Tensor, q_code: torch.Tensor, k_code: torch.Tensor
) -> None:
    """``weights /= N_ij`` in place: Eq. 16's correction, ``exp(s - log N) = exp(s) / N``.

    ``N_ij`` (the number of rounds ``r'`` with ``code_r'(i) - code_r'(j)`` in {0, 1}) is
    counted for slabs of chunks at a time, batched over all rounds, so the boolean
    temporaries stay small; a count of 0 only occurs for masked pairs (weight 0).

    Args:
        weights: ``(T, m, w)`` unnormalised attention weights.
        q_code: ``(r, T, m, 1)`` and k_code: ``(r, T, w)`` from :func:`_window_codes`.
    """
    r, T, m, _ = q_code.shape
    w = k_code.shape[-1]
    budget = _COUNT_SLAB.get(weights.device.type, _COUNT_SLAB_DEFAULT)
    step = max(1, budget // (max(r, 4) * m * w))
    n_max = min(step, T)
    scratch = torch.empty(r * n_max * m * w, dtype=torch.bool, device=weights.device)
    counts = torch.empty(2, n_max, m, w, dtype=torch.uint8, device=weights.device)
    inverse = torch.empty(n_max, m, w, dtype=weights.dtype, device=weights.device)
    for start in range(0, T, step):
        stop = min(start + step, T)
        n = stop - start
        hits = scratch[: r * n * m * w].view(r, n, m, w)
        q, k = q_code[:, start:stop], k_code[:, start:stop, None, :]
        for i, offset in enumerate((0, 1)):  # code(j) == code(i) or code(j) + 1 == code(i)
            torch.eq(q, k + offset if offset else k, out=hits)
            torch.sum(hits.view(torch.uint8), 0, dtype=torch.uint8, out=counts[i, :n])
        total = counts[0, :n].add_(counts[1, :n]).clamp_(min=1)
        weights[start:stop].mul_(inverse[:n].copy_(total).reciprocal_())


class _WindowAttention(torch.autograd.Function):
    """Gather, then softmax attention of each chunk to the chunk before it and itself.

    Inputs: ``qk``, ``v`` ``(N, d)`` with ``N = b l h`` rows (shared query/key, value);
    ``gather_idx`` ``(T m,)`` the row of every sorted slot and ``undo_idx`` ``(N r,)`` the
    slot of every (row, round); ``masked`` ``(T, m or 1, w)`` bool or ``None``; ``codes`` the
    pair from :func:`_window_codes` for the duplicate correction, or ``None``. Outputs:
    ``(T, m, d)`` attention output and ``(T, m)`` log-sum-exp of the scores.

    The sorted rows are gathered into a ``(3, (T + 1) m, d)`` buffer (queries, keys, values),
    each with ``m`` zero rows in front, so the key and value windows ``[chunk before, chunk]``
    of every chunk are strided views (no copy). The keys are the sorted queries made unit
    length, with the ``1/sqrt(d)`` scale folded in, computed in the buffer (no second gather).
    The softmax is one fused pass (in place on the CPU); the duplicate correction then divides
    the weights by ``N`` and renormalises, since ``softmax(s - log N) = softmax(s) / N``
    renormalised. The hand-written backward keeps only the sorted rows and the attention
    weights ``p`` (and, with dropout, the dropped weights) instead of every intermediate score
    tensor, takes the keys' gradient through the normalisation on the sorted rows, and
    returns gradients through the inverse permutation of each round.
    """

    @staticmethod
    def forward(ctx, qk, v, gather_idx, undo_idx, masked, codes, n_chunks, m, dropout_p):
        ctx.set_materialize_grads(False)
        d = qk.shape[1]
        T = gather_idx.numel() // m
        w = m if n_chunks == 1 else 2 * m
        self_value, hard = self_mask_value(qk.dtype), hard_mask_value(qk.dtype)
        with torch.autocast(qk.device.type, enabled=False):
            buf = qk.new_empty(3, (T + 1) * m, d)  # sorted q, k, v, each after m zero rows
            buf[:, :m].zero_()
            torch.index_select(qk, 0, gather_idx, out=buf[0, m:])
            torch.index_select(v.to(qk.dtype), 0, gather_idx, out=buf[2, m:])
            # k = q / |q| / sqrt(d), as F.normalize does it (|q| clamped at 1e-12)
            scale = torch.linalg.vector_norm(buf[0, m:], dim=-1, keepdim=True)
            scale.clamp_(min=_NORM_EPS).reciprocal_().mul_(d**-0.5)  # (T m, 1)
            torch.mul(buf[0, m:], scale, out=buf[1, m:])
            sq = buf[0, m:].view(T, m, d)
            k_win, v_win = _strided_windows(buf, T, m, d, w)
            p = torch.bmm(sq, k_win.transpose(1, 2))  # scores, (T, m, w)
            # Self-mask: query t of a chunk meets itself at key w - m + t of its window.
            p[:, :, w - m :].diagonal(dim1=-2, dim2=-1).fill_(self_value)
            if masked is not None:
                p.masked_fill_(masked, hard)
            if w > m:  # the first chunk of every round has no chunk before it
                p.view(-1, n_chunks, m, w)[:, 0, :, :m] = hard
            top = p.amax(dim=-1, keepdim=True)
            # One fused pass instead of max, exp, sum and divide. A masked score (the hard
            # value) lies at least 1e4 below the row's largest score unless every key of the
            # row is masked (the self score is above it), so its weight is exactly 0. In place
            # on the CPU, where it equals the out-of-place result, so the step's peak memory
            # holds one (T, m, w) buffer, not two.
            p = torch.softmax(p, dim=-1, out=p) if p.is_cpu else torch.softmax(p, dim=-1)
            # The largest weight is exp(top - lse), hence the row's log-sum-exp.
            lse = top - p.amax(dim=-1, keepdim=True).log()  # (T, m, 1)
            if codes is not None:
                # Eq. 16: softmax(s - log N) is softmax(s) / N, renormalised, and its
                # log-sum-exp is lse(s) + log(sum_j softmax(s)_j / N_ij).
                _divide_by_duplicate_counts(p, *codes)
                total = p.sum(dim=-1, keepdim=True)
                p.div_(total)
                lse.add_(total.log_())
            lse = lse.squeeze(-1)
            # A row with every key masked (a padded query whose own key is padding) gets
            # zero weights, zero output and no gradient.
            empty = top < (self_value + hard) / 2
            if not p.is_cpu or empty.any():  # on a GPU, a fill costs less than a sync
                p.masked_fill_(empty, 0.0)
            p_drop = F.dropout(p, dropout_p) if dropout_p > 0 else p
            out = torch.bmm(p_drop, v_win)  # (T, m, d)
        ctx.save_for_backward(buf, scale, undo_idx, p, p_drop if dropout_p > 0 else None)
        ctx.shape = (T, m, d, w)
        ctx.dtypes, ctx.n_rows = (qk.dtype, v.dtype), qk.shape[0]
        return out, lse

    @staticmethod
    def backward(ctx, g_out, g_lse):
        buf, scale, undo_idx, p, p_drop = ctx.saved_tensors
        T, m, d, w = ctx.shape
        n = ctx.n_rows
        p_drop = p if p_drop is None else p_drop
        with torch.autocast(buf.device.type, enabled=False):
            sq = buf[0, m:].view(T, m, d)
            g_out = sq.new_zeros(T, m, d) if g_out is None else g_out.to(buf.dtype).contiguous()
            k_win, v_win = _strided_windows(buf, T, m, d, w)
            # d scores = p_drop * (g_out . v) - p * (delta - g_lse), where delta =
            # rowsum(g_out * out) = rowsum(p_drop * (g_out . v)) since out = p_drop @ v: the
            # row sum of the first term, so the output need not be kept for backward.
            ds = torch.bmm(g_out, v_win.transpose(1, 2)).mul_(p_drop)  # (T, m, w)
            shift = ds.sum(dim=-1, keepdim=True)
            if g_lse is not None:
                shift.sub_(g_lse.to(buf.dtype)[..., None])
            ds.addcmul_(p, shift, value=-1)
            ds[:, :, w - m :].diagonal(dim1=-2, dim2=-1).zero_()  # the self score is constant
            sorted_grad = torch.empty_like(g_out)  # (T, m, d), reused for qk and v
            grads = []
            for which in (1, 2):
                # keys (which = 1) and values: from their own chunk and the chunk after it
                weights, rhs = (ds, sq) if which == 1 else (p_drop, g_out)
                torch.bmm(weights[:, :, w - m :].transpose(1, 2), rhs, out=sorted_grad)
                if w > m:
                    sorted_grad[:-1].baddbmm_(weights[1:, :, :m].transpose(1, 2), rhs[1:])
                if which == 1:
                    # Through k = q * scale, scale = 1 / (sqrt(d) |q|): dq = scale * (dk -
                    # q^ (q^ . dk)) with q^ = k sqrt(d), or scale * dk where |q| was clamped.
                    k, dk, s = buf[1, m:].view(T, m, d), sorted_grad, scale.view(T, m, 1)
                    along = torch.linalg.vecdot(k, dk).unsqueeze(-1).mul_(d)
                    along.masked_fill_(s * d**0.5 >= 1 / _NORM_EPS, 0.0)  # |q| was clamped
                    dk.addcmul_(k, along, value=-1).mul_(s)
                    # ... plus the queries' own gradient, from every key of their window
                    sorted_grad.baddbmm_(ds, k_win)
                # Every round is a permutation of the rows: gather back, sum over rounds.
                rows = sorted_grad.view(T * m, d).index_select(0, undo_idx).view(n, -1, d)
                grad = rows.sum(dim=1) if rows.shape[1] > 1 else rows.view(n, d)
                grads.append(grad.to(ctx.dtypes[which - 1]))
        return (*grads, *([None] * 7))


# The clamp of F.normalize: a query shorter than this is divided by it instead of its length.
_NORM_EPS = 1e-12


def _strided_windows(
    buf: torch.Tensor, T: int, m: int, d: int, w: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Key and value windows ``(T, w, d)`` as overlapping views of the sorted buffer."""
    first = m - (w - m)  # the window of chunk 0 starts in the zero rows when w = 2 m
    shape, strides = (T, w, d), (m * d, d, 1)
    return buf[1, first:].as_strided(shape, strides), buf[2, first:].as_strided(shape, strides)


class _Permute(torch.autograd.Function):
    """``x[idx]`` for a permutation ``idx`` of the rows; backward gathers with ``inverse``."""

    @staticmethod
    def forward(ctx, x, idx, inverse):
        ctx.save_for_backward(inverse)
        return x.index_select(0, idx)

    @staticmethod
    def backward(ctx, grad):
        (inverse,) = ctx.saved_tensors
        return grad.index_select(0, inverse), None, None


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

    # Undo the sort, straight into the (b, l, h, r) layout the output needs.
    round_base = (torch.arange(b * h * r, device=device) * l).view(b, h, r, 1)
    undo_idx = rearrange(round_base + rank, "b h r l -> (b l h r)")
    # ... and its inverse: the (b l h r) row of every sorted slot.
    slot_round = torch.arange(r, device=device).view(1, 1, r, 1).expand(b, h, r, l).reshape(-1)
    redo_idx = gather_idx * r + slot_round

    # The keys (unit-length queries, 1/sqrt(d) folded in) are made from the sorted queries.
    n = b * l * h
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
    out = _Permute.apply(out.view(T * m, d), undo_idx, redo_idx)
    if r == 1:
        return out.view(b, l, h, d)
    out = out.view(b, l, h, r, d)
    lse = lse.view(T * m).index_select(0, undo_idx).view(b, l, h, 1, r)
    weights = torch.softmax(lse, dim=-1)  # exp(z_r - logsumexp_r z_r)
    return (weights @ out).squeeze(-2)  # sum over rounds


class LSHSelfAttention(nn.Module):
    """Multi-head LSH self-attention with shared QK (paper, Section 2).

    Args:
        d_model: model width; must be divisible by ``n_heads``.
        n_heads: number of attention heads.
        bucket_size: chunk length ``m`` (the sorted sequence is cut into chunks of this
            length); the sequence length must be a multiple of it.
        n_hashes: number of hashing rounds; a plain attribute that may be changed at any
            time (e.g. evaluate a model trained with 1 round using 8).
        causal: mask keys after the query position.
        n_buckets: number of hash buckets; default ``length // bucket_size``. Must be 1 (one
            bucket: no hashing) or even. A tuple of even factors, e.g. ``(128, 128)``,
            factorises ``prod`` buckets (see :func:`hash_vectors`): for very long sequences,
            where one rotation of ``n_buckets / 2`` columns per round would dominate the
            step.
        attend_across_buckets: let a query attend to keys of other buckets that share its
            chunk window (reformer-pytorch's default); the paper does not.
        allow_duplicate_attention: turn off the duplicate correction of Eq. 16.
        dropout: dropout probability on the attention weights (training only).
        bias: whether the projections have a bias.
        generator: optional ``torch.Generator`` for the rotations (tests fix it); default:
            torch's global RNG on the input's device.
        head_chunks: compute the heads in this many groups, forward and backward, so a
            training step keeps only the input for backward and one group's attention
            buffers at a time instead of all heads' (for the longest sequences; costs one
            more forward of the attention). A plain attribute, like ``n_hashes``.

    Parameters ``to_qk``, ``to_v``, ``to_out`` (each ``Linear(d_model, d_model)``) match
    those of ``FullSelfAttention(shared_qk=True)``, so state dicts load across the two.

    Hook for tests: the rotations come from :meth:`random_rotations`; replacing it on an
    instance (``attn.random_rotations = lambda n_buckets, device: R``) fixes them.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> attn = LSHSelfAttention(d_model=16, n_heads=2, bucket_size=4, n_hashes=2,
        ...                         causal=True, generator=g)
        >>> x = torch.randn(2, 32, 16)
        >>> attn(x).shape
        torch.Size([2, 32, 16])
        >>> attn.n_hashes = 8  # more rounds at evaluation time
        >>> attn(x, mask=torch.ones(2, 32, dtype=torch.bool)).shape
        torch.Size([2, 32, 16])
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        bucket_size: int = 64,
        n_hashes: int = 4,
        causal: bool = False,
        n_buckets: int | Sequence[int] | None = None,
        attend_across_buckets: bool = False,
        allow_duplicate_attention: bool = False,
        dropout: float = 0.0,
        bias: bool = False,
        generator: torch.Generator | None = None,
        head_chunks: int = 1,
    ) -> None:
        super().__init__()
        self.d_head = check_heads(d_model, n_heads)
        if bucket_size <= 0:
            raise ValueError(f"bucket_size={bucket_size} must be a positive integer")
        if n_hashes <= 0:
            raise ValueError(f"n_hashes={n_hashes} must be a positive integer")
        if isinstance(n_buckets, Sequence):
            n_buckets = tuple(int(n) for n in n_buckets)
            if not n_buckets or any(n <= 0 or n % 2 for n in n_buckets):
                raise ValueError(
                    f"n_buckets={n_buckets} must be 1, a positive even number or a tuple of "
                    "positive even factors"
                )
        elif n_buckets is not None and (n_buckets <= 0 or (n_buckets != 1 and n_buckets % 2)):
            raise ValueError(f"n_buckets={n_buckets} must be 1 or a positive even number")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout={dropout} must be in [0, 1)")
        self.d_model = d_model
        self.n_heads = n_heads
        self.bucket_size = bucket_size
        self.n_hashes = n_hashes
        self.causal = causal
        self.n_buckets = n_buckets
        self.attend_across_buckets = attend_across_buckets
        self.allow_duplicate_attention = allow_duplicate_attention
        self.dropout = dropout
        self.generator = generator
        self.head_chunks = head_chunks
        self.to_qk = nn.Linear(d_model, d_model, bias=bias)
        self.to_v = nn.Linear(d_model, d_model, bias=bias)
        self.to_out = nn.Linear(d_model, d_model, bias=bias)

    def buckets_for_length(self, length: int) -> int | tuple[int, ...]:
        """Validate ``length`` and return the number of buckets used for it (the factors
        when ``n_buckets`` is a tuple).

        Raises:
            ValueError: when ``length`` is not a multiple of ``bucket_size`` or the number
                of buckets is neither 1 nor even.

        Example:
            >>> LSHSelfAttention(8, 2, bucket_size=4).buckets_for_length(32)
            8
        """
        if length % self.bucket_size:
            raise ValueError(
                f"sequence length {length} must be divisible by bucket_size={self.bucket_size}"
            )
        if self.n_buckets is not None:
            return self.n_buckets
        n_buckets = length // self.bucket_size
        if n_buckets != 1 and n_buckets % 2:
            raise ValueError(
                f"n_buckets = length {length} // bucket_size {self.bucket_size} = {n_buckets} "
                "must be 1 or even; use an even multiple of bucket_size or set n_buckets"
            )
        return n_buckets

    def random_rotations(
        self, n_buckets: int | tuple[int, ...], device: torch.device
    ) -> torch.Tensor | list[torch.Tensor]:
        """Draw fresh random rotations, one per head and round.

        Drawn in float32 from ``self.generator`` when set (on the generator's device, then
        moved), else from torch's global RNG on ``device``.

        Args:
            n_buckets: number of buckets (even), or a tuple of even factors.
            device: device of the input.

        Returns:
            ``(n_heads, n_hashes, d_head, n_buckets // 2)`` float32 tensor; for factors, a
            list of such tensors, one per factor.

        Example:
            >>> attn = LSHSelfAttention(8, 2, n_hashes=3)
            >>> attn.random_rotations(6, torch.device("cpu")).shape
            torch.Size([2, 3, 4, 3])
        """
        if isinstance(n_buckets, tuple):
            return [self.random_rotations(n, device) for n in n_buckets]
        shape = (self.n_heads, self.n_hashes, self.d_head, n_buckets // 2)
        if self.generator is None:
            return torch.randn(shape, device=device)
        g = self.generator
        return torch.randn(shape, generator=g, device=g.device).to(device)

    def rng_state(self) -> torch.Tensor | None:
        """State of ``self.generator`` (``None`` when the global RNG is used).

        Example:
            >>> LSHSelfAttention(8, 2).rng_state() is None
            True
        """
        return None if self.generator is None else self.generator.get_state()

    def set_rng_state(self, state: torch.Tensor | None) -> None:
        """Restore a state returned by :meth:`rng_state` (no-op for ``None``).

        Example:
            >>> attn = LSHSelfAttention(8, 2, generator=torch.Generator().manual_seed(0))
            >>> state = attn.rng_state()
            >>> a = attn.random_rotations(4, torch.device("cpu"))
            >>> attn.set_rng_state(state)
            >>> torch.equal(a, attn.random_rotations(4, torch.device("cpu")))
            True
        """
        if state is not None and self.generator is not None:
            self.generator.set_state(state)

    # PreNorm hands its layer norm to this layer (see ``norm`` below).
    accepts_norm = True

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        norm: nn.Module | None = None,
    ) -> torch.Tensor:
        """LSH attention of every position within its buckets.

        Args:
            x: ``(b, l, d_model)`` input; ``l`` must be a multiple of ``bucket_size``.
            mask: optional ``(b, l)`` bool padding mask, True = real token (masks keys).
            norm: optional position-wise module (the block's layer norm) applied to ``x``
                first. With ``head_chunks > 1`` its output is never held whole: it is
                computed in slabs of positions where the projections need it, in forward and
                again in backward, so a training step keeps only ``x``.

        Returns:
            ``(b, l, d_model)`` output.
        """
        b, l, _ = x.shape
        n_buckets = self.buckets_for_length(l)
        check_padding_mask(mask, b, l)
        rotations = None if n_buckets == 1 else self.random_rotations(n_buckets, x.device)
        if self.head_chunks <= 0 or self.n_heads % self.head_chunks:
            raise ValueError(
                f"head_chunks={self.head_chunks} must be a positive divisor of "
                f"n_heads={self.n_heads}"
            )
        if self.head_chunks == 1:
            out = self._attend(x if norm is None else norm(x), rotations, 0, self.n_heads, mask)
        else:
            norm_params = () if norm is None else tuple(norm.parameters())
            out = _HeadGroups.apply(
                x,
                self.to_qk.weight,
                self.to_qk.bias,
                self.to_v.weight,
                self.to_v.bias,
                self.to_out.weight,
                self,
                rotations,
                mask,
                norm,
                *norm_params,
            )
        if self.to_out.bias is not None:
            out = out + self.to_out.bias
        return out

    def _attend(
        self,
        x: torch.Tensor,
        rotations: torch.Tensor | list[torch.Tensor] | None,
        first: int,
        stop: int,
        mask: torch.Tensor | None,
        norm: nn.Module | None = None,
    ) -> torch.Tensor:
        """Heads ``first:stop``: their projections (of ``norm(x)``), attention and share of
        ``to_out`` (without its bias), ``(b, l, d_model)``."""
        b, l, _ = x.shape
        cols = slice(first * self.d_head, stop * self.d_head)
        qk, v = self._project(x, first, stop, norm)
        out = self._attend_heads(qk, v, rotations, first, stop, mask)  # (b, l, h, d)
        return F.linear(out.reshape(b, l, -1), self.to_out.weight[:, cols])

    def _project(
        self, x: torch.Tensor, first: int, stop: int, norm: nn.Module | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Shared query/key and value of heads ``first:stop`` from ``norm(x)``, each
        ``(b, l, h, d)``; with a ``norm``, in slabs of positions (:func:`_slab_starts`)."""
        b, l, _ = x.shape
        cols = slice(first * self.d_head, stop * self.d_head)
        linears = (self.to_qk, self.to_v)
        weights = [(m.weight[cols], None if m.bias is None else m.bias[cols]) for m in linears]
        if norm is None:
            outs = [F.linear(x, w, bias) for w, bias in weights]
        else:
            parts: list[list[torch.Tensor]] = [[], []]
            for _, piece in _slab_starts(x):
                normed = norm(piece)
                for part, (w, bias) in zip(parts, weights, strict=True):
                    part.append(F.linear(normed, w, bias))
            outs = [torch.cat(part, dim=1) for part in parts]
        qk, v = (out.view(b, l, stop - first, self.d_head) for out in outs)
        return qk, v

    def _attend_heads(
        self,
        qk: torch.Tensor,
        v: torch.Tensor,
        rotations: torch.Tensor | list[torch.Tensor] | None,
        first: int,
        stop: int,
        mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """Hash and attend heads ``first:stop`` given their ``(b, l, h, d)`` ``qk`` and ``v``;
        returns ``(b, l, h, d)``."""
        b, l, h, _ = qk.shape
        if rotations is None:
            buckets = torch.zeros(b, h, self.n_hashes, l, dtype=torch.long, device=qk.device)
        elif isinstance(rotations, torch.Tensor):
            buckets = hash_vectors(qk.detach(), rotations[first:stop])
        else:
            buckets = hash_vectors(qk.detach(), [factor[first:stop] for factor in rotations])
        return lsh_attend(
            qk,
            v,
            buckets,
            self.bucket_size,
            causal=self.causal,
            mask=mask,
            # With one bucket, "across buckets" is the same thing and skips a mask.
            attend_across_buckets=self.attend_across_buckets or rotations is None,
            allow_duplicate_attention=self.allow_duplicate_attention,
            dropout_p=self.dropout if self.training else 0.0,
        )

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, n_heads={self.n_heads}, bucket_size={self.bucket_size}, "
            f"n_hashes={self.n_hashes}, causal={self.causal}, n_buckets={self.n_buckets}, "
            f"attend_across_buckets={self.attend_across_buckets}, "
            f"allow_duplicate_attention={self.allow_duplicate_attention}, dropout={self.dropout}, "
            f"head_chunks={self.head_chunks}"
        )


class _HeadGroups(torch.autograd.Function):
    """LSH self-attention computed ``head_chunks`` groups of heads at a time (forward and
    backward), keeping only the input ``x`` for backward.

    ``apply(x, w_qk, b_qk, w_v, b_v, w_out, layer, rotations, mask, norm, *norm_params)``:
    ``x`` ``(b, l, d_model)``; returns ``sum_g to_out_g(attention of group g)`` ``(b, l,
    d_model)`` without ``to_out``'s bias, the projections reading ``norm(x)`` (``norm`` may be
    ``None``). Heads are independent up to the output projection, so the layer is a sum over
    groups. In backward each group's projections and attention run again (the random state
    restored, so dropout masks repeat; the rotations were drawn once, by the caller), autograd
    differentiates only the attention core, and the projections' and the norm's gradients are
    written by hand, slab by slab of positions: ``d norm(x)`` accumulates in place in one
    ``(b, l, d_model)`` buffer, which the norm's backward then overwrites with ``dx``. So no
    full-width tensor is made per group and ``norm(x)`` is never held whole
    (``torch.utils.checkpoint`` of each group would recompute its full-width output and
    zero-pad its input gradient).
    """

    @staticmethod
    def forward(ctx, x, w_qk, b_qk, w_v, b_v, w_out, layer, rotations, mask, norm, *norm_params):
        size = layer.n_heads // layer.head_chunks
        groups = [(h, h + size) for h in range(0, layer.n_heads, size)]
        keep_rng = layer.training and layer.dropout > 0
        states = []
        out = None
        for first, stop in groups:
            states.append(capture_rng(cuda_devices(x)) if keep_rng else None)
            part = layer._attend(x, rotations, first, stop, mask, norm)
            out = part if out is None else out.add_(part)
        ctx.save_for_backward(x)
        ctx.layer, ctx.rotations, ctx.mask, ctx.norm = layer, rotations, mask, norm
        ctx.groups, ctx.states = groups, states
        ctx.autocast = AutocastState.capture(x.device.type)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_out):
        (x,) = ctx.saved_tensors
        layer, norm = ctx.layer, ctx.norm
        b, l, d_model = x.shape
        needs = ctx.needs_input_grad
        g2 = g_out.reshape(b * l, d_model)
        weights = (layer.to_qk.weight, layer.to_v.weight)
        biases = (layer.to_qk.bias, layer.to_v.bias)
        d_w = [
            torch.zeros_like(w) if needs[i] else None for w, i in zip(weights, (1, 3), strict=True)
        ]
        d_b = [
            torch.zeros_like(bias) if bias is not None and needs[i] else None
            for bias, i in zip(biases, (2, 4), strict=True)
        ]
        d_w_out = torch.zeros_like(layer.to_out.weight) if needs[5] else None
        norm_params = list(norm.parameters()) if norm is not None else []
        norm_needs = needs[10:]
        # d norm(x) (d x itself without a norm), accumulated over the groups
        d_normed = torch.zeros_like(x) if needs[0] or any(norm_needs) else None
        with replaying(cuda_devices(x), ctx.autocast):
            for (first, stop), state in zip(ctx.groups, ctx.states, strict=True):
                cols = slice(first * layer.d_head, stop * layer.d_head)
                if state is not None:
                    restore_rng(state)
                with torch.no_grad():
                    qk, v = layer._project(x, first, stop, norm)
                qk, v = qk.detach().requires_grad_(), v.detach().requires_grad_()
                with torch.enable_grad():
                    heads = layer._attend_heads(qk, v, ctx.rotations, first, stop, ctx.mask)
                heads2 = heads.reshape(b * l, -1)  # (b l, h d)
                dt = heads2.dtype
                d_heads = (g2.to(dt) @ layer.to_out.weight[:, cols].to(dt)).view_as(heads)
                if d_w_out is not None:
                    d_w_out[:, cols] = (g2.to(dt).t() @ heads2.detach()).to(d_w_out.dtype)
                d_qk, d_v = torch.autograd.grad(heads, (qk, v), d_heads)
                del heads, heads2, d_heads, qk, v
                grads = [d_qk.reshape(b, l, -1), d_v.reshape(b, l, -1)]
                del d_qk, d_v
                # The projections' gradients, slab by slab of positions: their input norm(x)
                # is recomputed per slab.
                for start, piece in _slab_starts(x):
                    end = start + piece.shape[1]
                    with torch.no_grad():
                        normed = (piece if norm is None else norm(piece)).reshape(-1, d_model)
                    for i, grad in enumerate(grads):
                        grad2 = grad[:, start:end].reshape(-1, grad.shape[-1])
                        if d_w[i] is not None:
                            d_w[i][cols] += (grad2.t() @ normed.to(grad2.dtype)).to(d_w[i].dtype)
                        if d_b[i] is not None:
                            d_b[i][cols] += grad2.sum(0).to(d_b[i].dtype)
                        if d_normed is not None:
                            w = weights[i][cols].to(x.dtype)
                            d_normed[:, start:end] += grad[:, start:end].to(x.dtype) @ w
                del grads
            norm_grads: list[torch.Tensor | None] = [None] * len(norm_params)
            wanted = [j for j, need in enumerate(norm_needs) if need]
            if norm is not None and d_normed is not None:
                # d x: the norm's backward, slab by slab, written over d norm(x).
                for start, piece in _slab_starts(x):
                    end = start + piece.shape[1]
                    piece = piece.detach().requires_grad_()
                    with torch.enable_grad():
                        normed = norm(piece)
                    grads = torch.autograd.grad(
                        normed,
                        [piece, *(norm_params[j] for j in wanted)],
                        d_normed[:, start:end],
                        allow_unused=True,
                    )
                    d_normed[:, start:end] = grads[0]
                    for j, grad in zip(wanted, grads[1:], strict=True):
                        if grad is not None:
                            prev = norm_grads[j]
                            norm_grads[j] = grad if prev is None else prev + grad
        d_x = d_normed if needs[0] else None
        return d_x, d_w[0], d_b[0], d_w[1], d_b[1], d_w_out, None, None, None, None, *norm_grads


# Positions per slab of the slab-wise projections: about 4 Mi elements of ``x`` at a time.
_SLAB_ELEMENTS = 1 << 22


def _slab_starts(x: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
    """``(start, x[:, start : start + n])`` over the positions of ``x`` ``(b, l, d)``."""
    b, l, d = x.shape
    n = max(1, _SLAB_ELEMENTS // max(1, b * d))
    return [(start, x[:, start : start + n]) for start in range(0, l, n)]


def get_rng_states(module: nn.Module) -> list[torch.Tensor | None]:
    """States of the rotation generators of every LSH layer in ``module`` (in module order).

    Together with torch's global RNG state (CPU and CUDA) this is all a recompute needs to
    reproduce the rotations and dropout masks of a forward pass.

    Example:
        >>> layer = LSHSelfAttention(8, 2, generator=torch.Generator().manual_seed(0))
        >>> states = get_rng_states(nn.Sequential(layer))
        >>> len(states), states[0].dtype
        (1, torch.uint8)
    """
    return [m.rng_state() for m in module.modules() if isinstance(m, LSHSelfAttention)]


def set_rng_states(module: nn.Module, states: list[torch.Tensor | None]) -> None:
    """Restore states returned by :func:`get_rng_states` for the same ``module``.

    Example:
        >>> net = nn.Sequential(LSHSelfAttention(8, 2, bucket_size=4,
        ...                                      generator=torch.Generator().manual_seed(0)))
        >>> x = torch.randn(1, 16, 8)
        >>> states = get_rng_states(net)
        >>> y1 = net(x)
        >>> set_rng_states(net, states)
        >>> torch.equal(y1, net(x))
        True
    """
    layers = [m for m in module.modules() if isinstance(m, LSHSelfAttention)]
    if len(layers) != len(states):
        raise ValueError(f"got {len(states)} states for {len(layers)} LSH layers")
    for layer, state in zip(layers, states, strict=True):
        layer.set_rng_state(state)
