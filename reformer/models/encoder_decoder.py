"""The Reformer encoder-decoder (the paper's WMT14 model, Table 4).

Encoder: blocks of (non-causal self-attention, feed-forward). Decoder: blocks of
(:class:`DecoderAttention`, feed-forward), where ``F`` is causal self-attention followed by
cross-attention to the encoder output. Both stacks are reversible by default, and their two
halves are averaged at the end, ``(y1 + y2) / 2`` (the authors' trax ``Reformer``), which keeps
the ``d``-wide output that the tied output projection needs. One embedding matrix serves the
source, the target and the output projection, as in the WMT Transformer setup.

Shape notation: ``b`` batch, ``ls`` source length, ``lt`` target length, ``d`` ``d_model``,
``V`` vocabulary.
"""

from __future__ import annotations

import math
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from reformer.attention import FullCrossAttention, FullSelfAttention
from reformer.feedforward import ChunkedFeedForward
from reformer.models.blocks import PreNorm, layer_stack
from reformer.models.checks import check_model_args, check_tokens
from reformer.models.embeddings import token_embedding
from reformer.models.loss import chunked_cross_entropy
from reformer.positional import FixedPositionalEmbedding

__all__ = ["DecoderAttention", "ReformerEncoderDecoder"]


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
        check_model_args(
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

        # Tied input/output matrix: N(0, 1/d) entries give unit-scale logits from a layer-normed
        # hidden state; the input side multiplies by sqrt(d) (Vaswani et al.).
        self.embedding = token_embedding(vocab_size, d_model, std=d_model**-0.5)
        self.pos_emb = FixedPositionalEmbedding(max_seq_len, d_model)
        self.dropout = nn.Dropout(dropout)

        def ff() -> PreNorm:
            return PreNorm(d_model, ChunkedFeedForward(d_model, d_ff, ff_chunks, dropout), dropout)

        def encoder_attention() -> PreNorm:
            return PreNorm(d_model, FullSelfAttention(d_model, n_heads, dropout=dropout), dropout)

        self.encoder = layer_stack(
            [(encoder_attention(), ff()) for _ in range(n_encoder_layers)], reversible
        )
        self.decoder = layer_stack(
            [(DecoderAttention(d_model, n_heads, dropout), ff()) for _ in range(n_decoder_layers)],
            reversible,
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
        check_tokens("src", src)
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
        check_tokens("tgt_in", tgt_in)
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
