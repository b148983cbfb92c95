"""The chunked window attention of LSH (paper, Section 2, Figure 2, Eq. 3-5 and 16).

After the positions of every round are sorted by bucket and cut into chunks of ``m``
(:func:`~reformer.attention.chunked.lsh_attend`), each chunk's queries attend to the keys
of its own chunk and of the chunk before it. ``_WindowAttention`` does that for all
chunks of all rounds, heads and batch items at once, as one custom autograd function:

- the sorted rows are gathered into one ``(3, (T + 1) m, d)`` buffer (queries, keys,
  values), in which each chunk's key window ``[chunk before, chunk]`` is a strided view;
- the keys are the sorted queries made unit length, ``1/sqrt(d)`` folded in;
- the ``(T, m, w)`` scores are masked (self, bucket, causal, padding) and go through one
  fused softmax; Eq. 16's duplicate correction (``_divide_by_duplicate_counts``) divides
  the weights by ``N_ij`` and renormalises;
- the hand-written backward keeps only the sorted rows and the attention weights.

Nothing of size ``l x l`` is formed: the activation memory is ``O(b h r l (2m + d))``.

Shape notation: ``T = b h r c`` chunks in all, ``m`` chunk length (``bucket_size``),
``w = 2 m`` keys per chunk (``m`` with one chunk per round), ``d`` head dimension.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from reformer.attention.masks import hard_mask_value, self_mask_value

# How many (round, query, key) comparisons the duplicate count makes at once. On the CPU the
# temporaries stay at 16 MiB, small enough for the allocator to reuse between calls.
_COUNT_SLAB = {"cpu": 1 << 24}
_COUNT_SLAB_DEFAULT = 1 << 28


def _subtract_log_duplicate_counts(
    scores: torch.Tensor, q_code: torch.Tensor, k_code: torch.Tensor, n_chunks: int
) -> None:
    """``scores -= log N_ij`` in place: Eq. 16's correction, applied before the softmax.

    ``N_ij`` is the number of rounds ``r'`` with ``code_r'(i) - code_r'(j)`` in {0, 1}. A
    pair in the window of its own round ``rho`` counts there once (same bucket, this chunk
    or the one before; every other pair of the window is masked, whatever its count), so
    ``N = 1 + `` the count over the other ``r - 1`` rounds: the rounds of a chunk are
    compared only with the others, ``(r - 1) / r`` of the comparisons of counting all. The
    count runs in blocks of chunks, the boolean temporaries small (in cache). Subtracting the
    logarithm before the softmax, rather than dividing its weights by ``N`` after it and
    renormalising, saves two passes over the weights; the results differ by float rounding.

    Args:
        scores: ``(T, m, w)`` masked scores, ``T = b h r c`` chunks in (b, h, round, chunk)
            order.
        q_code: ``(r, T, m, 1)`` and k_code: ``(r, T, w)`` from ``chunked._window_codes``.
        n_chunks: chunks per round ``c``.
    """
    r, T, m, _ = q_code.shape
    w, c = k_code.shape[-1], n_chunks
    bh = T // (r * c)
    budget = _COUNT_SLAB.get(scores.device.type, _COUNT_SLAB_DEFAULT)
    per_chunk = (r - 1) * m * w
    # Blocks of whole (batch, head) rows of chunks where they fit, else of chunks of one row.
    rows = max(1, budget // (per_chunk * c))
    span = c if rows > 1 or per_chunk * c <= budget else max(1, budget // per_chunk)
    scratch = torch.empty(min(rows, bh) * span * per_chunk, dtype=torch.bool, device=scores.device)
    counts = torch.empty(2, min(rows, bh), span, m, w, dtype=torch.uint8, device=scores.device)
    log_n = torch.empty(min(rows, bh), span, m, w, dtype=scores.dtype, device=scores.device)
    by_round = scores.view(bh, r, c, m, w)
    q_all, k_all = q_code.view(r, bh, r, c, m, 1), k_code.view(r, bh, r, c, 1, w)
    for rho in range(r):
        others = [x for x in range(r) if x != rho]
        q_rho, k_rho = q_all[:, :, rho][others], k_all[:, :, rho][others]  # (r - 1, bh, c, ...)
        for b0 in range(0, bh, rows):
            b1 = min(b0 + rows, bh)
            for c0 in range(0, c, span):
                c1 = min(c0 + span, c)
                nb, nc = b1 - b0, c1 - c0
                hits = scratch[: nb * nc * per_chunk].view(r - 1, nb, nc, m, w)
                q, k = q_rho[:, b0:b1, c0:c1], k_rho[:, b0:b1, c0:c1]
                for i, offset in enumerate((0, 1)):  # code(j) == code(i) or code(j) + 1 == code(i)
                    torch.eq(q, k + offset if offset else k, out=hits)
                    torch.sum(hits.view(torch.uint8), 0, dtype=torch.uint8, out=counts[i, :nb, :nc])
                total = counts[0, :nb, :nc].add_(counts[1, :nb, :nc]).add_(1)
                by_round[b0:b1, rho, c0:c1].sub_(log_n[:nb, :nc].copy_(total).log_())


class _WindowAttention(torch.autograd.Function):
    """Gather, then softmax attention of each chunk to the chunk before it and itself.

    Inputs: ``qk``, ``v`` ``(N, d)`` with ``N = b l h`` rows (shared query/key, value);
    ``gather_idx`` ``(T m,)`` the row of every sorted slot and ``undo_idx`` ``(r, N)`` the
    slot of every row in every round; ``masked`` ``(T, m or 1, w)`` bool or ``None``; ``codes`` the
    pair from ``chunked._window_codes`` for the duplicate correction, or ``None``. Outputs:
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
            if codes is not None:
                # Eq. 16: a key found in N rounds has log N subtracted from its score.
                _subtract_log_duplicate_counts(p, *codes, n_chunks)
            top = p.amax(dim=-1, keepdim=True)
            # One fused pass instead of max, exp, sum and divide. A masked score (the hard
            # value) lies at least 1e4 below the row's largest score unless every key of the
            # row is masked (the self score is above it), so its weight is exactly 0. In place
            # on the CPU, where it equals the out-of-place result, so the step's peak memory
            # holds one (T, m, w) buffer, not two.
            p = torch.softmax(p, dim=-1, out=p) if p.is_cpu else torch.softmax(p, dim=-1)
            # The largest weight is exp(top - lse), hence the row's log-sum-exp.
            lse = (top - p.amax(dim=-1, keepdim=True).log()).squeeze(-1)  # (T, m)
            # A row with every key masked (a padded query whose own key is padding) gets
            # zero weights, zero output and no gradient.
            empty = top < (self_value + hard) / 2
            if not p.is_cpu or empty.any():  # on a GPU, a fill costs less than a sync
                p.masked_fill_(empty, 0.0)
            p_drop = F.dropout(p, dropout_p) if dropout_p > 0 else p
            out = torch.bmm(p_drop, v_win)  # (T, m, d)
        ctx.save_for_backward(buf, scale, undo_idx, p, p_drop if dropout_p > 0 else None)
        ctx.shape = (T, m, d, w)
        ctx.dtypes = (qk.dtype, v.dtype)
        return out, lse

    @staticmethod
    def backward(ctx, g_out, g_lse):
        buf, scale, undo_idx, p, p_drop = ctx.saved_tensors
        T, m, d, w = ctx.shape
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
                    # (row dots by einsum: a batched matmul, 5x as fast as vecdot here)
                    along = torch.einsum("tmd,tmd->tm", k, dk).unsqueeze(-1).mul_(d)
                    along.masked_fill_(s * d**0.5 >= 1 / _NORM_EPS, 0.0)  # |q| was clamped
                    dk.addcmul_(k, along, value=-1).mul_(s)
                    # ... plus the queries' own gradient, from every key of their window
                    sorted_grad.baddbmm_(ds, k_win)
                # Every round is a permutation of the rows: gather back one round at a time
                # (a source of n rows stays in cache where one of r n rows does not), sum.
                grad = sum_rounds(sorted_grad.view(T * m, d), undo_idx)
                grads.append(grad.to(ctx.dtypes[which - 1]))
        return (*grads, *([None] * 7))


def sum_rounds(
    slots: torch.Tensor, undo_idx: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """``sum_r w_r(i) slots[undo_idx[r, i]]``, ``(n, d)``: every row's slot of each round,
    gathered one round at a time (a source of ``n`` rows stays in cache where one of
    ``r n`` does not), weighted by ``weights`` ``(r, n, 1)`` when given."""
    out = slots.index_select(0, undo_idx[0])
    if weights is not None:
        out.mul_(weights[0])
    rows = torch.empty_like(out)
    for rho in range(1, undo_idx.shape[0]):
        torch.index_select(slots, 0, undo_idx[rho], out=rows)
        if weights is None:
            out.add_(rows)
        else:
            out.addcmul_(rows, weights[rho])
    return out


# The clamp of F.normalize: a query shorter than this is divided by it instead of its length.
_NORM_EPS = 1e-12


def _strided_windows(
    buf: torch.Tensor, T: int, m: int, d: int, w: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Key and value windows ``(T, w, d)`` as overlapping views of the sorted buffer."""
    first = m - (w - m)  # the window of chunk 0 starts in the zero rows when w = 2 m
    shape, strides = (T, w, d), (m * d, d, 1)
    return buf[1, first:].as_strided(shape, strides), buf[2, first:].as_strided(shape, strides)
