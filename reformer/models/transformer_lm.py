"""The baseline Transformer language model (Vaswani et al.): full attention, residual layers.

The paper's comparisons (Table 3's memory against depth, Table 2's full-attention rows) need
a plain Transformer of the same size. It shares the layout and methods of
:class:`~reformer.models.language_model.LanguageModel` with
:class:`~reformer.models.reformer_lm.ReformerLM`, but always uses full scaled dot-product
attention and the ordinary residual stack (``x = x + F(x)``; ``x = x + G(x)``), so its
final norm and output projection are ``d_model`` wide.
"""

from __future__ import annotations

from reformer.attention.buckets import BUCKET_RULES
from reformer.models.checks import check_model_args
from reformer.models.embeddings import POSITIONALS, check_positional
from reformer.models.language_model import LanguageModel

__all__ = ["TransformerLM"]


class TransformerLM(LanguageModel):
    """The baseline Transformer language model: full attention, ordinary residual layers.

    The arguments mean what they mean for :class:`~reformer.models.reformer_lm.ReformerLM`.
    With ``shared_qk=True`` it can be switched to LSH attention by
    :meth:`~reformer.models.language_model.LanguageModel.set_attention` (using
    ``bucket_size`` and ``n_hashes``).

    Args:
        vocab_size: number of token ids ``V``.
        d_model: model width ``d``.
        n_layers: number of (attention, feed-forward) blocks.
        n_heads: attention heads (must divide ``d_model``).
        d_ff: feed-forward hidden width.
        max_seq_len: longest sequence (positional table size).
        shared_qk: shared query/key projection (with the self-mask), as LSH attention needs.
        positional: ``"absolute"`` (learned), ``"fixed"`` (sinusoidal) or ``"axial"``.
        axial_shape: ``(a, b)`` with ``a * b >= max_seq_len``; needed for ``"axial"``.
        dropout: dropout on embeddings, attention weights, FF hidden and sub-layer outputs.
        causal: causal attention (language modelling).
        ff_chunks: chunks of the feed-forward layer along the sequence.
        loss_chunks: chunks of the output projection + loss in
            :meth:`~reformer.models.language_model.LanguageModel.loss`.
        n_hashes: LSH rounds, used only after a switch to LSH attention.
        bucket_size: LSH bucket size, used only after a switch to LSH attention.
        axial_dims: ``None`` (summed axial tables) or ``(d1, d2)`` with ``d1 + d2 = d_model``.
        bucket_rule: LSH buckets per length, used only after a switch to LSH attention.
        unit_keys: with ``shared_qk``, keys of unit length (the paper) or the raw queries.

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
        bucket_rule: str = "paper",
        unit_keys: bool = True,
    ) -> None:
        super().__init__()
        check_model_args(
            dropout=dropout,
            choices={
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
        check_positional(positional, axial_shape, max_seq_len)
        self._build(
            vocab_size=vocab_size,
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
            attend_across_buckets=False,
            allow_duplicate_attention=False,
            loss_chunks=loss_chunks,
            axial_dims=axial_dims,
            bucket_rule=bucket_rule,
            unit_keys=unit_keys,
        )
