"""The Reformer language model (paper sections 2-3): LSH attention, reversible layers.

Its layout, constructor (the paper's defaults and the checks of its arguments) and methods
are those of :class:`~reformer.models.language_model.LanguageModel`; this module documents
them.
"""

from __future__ import annotations

from reformer.models.language_model import LanguageModel

__all__ = ["ReformerLM"]


class ReformerLM(LanguageModel):
    """Reformer language model: LSH (or full) attention, reversible layers, chunked FF.

    Args:
        vocab_size: number of token ids ``V``.
        d_model: model width ``d``.
        n_layers: number of (attention, feed-forward) blocks.
        n_heads: attention heads (must divide ``d_model``).
        d_ff: feed-forward hidden width.
        max_seq_len: longest sequence (positional table size).
        attention: ``"lsh"`` (paper section 2) or ``"full"`` (scaled dot-product).
        n_hashes: LSH hashing rounds (may be changed later with
            :meth:`~reformer.models.language_model.LanguageModel.set_attention`).
        bucket_size: LSH bucket/chunk size; ``max_seq_len`` must be a multiple of it (with
            ``bucket_rule="half"``, ``max_seq_len / bucket_size`` equal to 1 or even).
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
        loss_chunks: chunks of the output projection + loss in
            :meth:`~reformer.models.language_model.LanguageModel.loss`.
        axial_dims: ``None`` (summed axial tables) or ``(d1, d2)`` with ``d1 + d2 = d_model``.
        bucket_rule: LSH buckets per length: ``"paper"`` ``2 * length / bucket_size`` (paper
            Section 2, the authors' code) or ``"half"`` ``length / bucket_size``
            (reformer-pytorch); see :mod:`reformer.attention.buckets`.
        unit_keys: full shared-QK attention normalises its keys to unit length (the paper);
            ``False`` uses the raw queries as keys (the fast.ai reproduction's full-attention
            path). LSH attention always normalises them.

    Shapes:
        - ``tokens``: ``(b, l)`` int64, ``l <= max_seq_len`` (for LSH: ``l`` a multiple of
          ``bucket_size``)
        - ``mask``: ``(b, l)`` bool, True = real token (padding mask for the attention)
        - logits: ``(b, l, V)``

    The reversible stack's two halves are concatenated before the final norm, so the final
    norm and the output projection are ``2 * d_model`` wide (see
    :mod:`reformer.models.language_model`).

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
