"""The decoder-only language model that :class:`~reformer.models.reformer_lm.ReformerLM` and
:class:`~reformer.models.transformer_lm.TransformerLM` share.

Shape notation: ``b`` batch, ``l`` sequence length, ``d`` ``d_model``, ``V`` vocabulary.

Layout: token embedding + positional embedding, then ``n_layers`` blocks of attention (``F``)
and feed-forward (``G``), each pre-norm, then a final layer norm and the output projection.

- Ordinary residual stack (``reversible=False``): ``x = x + F(x)``; ``x = x + G(x)``.
- Reversible stack (``reversible=True``, paper section 3): the embedding is duplicated into
  ``(x1, x2) = (x, x)``, the blocks compute ``y1 = x1 + F(x2)``, ``y2 = x2 + G(y1)`` through
  :class:`~reformer.reversible.ReversibleSequence` (activations recomputed in the backward
  pass), and the two halves are concatenated at the end, ``(b, l, 2d)``, so the final layer
  norm and the output projection are ``2d`` wide (the authors' trax ``ReformerLM``; also
  HuggingFace's ``ReformerModelWithLMHead``).

The output projection is NOT tied to the token embedding (the paper's and trax's models do
not tie; the ``2d``-wide reversible output could not be). Both stacks name the parameters
alike (``layers.blocks.<i>.f.fn.to_qk.weight``, ...); a block's attention ``F`` is
``blocks[i].f.fn``, which :meth:`LanguageModel.set_attention` swaps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reformer.attention import BUCKET_RULES, FullSelfAttention, LSHSelfAttention
from reformer.feedforward import ChunkedFeedForward
from reformer.models.blocks import PreNorm, layer_stack
from reformer.models.checks import (
    check_choice,
    check_lsh_length,
    check_model_args,
    check_positive,
    check_tokens,
)
from reformer.models.embeddings import (
    POSITIONALS,
    check_positional,
    positional_embedding,
    token_embedding,
)
from reformer.models.loss import chunked_cross_entropy

__all__ = ["ATTENTIONS", "LanguageModel"]

ATTENTIONS = ("lsh", "full")
"""The ``attention`` values: LSH (paper section 2) or full scaled dot-product."""


class LanguageModel(nn.Module):
    """A language model: embeddings, a stack of (attention, feed-forward) blocks, the head.

    The common body of :class:`~reformer.models.reformer_lm.ReformerLM` and
    :class:`~reformer.models.transformer_lm.TransformerLM`: the constructor (the checks of
    the arguments and the modules, with the paper's defaults, which ``ReformerLM`` keeps and
    ``TransformerLM`` narrows to full attention and the ordinary residual stack) and the
    methods (see the module docstring for the layout).

    Shapes:
        - ``tokens``: ``(b, l)`` int64; ``mask``: ``(b, l)`` bool, True = real token
        - logits: ``(b, l, V)``
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
        bucket_rule: str = "paper",
        unit_keys: bool = True,
    ) -> None:
        """Check the arguments, record the settings and make the modules (the arguments and
        defaults, the paper's, are :class:`~reformer.models.reformer_lm.ReformerLM`'s).

        Each bad value gives a one-line ValueError, checked in a fixed order (sizes, choices,
        dropout, heads, LSH length, positional table). The modules are made in a fixed order
        (token and positional embeddings, then per layer the attention and the feed-forward,
        then the final norm and projection), so a seed gives the same initial weights in
        either model.
        """
        super().__init__()
        check_model_args(
            dropout=dropout,
            choices={
                "attention": (attention, ATTENTIONS),
                "positional": (positional, POSITIONALS),
                "bucket_rule": (bucket_rule, BUCKET_RULES),
            },
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
            check_lsh_length(max_seq_len, bucket_size, bucket_rule)
        check_positional(positional, axial_shape, max_seq_len)
        self.vocab_size = vocab_size
        self.d_model = d_model
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.max_seq_len = max_seq_len
        self.attention = attention
        self.n_hashes = n_hashes
        self.bucket_size = bucket_size
        self.bucket_rule = bucket_rule
        self.self_mask = True  # full shared-QK attention masks i -> i (set_attention changes it)
        self.unit_keys = unit_keys  # full shared-QK attention: keys of unit length (the paper)
        self.shared_qk = shared_qk or attention == "lsh"
        self.reversible = reversible
        self.causal = causal
        self.dropout_p = dropout
        self.attend_across_buckets = attend_across_buckets
        self.allow_duplicate_attention = allow_duplicate_attention
        self.loss_chunks = loss_chunks

        self.token_emb = token_embedding(vocab_size, d_model)
        self.pos_emb = positional_embedding(
            positional, max_seq_len, d_model, axial_shape, axial_dims
        )
        self.dropout = nn.Dropout(dropout)
        blocks = [
            (
                PreNorm(d_model, self._make_attention(attention), dropout),
                PreNorm(d_model, ChunkedFeedForward(d_model, d_ff, ff_chunks, dropout), dropout),
            )
            for _ in range(n_layers)
        ]
        self.layers = layer_stack(blocks, reversible)
        width = 2 * d_model if reversible else d_model
        self.norm = nn.LayerNorm(width)
        self.to_logits = nn.Linear(width, vocab_size)

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
                bucket_rule=self.bucket_rule,
            )
        return FullSelfAttention(
            self.d_model,
            self.n_heads,
            causal=self.causal,
            shared_qk=self.shared_qk,
            dropout=self.dropout_p,
            self_mask=self.self_mask,
            unit_keys=self.unit_keys,
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
            >>> from reformer.models import ReformerLM
            >>> model = ReformerLM(10, d_model=8, n_heads=2, max_seq_len=8, attention="full")
            >>> model.hidden_states(torch.zeros(1, 8, dtype=torch.long)).shape
            torch.Size([1, 8, 16])
        """
        check_tokens("tokens", tokens)
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
            >>> from reformer.models import ReformerLM
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
            >>> from reformer.models import ReformerLM
            >>> model = ReformerLM(10, d_model=8, n_heads=2, max_seq_len=8, attention="full")
            >>> lp = model.log_probs(torch.zeros(1, 8, dtype=torch.long), chunks=2)
            >>> lp.shape, bool(torch.allclose(lp.exp().sum(-1), torch.ones(1, 8)))
            (torch.Size([1, 8, 10]), True)
        """
        chunks = self.loss_chunks if chunks is None else chunks
        check_positive(chunks=chunks)
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
        check_tokens("targets", targets)
        if targets.shape != tokens.shape:
            raise ValueError(
                f"targets of shape {tuple(targets.shape)} is not allowed: must match tokens "
                f"{tuple(tokens.shape)}"
            )
        hidden = self.hidden_states(tokens, mask)
        return chunked_cross_entropy(hidden, self.head, targets, loss_mask, self.loss_chunks)

    def set_attention(
        self,
        attention: str,
        n_hashes: int | None = None,
        *,
        bucket_size: int | None = None,
        self_mask: bool | None = None,
        bucket_rule: str | None = None,
        unit_keys: bool | None = None,
    ) -> LanguageModel:
        """Swap the attention of every layer in place, keeping the weights.

        Full shared-QK attention and LSH attention have the same parameters (``to_qk``,
        ``to_v``, ``to_out``), so a model trained with one can be evaluated with the other
        (the paper's Table 2). The new modules keep device, dtype and train/eval mode.

        With separate Q and K (``shared_qk=False``), LSH uses the **query** projection as
        the shared query/key (``to_k`` unused, as loading the weights into a shared-QK layer
        does; fast.ai's 1-5% row); ``"full"`` brings the kept full modules back.

        Args:
            attention: ``"lsh"`` or ``"full"``.
            n_hashes: new number of LSH rounds (kept for a later switch when ``"full"``).
            bucket_size: new LSH bucket (chunk) size, e.g. to evaluate with other bucket
                counts than trained with (kept for a later switch, like ``n_hashes``).
            self_mask: full shared-QK attention masks the score ``i -> i`` (``True``, the
                paper) or not (an evaluation diagnostic); kept for a later switch.
            bucket_rule: LSH buckets per length, ``"paper"`` or ``"half"`` (see
                :mod:`reformer.attention.buckets`); kept for a later switch.
            unit_keys: full shared-QK attention normalises its keys (``True``, the paper) or
                uses the raw queries (the fast.ai reproduction's full path); kept for a
                later switch. LSH attention always normalises them.

        Returns:
            ``self``.

        Example:
            >>> from reformer.models import ReformerLM
            >>> model = ReformerLM(10, d_model=8, n_heads=2, max_seq_len=8, bucket_size=4)
            >>> type(model.set_attention("full").layers.blocks[0].f.fn).__name__
            'FullSelfAttention'
            >>> model.set_attention("lsh", n_hashes=8).layers.blocks[0].f.fn.n_hashes
            8
            >>> model.set_attention("full", self_mask=False).layers.blocks[0].f.fn.self_mask
            False
        """
        check_choice("attention", attention, ATTENTIONS)
        if n_hashes is not None:
            check_positive(n_hashes=n_hashes)
        if bucket_size is not None:
            check_positive(bucket_size=bucket_size)
        if bucket_rule is not None:
            check_choice("bucket_rule", bucket_rule, BUCKET_RULES)
        if attention == "lsh":
            check_lsh_length(
                self.max_seq_len, bucket_size or self.bucket_size, bucket_rule or self.bucket_rule
            )
        given = {"n_hashes": n_hashes, "bucket_size": bucket_size, "bucket_rule": bucket_rule}
        given.update(self_mask=self_mask, unit_keys=unit_keys)
        for name, value in given.items():  # all checked above: none is set on a bad call
            if value is not None:
                setattr(self, name, bool(value) if name in ("self_mask", "unit_keys") else value)
        for i, block in enumerate(self.layers.blocks):
            old = block.f.fn
            if attention != self.attention:
                block.f.fn = self._swapped(i, old, attention)
            new = block.f.fn
            if attention == "lsh":  # plain attributes: changeable in place
                new.n_hashes, new.bucket_size = self.n_hashes, self.bucket_size
                new.bucket_rule = self.bucket_rule
            else:
                new.self_mask, new.unit_keys = self.self_mask, self.unit_keys
        self.attention = attention
        return self

    def _swapped(self, i: int, old: nn.Module, attention: str) -> nn.Module:
        """Block ``i``'s attention ``old`` as a module of kind ``attention``, same weights."""
        state = old.state_dict()
        kept: dict[int, nn.Module] = self.__dict__.setdefault("_separate_qk_full", {})
        if attention == "lsh" and not self.shared_qk:
            # Separate Q and K: the query projection becomes the shared query/key.
            kept[i] = old
            state = _renamed(
                {k: v for k, v in state.items() if not k.startswith("to_k.")}, "q", "qk"
            )
            new = self._make_attention(attention)
        elif attention == "full" and i in kept:
            new = kept.pop(i)  # to_k comes back; to_q, to_v, to_out from the LSH layer
            state = {**new.state_dict(), **_renamed(state, "qk", "q")}
        else:
            new = self._make_attention(attention)
        reference = next(old.parameters())
        new.to(device=reference.device, dtype=reference.dtype)
        new.load_state_dict(state)
        new.train(old.training)
        return new


def _renamed(state: dict[str, Tensor], old: str, new: str) -> dict[str, Tensor]:
    """``state`` with the projection ``to_<old>.*`` renamed ``to_<new>.*``."""
    prefix = f"to_{old}."
    return {
        (f"to_{new}." + k[len(prefix) :] if k.startswith(prefix) else k): v
        for k, v in state.items()
    }
