"""LSH attention a group of heads at a time, forward and backward (``head_chunks > 1``).

For the longest sequences the attention buffers of all heads at once do not fit;
``_HeadGroups`` computes the layer as a sum over groups of heads (heads are independent
up to the output projection) and keeps only the layer's input for the backward pass, which
runs each group again. ``_slab_starts`` cuts the positions into slabs, so the layer
norm's output and the projections' gradients are made a slab at a time.
"""

from __future__ import annotations

import torch

from reformer.recompute import AutocastState, capture_rng, cuda_devices, replaying, restore_rng


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
