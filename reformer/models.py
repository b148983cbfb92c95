"""Language models and the encoder-decoder built from the Reformer's parts.

Shape notation: ``b`` batch, ``l`` sequence length, ``d`` ``d_model``, ``V`` vocabulary.

Layout of every model: token embedding + positional embedding, then ``n_layers`` blocks of
attention (``F``) and feed-forward (``G``), each with its layer norm inside (pre-norm), then a
final layer norm and the output projection.

- Ordinary residual stack (``reversible=False``): ``x = x + F(x)``; ``x = x + G(x)``.
- Reversible stack (``reversible=True``, paper section 3): the embedding is duplicated into
  ``(x1, x2) = (x, x)``, the blocks compute ``y1 = x1 + F(x2)``, ``y2 = x2 + G(y1)`` through
  :class:`~reformer.reversible.ReversibleSequence` (activations recomputed in the backward
  pass), and the two halves are merged at the end. Merging follows the authors' trax code:
  :class:`ReformerLM` concatenates them, ``(b, l, 2d)``, and its final layer norm and output
  projection are ``2d`` wide (trax ``ReformerLM``; also HuggingFace's ``ReformerModelWithLMHead``);
  :class:`ReformerEncoderDecoder` averages them, ``(y1 + y2) / 2`` (trax ``Reformer``), which
  keeps the ``d``-wide output that its tied output projection needs.

The language models' output projection is NOT tied to the token embedding (the paper's and
trax's language models do not tie, and with the concatenated ``2d``-wide output it could not
be). The encoder-decoder ties the source embedding, the target embedding and the output
projection (one matrix), as in the WMT Transformer setup.

In both stacks the parameter names are the same (``layers.blocks.<i>.f.fn.to_qk.weight``,
...), and the attention ``F`` of a block is ``blocks[i].f.fn``, which is what
:meth:`ReformerLM.set_attention` swaps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from reformer.attention import FullCrossAttention, FullSelfAttention, LSHSelfAttention
from reformer.feedforward import ChunkedFeedForward
from reformer.positional import (
    AbsolutePositionalEmbedding,
    AxialPositionalEmbedding,
    FixedPositionalEmbedding,
)
from reformer.reversible import ReversibleSequence

ATTENTIONS = ("lsh", "full")
POSITIONALS = ("absolute", "fixed", "axial")
EMBEDDING_INIT_STD = 0.02


# --------------------------------------------------------------------------- validation


def _check_positive(**values: Any) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}={value!r} is not allowed: must be a positive integer")


def _check_choice(name: str, value: Any, allowed: Sequence[Any]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed: choose one of {list(allowed)}")


def _check_dropout(dropout: float) -> None:
    if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout={dropout!r} is not allowed: must be in [0, 1)")


def _check_model_args(
    *,
    dropout: float,
    choices: dict[str, tuple[Any, Sequence[Any]]] | None = None,
    **sizes: Any,
) -> None:
    """The constructor checks every model shares, in this order, so errors stay the same.

    ``sizes`` (keyword order kept) must be positive integers and include ``d_model`` and
    ``n_heads``; ``choices`` maps a name to ``(value, allowed values)``. Then ``dropout`` must
    be in [0, 1) and ``n_heads`` must divide ``d_model``. Raises a one-line ValueError.
    """
    _check_positive(**sizes)
    for name, (value, allowed) in (choices or {}).items():
        _check_choice(name, value, allowed)
    _check_dropout(dropout)
    d_model, n_heads = sizes["d_model"], sizes["n_heads"]
    if d_model % n_heads != 0:
        raise ValueError(
            f"d_model={d_model} is not allowed with n_heads={n_heads}: "
            "d_model must be a multiple of n_heads"
        )


def _check_tokens(name: str, tokens: Tensor) -> None:
    if tokens.dim() != 2 or tokens.dtype not in (torch.int64, torch.int32):
        raise ValueError(
            f"{name} of shape {tuple(tokens.shape)} and dtype {tokens.dtype} is not allowed: "
            "must be an integer tensor of shape (batch, length)"
        )


# --------------------------------------------------------------------------- building blocks


class PreNorm(nn.Module):
    """``dropout(fn(LayerNorm(x), **kwargs))``: a sub-layer with its layer norm inside.

    This is the ``F`` or ``G`` of a residual or reversible block (the residual sum itself is
    done by the stack). The dropout is the residual dropout of Vaswani et al.

    Args:
        d_model: feature size of ``x``.
        fn: module mapping ``(b, l, d)`` (plus keyword arguments) to ``(b, l, d)``.
        dropout: dropout probability on the output of ``fn``.

    Shapes:
        - ``x``: ``(b, l, d)``; output: ``(b, l, d)``

    Example:
        >>> import torch
        >>> PreNorm(8, torch.nn.Linear(8, 8))(torch.randn(2, 3, 8)).shape
        torch.Size([2, 3, 8])
    """

    def __init__(self, d_model: int, fn: nn.Module, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.fn = fn
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, **kwargs: Any) -> Tensor:
        """Apply ``fn`` to the normalised ``x`` (``(b, l, d)`` -> ``(b, l, d)``)."""
        if getattr(self.fn, "accepts_norm", False):
            # The layer applies the norm itself, where it can avoid holding its output
            # (LSHSelfAttention with head_chunks > 1); the result is the same.
            return self.dropout(self.fn(x, norm=self.norm, **kwargs))
        return self.dropout(self.fn(self.norm(x), **kwargs))


class ResidualBlock(nn.Module):
    """Ordinary residual block ``x = x + F(x)``; ``x = x + G(x)`` (pre-norm Transformer layer).

    Holds ``F`` and ``G`` under the same names (``f``, ``g``) as
    :class:`~reformer.reversible.ReversibleBlock`, so both stacks have the same parameter names.

    Args:
        f: module ``(b, l, d) -> (b, l, d)``, called with the keyword arguments of ``forward``.
        g: module ``(b, l, d) -> (b, l, d)``.

    Example:
        >>> import torch
        >>> ResidualBlock(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))(torch.randn(2, 3, 4)).shape
        torch.Size([2, 3, 4])
    """

    def __init__(self, f: nn.Module, g: nn.Module) -> None:
        super().__init__()
        self.f = f
        self.g = g

    def forward(self, x: Tensor, **f_kwargs: Any) -> Tensor:
        """``(b, l, d) -> (b, l, d)``."""
        x = x + self.f(x, **f_kwargs)
        return x + self.g(x)


class ResidualSequence(nn.Module):
    """A stack of :class:`ResidualBlock` (the non-reversible counterpart of ReversibleSequence).

    Args:
        blocks: ``(F, G)`` pairs of modules.

    Shapes:
        - ``x``: ``(b, l, d)``; output: ``(b, l, d)``

    Example:
        >>> import torch
        >>> seq = ResidualSequence([(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))])
        >>> seq(torch.randn(2, 3, 4)).shape
        torch.Size([2, 3, 4])
    """

    def __init__(self, blocks: Sequence[tuple[nn.Module, nn.Module]]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(ResidualBlock(f, g) for f, g in blocks)

    def forward(self, x: Tensor, **f_kwargs: Any) -> Tensor:
        """Run the blocks in order; ``f_kwargs`` (e.g. ``mask``) go to every ``F``."""
        for block in self.blocks:
            x = block(x, **f_kwargs)
        return x


class DecoderAttention(nn.Module):
    """The ``F`` of a decoder block: causal self-attention, then cross-attention to a context.

    ``F(x) = s + c`` with ``s = SelfAttn(LN(x))`` and ``c = CrossAttn(LN(x + s), context)``,
    so ``x + F(x)`` is exactly the two residual sub-layers of a (pre-norm) Transformer decoder
    layer, and ``F`` can serve as one half of a reversible block. (trax instead alternates three
    reversible half-residuals per decoder layer; both are invertible.)

    Args:
        d_model: model width.
        n_heads: attention heads.
        dropout: attention and residual dropout.

    Shapes:
        - ``x``: ``(b, lt, d)``; ``context``: ``(b, ls, d)``; ``context_mask``: ``(b, ls)``
          bool, True = real token; output: ``(b, lt, d)``

    Example:
        >>> import torch
        >>> DecoderAttention(8, 2)(torch.randn(2, 3, 8), context=torch.randn(2, 5, 8)).shape
        torch.Size([2, 3, 8])
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.self_attn = PreNorm(
            d_model, FullSelfAttention(d_model, n_heads, causal=True, dropout=dropout), dropout
        )
        self.cross_attn = PreNorm(d_model, FullCrossAttention(d_model, n_heads, dropout), dropout)

    def forward(self, x: Tensor, context: Tensor, context_mask: Tensor | None = None) -> Tensor:
        """Return ``F(x)`` of shape ``(b, lt, d)`` (the residual is added by the stack)."""
        s = self.self_attn(x)
        return s + self.cross_attn(x + s, context=context, context_mask=context_mask)


# --------------------------------------------------------------------------- loss


def _chunk_loss(
    head: Callable[[Tensor], Tensor], hidden: Tensor, targets: Tensor, mask: Tensor
) -> Tensor:
    logits = head(hidden)  # (b, c, V)
    targets = targets.masked_fill(~mask, -100)
    return F.cross_entropy(
        logits.flatten(0, 1), targets.flatten(), ignore_index=-100, reduction="sum"
    )


def chunked_cross_entropy(
    hidden: Tensor,
    head: Callable[[Tensor], Tensor],
    targets: Tensor,
    mask: Tensor | None = None,
    chunks: int = 1,
) -> Tensor:
    """Mean cross-entropy of ``head(hidden)`` computed in ``chunks`` slices along the sequence.

    The logits of one slice, ``(b, l / chunks, V)``, are computed, reduced to a summed loss and
    dropped; with gradients enabled (and ``chunks > 1``) each slice runs under activation
    checkpointing, so its logits are recomputed in the backward pass instead of stored. The
    full ``(b, l, V)`` logits never exist at once (paper section 3, chunked log-probabilities).

    Args:
        hidden: ``(b, l, h)`` final hidden states.
        head: maps ``(b, c, h)`` to logits ``(b, c, V)`` (e.g. final norm + projection).
        targets: ``(b, l)`` integer class indices.
        mask: optional ``(b, l)`` bool, True = position counted in the loss.
        chunks: number of slices (``1`` = one ordinary computation).

    Returns:
        Scalar: the sum of the per-position losses over masked positions divided by their
        number (``0`` when no position is masked in).

    Example:
        >>> import torch
        >>> head = torch.nn.Linear(4, 10)
        >>> hidden, targets = torch.randn(2, 6, 4), torch.randint(0, 10, (2, 6))
        >>> full = torch.nn.functional.cross_entropy(head(hidden).flatten(0, 1), targets.flatten())
        >>> torch.allclose(chunked_cross_entropy(hidden, head, targets, chunks=3), full)
        True
    """
    _check_positive(chunks=chunks)
    if mask is None:
        mask = torch.ones(targets.shape, dtype=torch.bool, device=targets.device)
    use_checkpoint = chunks > 1 and torch.is_grad_enabled()
    total: Tensor | float = 0.0
    pieces = zip(
        hidden.chunk(chunks, dim=1),
        targets.chunk(chunks, dim=1),
        mask.chunk(chunks, dim=1),
        strict=True,
    )
    for h, t, m in pieces:
        if use_checkpoint:
            total = total + checkpoint(_chunk_loss, head, h, t, m, use_reentrant=False)
        else:
            total = total + _chunk_loss(head, h, t, m)
    return total / mask.sum().clamp(min=1)


# --------------------------------------------------------------------------- language models


class ReformerLM(nn.Module):
    """Reformer language model: LSH (or full) attention, reversible layers, chunked FF.

    Args:
        vocab_size: number of token ids ``V``.
        d_model: model width ``d``.
        n_layers: number of (attention, feed-forward) blocks.
        n_heads: attention heads (must divide ``d_model``).
        d_ff: feed-forward hidden width.
        max_seq_len: longest sequence (positional table size).
        attention: ``"lsh"`` (paper section 2) or ``"full"`` (scaled dot-product).
        n_hashes: LSH hashing rounds (may be changed later with :meth:`set_attention`).
        bucket_size: LSH bucket/chunk size; ``max_seq_len`` must be a multiple of it, with
            ``max_seq_len / bucket_size`` equal to 1 or even.
        shared_qk: shared query/key projection for full attention (always true for LSH).
        reversible: reversible residual layers (paper section 3) or ordinary residuals.
        ff_chunks: chunks of the feed-forward layer along the sequence.
        positional: ``"absolute"`` (learned), ``"fixed"`` (sinusoidal) or ``"axial"``.
        axial_shape: ``(a, b)`` with ``a * b >= max_seq_len``; needed for ``"axial"``.
        dropout: dropout on embeddings, attention weights, FF hidden and sub-layer outputs.
        causal: causal attention (language modelling).
        attend_across_buckets: LSH: let a query attend to keys of other buckets that share its
            chunk window (reformer-pytorch's and HuggingFace's behaviour; the paper: no).
        allow_duplicate_attention: LSH: skip the Eq. 16 correction for keys found in several
            rounds (the paper: correct).
        loss_chunks: chunks of the output projection + loss in :meth:`loss`.
        axial_dims: ``None`` (summed axial tables) or ``(d1, d2)`` with ``d1 + d2 = d_model``.

    Shapes:
        - ``tokens``: ``(b, l)`` int64, ``l <= max_seq_len`` (for LSH: ``l`` a multiple of
          ``bucket_size`` with ``l / bucket_size`` 1 or even)
        - ``mask``: ``(b, l)`` bool, True = real token (padding mask for the attention)
        - logits: ``(b, l, V)``

    The reversible stack's two halves are concatenated before the final norm, so the final
    norm and the output projection are ``2 * d_model`` wide (see the module docstring).

    Example:
        >>> import torch
        >>> model = ReformerLM(vocab_size=16, d_model=8, n_heads=2, d_ff=16, max_seq_len=16,
        ...                    bucket_size=4, n_hashes=2)
        >>> tokens = torch.randint(0, 16, (2, 16))
        >>> model(tokens).shape
        torch.Size([2, 16, 16])
        >>> model.loss(tokens, targets=tokens.roll(-1, dims=1)).ndim
        0
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 256,
        n_layers: int = 1,
        n_heads: int = 4,
        d_ff: int = 256,
        max_seq_len: int = 1024,
        attention: str = "lsh",
        n_hashes: int = 4,
        bucket_size: int = 64,
        shared_qk: bool = True,
        reversible: bool = True,
        ff_chunks: int = 1,
        positional: str = "absolute",
        axial_shape: tuple[int, int] | None = None,
        dropout: float = 0.0,
        causal: bool = True,
        attend_across_buckets: bool = False,
        allow_duplicate_attention: bool = False,
        loss_chunks: int = 1,
        axial_dims: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        _check_model_args(
            dropout=dropout,
            choices={"attention": (attention, ATTENTIONS), "positional": (positional, POSITIONALS)},
            vocab_size=vocab_size,
            d_model=d_model,
            n_layers=n_layers,
            n_heads=n_heads,
            d_ff=d_ff,
            max_seq_len=max_seq_len,
            n_hashes=n_hashes,
            bucket_size=bucket_size,
            ff_chunks=ff_chunks,
            loss_chunks=loss_chunks,
        )
        if attention == "lsh":
            if not shared_qk:
                raise ValueError(
                    "shared_qk=False is not allowed with attention='lsh': LSH attention "
                    "always shares queries and keys"
                )
            self._check_lsh_length(max_seq_len, bucket_size)
        if positional == "axial":
            if axial_shape is None:
                raise ValueError(
                    "axial_shape=None is not allowed with positional='axial': give (a, b) "
                    f"with a * b >= max_seq_len={max_seq_len}"
                )
            if (
                isinstance(axial_shape, (tuple, list))
                and len(axial_shape) == 2
                and all(isinstance(s, int) for s in axial_shape)
                and axial_shape[0] * axial_shape[1] < max_seq_len
            ):
                raise ValueError(
                    f"axial_shape={tuple(axial_shape)} is not allowed: a * b must be >= "
                    f"max_seq_len={max_seq_len}"
                )
        self.vocab_size = vocab_size
        self.d_model = d_model
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.max_seq_len = max_seq_len
        self.attention = attention
        self.n_hashes = n_hashes
        self.bucket_size = bucket_size
        self.shared_qk = shared_qk or attention == "lsh"
        self.reversible = reversible
        self.causal = causal
        self.dropout_p = dropout
        self.attend_across_buckets = attend_across_buckets
        self.allow_duplicate_attention = allow_duplicate_attention
        self.loss_chunks = loss_chunks

        self.token_emb = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.token_emb.weight, std=EMBEDDING_INIT_STD)
        if positional == "absolute":
            self.pos_emb: nn.Module = AbsolutePositionalEmbedding(max_seq_len, d_model)
        elif positional == "fixed":
            self.pos_emb = FixedPositionalEmbedding(max_seq_len, d_model)
        else:
            self.pos_emb = AxialPositionalEmbedding(d_model, axial_shape, axial_dims)
        self.dropout = nn.Dropout(dropout)
        blocks = [
            (
                PreNorm(d_model, self._make_attention(attention), dropout),
                PreNorm(d_model, ChunkedFeedForward(d_model, d_ff, ff_chunks, dropout), dropout),
            )
            for _ in range(n_layers)
        ]
        self.layers: nn.Module = (
            ReversibleSequence(blocks) if reversible else ResidualSequence(blocks)
        )
        width = 2 * d_model if reversible else d_model
        self.norm = nn.LayerNorm(width)
        self.to_logits = nn.Linear(width, vocab_size)

    @staticmethod
    def _check_lsh_length(length: int, bucket_size: int) -> None:
        n_buckets = length // bucket_size
        if length % bucket_size != 0 or (n_buckets != 1 and n_buckets % 2 != 0):
            raise ValueError(
                f"max_seq_len={length} is not allowed with bucket_size={bucket_size} and "
                "attention='lsh': it must be bucket_size times 1 or an even number"
            )

    def _make_attention(self, attention: str) -> nn.Module:
        if attention == "lsh":
            return LSHSelfAttention(
                self.d_model,
                self.n_heads,
                bucket_size=self.bucket_size,
                n_hashes=self.n_hashes,
                causal=self.causal,
                attend_across_buckets=self.attend_across_buckets,
                allow_duplicate_attention=self.allow_duplicate_attention,
                dropout=self.dropout_p,
            )
        return FullSelfAttention(
            self.d_model,
            self.n_heads,
            causal=self.causal,
            shared_qk=self.shared_qk,
            dropout=self.dropout_p,
        )

    def hidden_states(self, tokens: Tensor, mask: Tensor | None = None) -> Tensor:
        """Run everything up to (not including) the final norm and output projection.

        Args:
            tokens: ``(b, l)`` token ids.
            mask: optional ``(b, l)`` bool padding mask, True = real token.

        Returns:
            ``(b, l, 2d)`` for the reversible stack (the two halves concatenated), else
            ``(b, l, d)``.

        Example:
            >>> import torch
            >>> model = ReformerLM(10, d_model=8, n_heads=2, max_seq_len=8, attention="full")
            >>> model.hidden_states(torch.zeros(1, 8, dtype=torch.long)).shape
            torch.Size([1, 8, 16])
        """
        _check_tokens("tokens", tokens)
        x = self.token_emb(tokens)  # (b, l, d)
        x = self.dropout(x + self.pos_emb(x))
        if self.reversible:
            y1, y2 = self.layers(x, x, mask=mask)
            return torch.cat([y1, y2], dim=-1)  # (b, l, 2d)
        return self.layers(x, mask=mask)

    def head(self, hidden: Tensor) -> Tensor:
        """Final layer norm and output projection: ``(b, l, h)`` -> logits ``(b, l, V)``.

        Example:
            >>> import torch
            >>> model = ReformerLM(10, d_model=8, n_heads=2, max_seq_len=8, attention="full")
            >>> model.head(torch.zeros(1, 3, 16)).shape
            torch.Size([1, 3, 10])
        """
        return self.to_logits(self.norm(hidden))

    def forward(self, tokens: Tensor, mask: Tensor | None = None) -> Tensor:
        """Logits of the next token at every position.

        Args:
            tokens: ``(b, l)`` token ids.
            mask: optional ``(b, l)`` bool padding mask, True = real token.

        Returns:
            ``(b, l, V)`` logits.
        """
        return self.head(self.hidden_states(tokens, mask))

    def log_probs(
        self, tokens: Tensor, mask: Tensor | None = None, chunks: int | None = None
    ) -> Tensor:
        """Log-probabilities computed in ``chunks`` slices (default ``loss_chunks``).

        Args:
            tokens: ``(b, l)`` token ids.
            mask: optional ``(b, l)`` bool padding mask, True = real token.
            chunks: slices along the sequence for the projection + log-softmax.

        Returns:
            ``(b, l, V)`` log-probabilities.

        Example:
            >>> import torch
            >>> model = ReformerLM(10, d_model=8, n_heads=2, max_seq_len=8, attention="full")
            >>> lp = model.log_probs(torch.zeros(1, 8, dtype=torch.long), chunks=2)
            >>> lp.shape, bool(torch.allclose(lp.exp().sum(-1), torch.ones(1, 8)))
            (torch.Size([1, 8, 10]), True)
        """
        chunks = self.loss_chunks if chunks is None else chunks
        _check_positive(chunks=chunks)
        hidden = self.hidden_states(tokens, mask)
        return torch.cat(
            [F.log_softmax(self.head(h), dim=-1) for h in hidden.chunk(chunks, dim=1)], dim=1
        )

    def loss(
        self,
        tokens: Tensor,
        targets: Tensor,
        loss_mask: Tensor | None = None,
        mask: Tensor | None = None,
    ) -> Tensor:
        """Mean cross-entropy over positions where ``loss_mask`` is True.

        The projection + loss run in ``loss_chunks`` slices (see
        :func:`chunked_cross_entropy`), so the full logits are never held when
        ``loss_chunks > 1``.

        Args:
            tokens: ``(b, l)`` input token ids.
            targets: ``(b, l)`` target ids (usually the inputs shifted by one).
            loss_mask: optional ``(b, l)`` bool, True = position counted.
            mask: optional ``(b, l)`` bool attention padding mask, True = real token.

        Returns:
            Scalar loss (nats per counted position).
        """
        _check_tokens("targets", targets)
        if targets.shape != tokens.shape:
            raise ValueError(
                f"targets of shape {tuple(targets.shape)} is not allowed: must match tokens "
                f"{tuple(tokens.shape)}"
            )
        hidden = self.hidden_states(tokens, mask)
        return chunked_cross_entropy(hidden, self.head, targets, loss_mask, self.loss_chunks)

    def set_attention(self, attention: str, n_hashes: int | None = None) -> ReformerLM:
        """Swap the attention of every layer in place, keeping the weights.

        Full shared-QK attention and LSH attention have the same parameters (``to_qk``,
        ``to_v``, ``to_out``), so a model trained with one can be evaluated with the other
        (the paper's Table 2). The new modules keep device, dtype and train/eval mode.

        Args:
            attention: ``"lsh"`` or ``"full"``.
            n_hashes: new number of LSH rounds (kept for a later switch when ``"full"``).

        Returns:
            ``self``.

        Example:
            >>> model = ReformerLM(10, d_model=8, n_heads=2, max_seq_len=8, bucket_size=4)
            >>> type(model.set_attention("full").layers.blocks[0].f.fn).__name__
            'FullSelfAttention'
            >>> model.set_attention("lsh", n_hashes=8).layers.blocks[0].f.fn.n_hashes
            8
        """
        _check_choice("attention", attention, ATTENTIONS)
        if n_hashes is not None:
            _check_positive(n_hashes=n_hashes)
        if attention == "lsh":
            if not self.shared_qk:
                raise ValueError(
                    "attention='lsh' is not allowed for a model built with shared_qk=False: "
                    "LSH attention needs shared queries and keys"
                )
            self._check_lsh_length(self.max_seq_len, self.bucket_size)
        if n_hashes is not None:
            self.n_hashes = n_hashes
        for block in self.layers.blocks:
            old = block.f.fn
            if attention == self.attention:
                if attention == "lsh":
                    old.n_hashes = self.n_hashes
                continue
            new = self._make_attention(attention)
            reference = next(old.parameters())
            new.to(device=reference.device, dtype=reference.dtype)
            new.load_state_dict(old.state_dict())
            new.train(old.training)
            block.f.fn = new
        self.attention = attention
        return self


class TransformerLM(ReformerLM):
    """The baseline Transformer language model: full attention, ordinary residual layers.

    A :class:`ReformerLM` with ``attention="full"`` and ``reversible=False``; the other
    arguments mean the same. With ``shared_qk=True`` it can be switched to LSH attention by
    :meth:`ReformerLM.set_attention` (using ``bucket_size`` and ``n_hashes``).

    Shapes:
        - ``tokens``: ``(b, l)``; logits: ``(b, l, V)``

    Example:
        >>> import torch
        >>> model = TransformerLM(vocab_size=16, d_model=8, n_layers=2, n_heads=2, d_ff=16,
        ...                       max_seq_len=12)
        >>> model(torch.randint(0, 16, (3, 12))).shape
        torch.Size([3, 12, 16])
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 256,
        n_layers: int = 1,
        n_heads: int = 4,
        d_ff: int = 256,
        max_seq_len: int = 1024,
        shared_qk: bool = False,
        positional: str = "absolute",
        axial_shape: tuple[int, int] | None = None,
        dropout: float = 0.0,
        causal: bool = True,
        ff_chunks: int = 1,
        loss_chunks: int = 1,
        n_hashes: int = 4,
        bucket_size: int = 64,
        axial_dims: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(
            vocab_size,
            d_model=d_model,
            n_layers=n_layers,
            n_heads=n_heads,
            d_ff=d_ff,
            max_seq_len=max_seq_len,
            attention="full",
            n_hashes=n_hashes,
            bucket_size=bucket_size,
            shared_qk=shared_qk,
            reversible=False,
            ff_chunks=ff_chunks,
            positional=positional,
            axial_shape=axial_shape,
            dropout=dropout,
            causal=causal,
            loss_chunks=loss_chunks,
            axial_dims=axial_dims,
        )


# --------------------------------------------------------------------------- encoder-decoder


class ReformerEncoderDecoder(nn.Module):
    """Reversible Transformer encoder-decoder (the paper's WMT14 model; full attention).

    Encoder: ``n_encoder_layers`` blocks of (non-causal self-attention, feed-forward).
    Decoder: ``n_decoder_layers`` blocks of (:class:`DecoderAttention` = causal self-attention
    then cross-attention to the encoder output, feed-forward). Both stacks are reversible by
    default; their two halves are averaged at the end (trax). One embedding matrix serves the
    source, the target and the output projection; inputs are scaled by ``sqrt(d_model)`` and
    get sinusoidal positions.

    Padding: source positions equal to ``pad_id`` are masked out of encoder self-attention and
    cross-attention. Target padding is expected on the right, where causal attention already
    keeps it away from real positions; exclude it from the loss with ``loss_mask``.

    Args:
        vocab_size: shared vocabulary size ``V``.
        d_model: model width ``d``.
        n_encoder_layers: encoder blocks.
        n_decoder_layers: decoder blocks.
        n_heads: attention heads.
        d_ff: feed-forward hidden width.
        max_seq_len: longest source or target sequence.
        dropout: dropout probability everywhere.
        reversible: reversible (paper) or ordinary residual stacks.
        pad_id: padding token id.
        ff_chunks: feed-forward chunks along the sequence.
        loss_chunks: chunks of the output projection + loss in :meth:`loss`.

    Shapes:
        - ``src``: ``(b, ls)``; ``tgt_in``: ``(b, lt)``; ``src_mask``: ``(b, ls)`` bool
        - logits: ``(b, lt, V)``

    Example:
        >>> import torch
        >>> model = ReformerEncoderDecoder(vocab_size=20, d_model=8, n_heads=2, d_ff=16,
        ...                                max_seq_len=10)
        >>> src, tgt = torch.randint(1, 20, (2, 7)), torch.randint(1, 20, (2, 5))
        >>> model(src, tgt).shape
        torch.Size([2, 5, 20])
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 256,
        n_encoder_layers: int = 1,
        n_decoder_layers: int = 1,
        n_heads: int = 4,
        d_ff: int = 256,
        max_seq_len: int = 1024,
        dropout: float = 0.0,
        reversible: bool = True,
        pad_id: int = 0,
        ff_chunks: int = 1,
        loss_chunks: int = 1,
    ) -> None:
        super().__init__()
        _check_model_args(
            dropout=dropout,
            vocab_size=vocab_size,
            d_model=d_model,
            n_encoder_layers=n_encoder_layers,
            n_decoder_layers=n_decoder_layers,
            n_heads=n_heads,
            d_ff=d_ff,
            max_seq_len=max_seq_len,
            ff_chunks=ff_chunks,
            loss_chunks=loss_chunks,
        )
        if not isinstance(pad_id, int) or not 0 <= pad_id < vocab_size:
            raise ValueError(
                f"pad_id={pad_id!r} is not allowed: must be a token id in [0, {vocab_size})"
            )
        self.vocab_size = vocab_size
        self.d_model = d_model
        self.max_seq_len = max_seq_len
        self.reversible = reversible
        self.pad_id = pad_id
        self.loss_chunks = loss_chunks

        self.embedding = nn.Embedding(vocab_size, d_model)
        # Tied input/output matrix: N(0, 1/d) entries give unit-scale logits from a layer-normed
        # hidden state; the input side multiplies by sqrt(d) (Vaswani et al.).
        nn.init.normal_(self.embedding.weight, std=d_model**-0.5)
        self.pos_emb = FixedPositionalEmbedding(max_seq_len, d_model)
        self.dropout = nn.Dropout(dropout)

        def ff() -> PreNorm:
            return PreNorm(d_model, ChunkedFeedForward(d_model, d_ff, ff_chunks, dropout), dropout)

        stack = ReversibleSequence if reversible else ResidualSequence

        def encoder_attention() -> PreNorm:
            return PreNorm(d_model, FullSelfAttention(d_model, n_heads, dropout=dropout), dropout)

        self.encoder = stack([(encoder_attention(), ff()) for _ in range(n_encoder_layers)])
        self.decoder = stack(
            [(DecoderAttention(d_model, n_heads, dropout), ff()) for _ in range(n_decoder_layers)]
        )
        self.encoder_norm = nn.LayerNorm(d_model)
        self.decoder_norm = nn.LayerNorm(d_model)

    def _embed(self, tokens: Tensor) -> Tensor:
        x = self.embedding(tokens) * math.sqrt(self.d_model)  # (b, l, d)
        return self.dropout(x + self.pos_emb(x))

    def _run(self, stack: nn.Module, x: Tensor, **kwargs: Any) -> Tensor:
        if self.reversible:
            y1, y2 = stack(x, x, **kwargs)
            return (y1 + y2) / 2
        return stack(x, **kwargs)

    def encode(self, src: Tensor, src_mask: Tensor | None = None) -> Tensor:
        """Encode the source.

        Args:
            src: ``(b, ls)`` source token ids.
            src_mask: optional ``(b, ls)`` bool, True = real token (default ``src != pad_id``).

        Returns:
            ``(b, ls, d)`` encoder output (after the final encoder layer norm).

        Example:
            >>> import torch
            >>> model = ReformerEncoderDecoder(20, d_model=8, n_heads=2, max_seq_len=10)
            >>> model.encode(torch.randint(1, 20, (2, 7))).shape
            torch.Size([2, 7, 8])
        """
        _check_tokens("src", src)
        if src_mask is None:
            src_mask = src != self.pad_id
        return self.encoder_norm(self._run(self.encoder, self._embed(src), mask=src_mask))

    def decode(self, tgt_in: Tensor, memory: Tensor, src_mask: Tensor) -> Tensor:
        """Decoder logits given the encoder output (teacher forcing).

        Args:
            tgt_in: ``(b, lt)`` decoder input ids (the target shifted right).
            memory: ``(b, ls, d)`` output of :meth:`encode`.
            src_mask: ``(b, ls)`` bool, True = real source token.

        Returns:
            ``(b, lt, V)`` logits.

        Example:
            >>> import torch
            >>> model = ReformerEncoderDecoder(20, d_model=8, n_heads=2, max_seq_len=10)
            >>> src = torch.randint(1, 20, (2, 7))
            >>> model.decode(torch.randint(1, 20, (2, 4)), model.encode(src), src != 0).shape
            torch.Size([2, 4, 20])
        """
        return self._project(self._decode_hidden(tgt_in, memory, src_mask))

    def _decode_hidden(self, tgt_in: Tensor, memory: Tensor, src_mask: Tensor) -> Tensor:
        _check_tokens("tgt_in", tgt_in)
        x = self._embed(tgt_in)
        return self._run(self.decoder, x, context=memory, context_mask=src_mask)

    def _project(self, hidden: Tensor) -> Tensor:
        return F.linear(self.decoder_norm(hidden), self.embedding.weight)  # tied output

    def forward(self, src: Tensor, tgt_in: Tensor, src_mask: Tensor | None = None) -> Tensor:
        """Teacher-forced logits.

        Args:
            src: ``(b, ls)`` source ids.
            tgt_in: ``(b, lt)`` decoder input ids.
            src_mask: optional ``(b, ls)`` bool (default ``src != pad_id``).

        Returns:
            ``(b, lt, V)`` logits.
        """
        if src_mask is None:
            src_mask = src != self.pad_id
        return self.decode(tgt_in, self.encode(src, src_mask), src_mask)

    def loss(
        self,
        src: Tensor,
        tgt_in: Tensor,
        tgt_out: Tensor,
        loss_mask: Tensor | None = None,
        src_mask: Tensor | None = None,
    ) -> Tensor:
        """Mean cross-entropy of ``tgt_out`` (default mask: ``tgt_out != pad_id``).

        Args:
            src: ``(b, ls)`` source ids.
            tgt_in: ``(b, lt)`` decoder input ids.
            tgt_out: ``(b, lt)`` decoder target ids.
            loss_mask: optional ``(b, lt)`` bool, True = counted.
            src_mask: optional ``(b, ls)`` bool (default ``src != pad_id``).

        Returns:
            Scalar loss.

        Example:
            >>> import torch
            >>> model = ReformerEncoderDecoder(20, d_model=8, n_heads=2, max_seq_len=10)
            >>> src, tgt = torch.randint(1, 20, (2, 7)), torch.randint(1, 20, (2, 6))
            >>> model.loss(src, tgt[:, :-1], tgt[:, 1:]).ndim
            0
        """
        if src_mask is None:
            src_mask = src != self.pad_id
        if loss_mask is None:
            loss_mask = tgt_out != self.pad_id
        hidden = self._decode_hidden(tgt_in, self.encode(src, src_mask), src_mask)
        return chunked_cross_entropy(hidden, self._project, tgt_out, loss_mask, self.loss_chunks)
