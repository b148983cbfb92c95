"""Reversible residual layers (paper, section 3) with a custom autograd backward.

A reversible block splits the activations into two halves and computes

    Y1 = X1 + F(X2)
    Y2 = X2 + G(Y1)

(in the Reformer, ``F`` is attention and ``G`` the feed-forward layer, each with its layer norm
inside). The inputs can be recovered from the outputs,

    X2 = Y2 - G(Y1)
    X1 = Y1 - F(X2),

so a stack of such blocks need not keep any intermediate activation for the backward pass:
:class:`ReversibleSequence` runs each block as a :class:`torch.autograd.Function` whose forward
runs without recording a graph and keeps no activation; only the stack's final outputs are
held. The backward walks the blocks from the last to the first: each reconstructs its inputs
from its outputs, re-runs ``F`` and ``G`` with gradients enabled, gets the gradients with
:func:`torch.autograd.grad`, and hands the reconstructed inputs to the block below. Activation
memory therefore does not grow with depth. (One node per block, not one for the stack, lets
autograd free each block's incoming gradients when the block is done.)

Two details make the recomputation exact:

- Random state. The random state (CPU, the CUDA device of the input, and any
  :class:`torch.Generator` held as a ``generator`` attribute by a sub-module, e.g. LSH
  attention's hashing generator) is recorded before every call of ``F`` and ``G`` and restored
  before the matching recomputation, so dropout masks and LSH random rotations are the same in
  both passes (trax does the same by keeping the hash seed). The recomputation runs inside
  :func:`torch.random.fork_rng`, so the backward pass leaves the random streams untouched.
- Parameters. All trainable parameters of a block are passed *into* its Function as inputs
  and their gradients are returned by its backward, instead of being accumulated into
  ``param.grad`` behind autograd's back. Autograd then delivers them through the ordinary
  ``AccumulateGrad`` nodes, which is what DistributedDataParallel hooks into.

Autocast is captured in the forward pass and re-entered for the recomputation.

The reconstructed inputs equal the forward's inputs only up to floating point round-off
(``(x + g) - g`` need not be exactly ``x``), so in low precision a hash that sits exactly on a
tie between two buckets could in principle land differently in the recomputation; trax has the
same property. In float64 the gradients match ordinary residual code to ~1e-15 (see
``tests/reformer/test_reversible.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from reformer.memory import count_held
from reformer.recompute import (
    AutocastState,
    capture_rng,
    cuda_devices,
    module_generators,
    replaying,
    restore_rng,
)


class ReversibleBlock(nn.Module):
    """One reversible residual block ``Y1 = X1 + F(X2)``, ``Y2 = X2 + G(Y1)``.

    Args:
        f: module mapping ``(batch, length, d)`` to ``(batch, length, d)``; receives the extra
            keyword arguments of :meth:`forward` (e.g. an attention ``mask``).
        g: module mapping ``(batch, length, d)`` to ``(batch, length, d)``; called with the
            activations only.

    Shapes:
        - ``x1``, ``x2``, ``y1``, ``y2``: ``(batch, length, d)``

    Calling the block runs it as ordinary autograd code (activations are stored); use
    :class:`ReversibleSequence` to get the memory saving.

    Example:
        >>> import torch
        >>> block = ReversibleBlock(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))
        >>> x1, x2 = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
        >>> y1, y2 = block(x1, x2)
        >>> r1, r2 = block.inverse(y1, y2)
        >>> torch.allclose(r1, x1, atol=1e-5) and torch.allclose(r2, x2, atol=1e-5)
        True
    """

    def __init__(self, f: nn.Module, g: nn.Module) -> None:
        super().__init__()
        self.f = f
        self.g = g
        # The backward rebuilds X1 in the storage of the recomputed F(X2); cleared by itself
        # for an F whose last operation saves its output for backward.
        self.reuse_f_output = True

    def forward(self, x1: Tensor, x2: Tensor, **f_kwargs: Any) -> tuple[Tensor, Tensor]:
        """Return ``(Y1, Y2) = (X1 + F(X2), X2 + G(Y1))``, each ``(batch, length, d)``."""
        y1 = x1 + self.f(x2, **f_kwargs)
        y2 = x2 + self.g(y1)
        return y1, y2

    def inverse(self, y1: Tensor, y2: Tensor, **f_kwargs: Any) -> tuple[Tensor, Tensor]:
        """Return the inputs ``(X1, X2) = (Y1 - F(X2), Y2 - G(Y1))`` from the outputs."""
        x2 = y2 - self.g(y1)
        x1 = y1 - self.f(x2, **f_kwargs)
        return x1, x2


class _Outputs:
    """A block's outputs ``(Y1, Y2)`` for its backward, handed down the stack.

    The top block's are held from the forward pass (detached aliases, with their version
    counters to catch an in-place change before backward); every other block's are the
    inputs that the block above reconstructs in its backward. Holding them here rather than
    in ``save_for_backward`` lets a backward drop them as soon as it has rebuilt its inputs.
    """

    def __init__(self) -> None:
        self.tensors: tuple[Tensor, Tensor] | None = None
        self.versions: tuple[int, int] | None = None

    def hold(self, y1: Tensor, y2: Tensor) -> None:
        self.tensors = (y1.detach(), y2.detach())
        self.versions = (y1._version, y2._version)
        count_held(*self.tensors)

    def take(self) -> tuple[Tensor, Tensor]:
        if self.tensors is None:
            raise RuntimeError(
                "ReversibleSequence: backward ran twice through the same forward; pass "
                "retain_graph=True to the first backward to keep its outputs"
            )
        y1, y2 = self.tensors
        if self.versions is not None and (y1._version, y2._version) != self.versions:
            raise RuntimeError(
                "ReversibleSequence: an output was modified in place before backward, so the "
                "inputs of the blocks cannot be reconstructed; clone the outputs first"
            )
        if not _graph_is_retained():
            self.tensors = None  # the caller's locals are the last references
        return y1, y2


class _ReversibleBlockFunction(torch.autograd.Function):
    """One :class:`ReversibleBlock` as one autograd node that keeps no activation.

    ``apply(x1, x2, block, outputs, below, plain_kwargs, tensor_names, param_index,
    *tensor_values, *params)``, ``param_index = (f_indices, g_indices)`` into ``params``.
    ``outputs`` receives this block's ``(Y1, Y2)`` (from the forward for the top block, from
    the block above otherwise); the backward puts the reconstructed ``(X1, X2)`` into
    ``below``, the ``outputs`` of the block underneath (``None`` for the first block).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x1: Tensor,
        x2: Tensor,
        block: ReversibleBlock,
        outputs: _Outputs,
        below: _Outputs | None,
        plain_kwargs: dict[str, Any],
        tensor_names: tuple[str, ...],
        param_index: tuple[list[int], list[int]],
        *tensors: Tensor,
    ) -> tuple[Tensor, Tensor]:
        n_kw = len(tensor_names)
        kwargs = {**plain_kwargs, **dict(zip(tensor_names, tensors[:n_kw], strict=True))}
        devices = cuda_devices(x1)
        generators = module_generators([block])
        ctx.autocast = AutocastState.capture(x1.device.type)
        f_state = capture_rng(devices, generators)
        y1 = x1 + block.f(x2, **kwargs)
        g_state = capture_rng(devices, generators)
        y2 = x2 + block.g(y1)
        ctx.block, ctx.outputs, ctx.below = block, outputs, below
        ctx.states, ctx.devices, ctx.generators = (f_state, g_state), devices, generators
        ctx.plain_kwargs, ctx.tensor_names = plain_kwargs, tensor_names
        ctx.param_index = param_index
        ctx.params = tensors[n_kw:]
        # The tensor keyword arguments (a padding mask, an encoder output for cross-attention)
        # exist anyway; no activation is saved.
        ctx.save_for_backward(*tensors[:n_kw])
        return y1, y2

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dy1: Tensor | None, dy2: Tensor | None) -> tuple[Tensor | None, ...]:
        block = ctx.block
        y1, y2 = ctx.outputs.take()
        kw_values = ctx.saved_tensors
        n_kw = len(ctx.tensor_names)
        kw_needs_grad = ctx.needs_input_grad[8 : 8 + n_kw]
        kw_inputs = [
            v.detach().requires_grad_(True) if need else v
            for v, need in zip(kw_values, kw_needs_grad, strict=True)
        ]
        kwargs = {**ctx.plain_kwargs, **dict(zip(ctx.tensor_names, kw_inputs, strict=True))}
        kw_grad_inputs = [v for v, need in zip(kw_inputs, kw_needs_grad, strict=True) if need]
        params = ctx.params
        f_index, g_index = ctx.param_index
        f_params, g_params = [params[i] for i in f_index], [params[i] for i in g_index]
        dy1 = dy1 if dy1 is not None else torch.zeros_like(y1)
        dy2 = dy2 if dy2 is not None else torch.zeros_like(y2)
        f_state, g_state = ctx.states
        # fork_rng covers the global streams only; explicit generators are put back by hand.
        generator_states = [(g, g.get_state()) for g in ctx.generators]
        with replaying(ctx.devices, ctx.autocast):
            # G: Y2 = X2 + G(Y1)  ->  X2 = Y2 - G(Y1); dL/dY1 += (dG/dY1)^T dL/dY2.
            y1 = y1.detach().requires_grad_(True)
            restore_rng(g_state)
            with torch.enable_grad():
                g_out = block.g(y1)
            grads = torch.autograd.grad(g_out, [y1, *g_params], dy2, allow_unused=True)
            dx1 = dy1 if grads[0] is None else dy1 + grads[0]
            param_grads: list[Tensor | None] = [None] * len(params)
            _accumulate(param_grads, g_index, grads[1:])
            with torch.no_grad():
                x2 = y2 - g_out
            del y2, g_out, grads, dy1
            # F: Y1 = X1 + F(X2)  ->  X1 = Y1 - F(X2); dL/dX2 = dL/dY2 + (dF/dX2)^T dL/dY1.
            x2 = x2.detach().requires_grad_(True)
            restore_rng(f_state)
            with torch.enable_grad():
                f_out = block.f(x2, **kwargs)
            inputs = [x2, *f_params, *kw_grad_inputs]
            # X1 is written over F's output before F's backward (F's graph does not need its
            # own output unless its last operation saved it), so Y1 and F(X2) are not both
            # held through that backward.
            reuse = block.reuse_f_output and _owns_storage(f_out, y1, [x2, *kw_inputs])
            with torch.no_grad():
                x1 = f_out.neg_().add_(y1) if reuse else y1 - f_out
            del y1
            try:
                grads = torch.autograd.grad(f_out, inputs, dx1, allow_unused=True)
            except RuntimeError as error:
                if not reuse or "inplace operation" not in str(error):
                    raise
                # F's last operation keeps its output for backward (e.g. tanh): run F again,
                # without reusing its output, here and for this block from now on.
                block.reuse_f_output = False
                restore_rng(f_state)
                with torch.enable_grad():
                    f_out = block.f(x2, **kwargs)
                grads = torch.autograd.grad(f_out, inputs, dx1, allow_unused=True)
            del f_out
            dx2 = dy2 if grads[0] is None else dy2 + grads[0]
            _accumulate(param_grads, f_index, grads[1 : 1 + len(f_params)])
            kw_grads = list(grads[1 + len(f_params) :])
            del grads
        for gen, state in generator_states:
            gen.set_state(state)
        if ctx.below is not None:
            ctx.below.tensors, ctx.below.versions = (x1, x2.detach()), None
        del x1, x2
        kw_out = [kw_grads.pop(0) if need else None for need in kw_needs_grad]
        return (dx1, dx2, *([None] * 6), *kw_out, *param_grads)


def _trainable(
    f: nn.Module, g: nn.Module
) -> tuple[list[nn.Parameter], tuple[list[int], list[int]]]:
    """The trainable parameters of a block (one shared by ``F`` and ``G`` listed once) and
    the indices of ``F``'s and of ``G``'s among them."""
    params: list[nn.Parameter] = []
    position: dict[int, int] = {}

    def index_of(module: nn.Module) -> list[int]:
        out = []
        for p in module.parameters():
            if p.requires_grad:
                if id(p) not in position:
                    position[id(p)] = len(params)
                    params.append(p)
                out.append(position[id(p)])
        return out

    return params, (index_of(f), index_of(g))


def _accumulate(store: list[Tensor | None], index: Sequence[int], grads: Sequence) -> None:
    for i, grad in zip(index, grads, strict=True):
        if grad is not None:
            store[i] = grad if store[i] is None else store[i] + grad


def _graph_is_retained() -> bool:
    """Whether the running backward was asked to keep the graph (``retain_graph=True``)."""
    try:
        return bool(torch._C._autograd._get_current_graph_task_keep_graph())
    except (AttributeError, RuntimeError):  # an older torch: keep the outputs to be safe
        return True


def _owns_storage(f_out: Tensor, like: Tensor, inputs: Sequence[Tensor]) -> bool:
    """Whether ``f_out`` is a fresh tensor that may be overwritten: computed (not a view, not
    an input), with the shape and dtype of ``like``."""
    return (
        f_out.grad_fn is not None
        and f_out._base is None
        and f_out.shape == like.shape
        and f_out.dtype == like.dtype
        and all(
            f_out.untyped_storage().data_ptr() != t.untyped_storage().data_ptr() for t in inputs
        )
    )


class ReversibleSequence(nn.Module):
    """A stack of reversible blocks whose activations are recomputed in the backward pass.

    Block ``k`` computes ``Y1 = X1 + F_k(X2)``, ``Y2 = X2 + G_k(Y1)``; the outputs of one block
    are the inputs of the next. When gradients are recorded, the stack runs as one custom
    autograd function that stores only the final ``(Y1, Y2)``; memory for activations is then
    independent of the number of blocks. Gradients w.r.t. the inputs, the parameters of every
    ``F`` and ``G``, and tensor keyword arguments (e.g. an encoder output used by
    cross-attention) are exact up to floating point round-off in the reconstruction.

    Args:
        blocks: ``(F, G)`` pairs of modules (or ready :class:`ReversibleBlock` objects). ``F``
            is called as ``F(x, **kwargs)`` with the keyword arguments given to
            :meth:`forward`; ``G`` as ``G(x)``.

    Shapes:
        - ``x1``, ``x2``: ``(batch, length, d)``
        - output: a tuple ``(y1, y2)`` of ``(batch, length, d)``

    Example:
        >>> import torch
        >>> seq = ReversibleSequence([(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))] * 3)
        >>> x = torch.randn(2, 5, 4, requires_grad=True)
        >>> y1, y2 = seq(x, x)
        >>> (y1.sum() + y2.sum()).backward()
        >>> x.grad.shape
        torch.Size([2, 5, 4])
    """

    def __init__(self, blocks: Sequence[tuple[nn.Module, nn.Module] | ReversibleBlock]) -> None:
        super().__init__()
        built = []
        for i, block in enumerate(blocks):
            if isinstance(block, ReversibleBlock):
                built.append(block)
            elif isinstance(block, (tuple, list)) and len(block) == 2:
                built.append(ReversibleBlock(*block))
            else:
                raise ValueError(
                    f"blocks[{i}]={type(block).__name__} is not allowed: "
                    "must be an (F, G) pair of modules or a ReversibleBlock"
                )
        self.blocks = nn.ModuleList(built)

    def forward(self, x1: Tensor, x2: Tensor, **f_kwargs: Any) -> tuple[Tensor, Tensor]:
        """Run all blocks.

        Args:
            x1: ``(batch, length, d)``, first half of the activations.
            x2: ``(batch, length, d)``, second half (often the same tensor as ``x1``).
            **f_kwargs: passed to every ``F`` (e.g. ``mask`` of shape ``(batch, length)``).

        Returns:
            ``(y1, y2)``, each ``(batch, length, d)``.
        """
        if len(self.blocks) == 0:
            return x1, x2
        tensor_names = tuple(k for k, v in f_kwargs.items() if isinstance(v, Tensor))
        tensor_values = [f_kwargs[k] for k in tensor_names]
        params = [_trainable(b.f, b.g) for b in self.blocks]
        needs_grad = (
            x1.requires_grad
            or x2.requires_grad
            or any(block_params for block_params, _ in params)
            or any(v.requires_grad for v in tensor_values)
        )
        if not (torch.is_grad_enabled() and needs_grad):
            for block in self.blocks:
                x1, x2 = block(x1, x2, **f_kwargs)
            return x1, x2
        plain_kwargs = {k: v for k, v in f_kwargs.items() if k not in tensor_names}
        outputs = [_Outputs() for _ in self.blocks]
        for k, (block, (block_params, index)) in enumerate(zip(self.blocks, params, strict=True)):
            x1, x2 = _ReversibleBlockFunction.apply(
                x1,
                x2,
                block,
                outputs[k],
                outputs[k - 1] if k > 0 else None,
                plain_kwargs,
                tensor_names,
                index,
                *tensor_values,
                *block_params,
            )
        outputs[-1].hold(x1, x2)
        return x1, x2
