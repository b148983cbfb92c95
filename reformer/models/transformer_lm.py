"""The baseline Transformer language model (Vaswani et al.): full attention, residual layers.

The paper's comparisons (Table 3's memory against depth, Table 2's full-attention rows) need
a plain Transformer of the same size. It shares the layout and methods of
:class:`~reformer.models.language_model.LanguageModel` with
:class:`~reformer.models.reformer_lm.ReformerLM`, but always uses full scaled dot-product
attention and the ordinary residual stack (``x = x + F(x)``; ``x = x + G(x)``), so its
final norm and output projection are ``d_model`` wide.
"""

from __future__ import annotations

from reformer.models.language_model import LanguageModel

__all__ = ["TransformerLM"]


class TransformerLM(LanguageModel):
    """The baseline Transformer language model: full attention, ordinary residual layers.

    The arguments mean what they mean for :class:`~reformer.models.reformer_lm.ReformerLM`
    (``vocab_size``, ``d_model``, ``n_layers``, ``n_heads``, ``d_ff``, ``max_seq_len``,
    ``positional``, ``axial_shape``, ``axial_dims``, ``dropout``, ``causal``, ``ff_chunks``,
    ``loss_chunks``); attention is always full and the residual stack ordinary. With
    ``shared_qk=True`` it can be switched to LSH attention by
    :meth:`~reformer.models.language_model.LanguageModel.set_attention` (using
    ``bucket_size`` and ``n_hashes``).

    Args:
        shared_qk: shared query/key projection (with the self-mask), as LSH attention needs.
        n_hashes: LSH rounds, used only after a switch to LSH attention.
        bucket_size: LSH bucket size, used only after a switch to LSH attention.
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
        super().__init__(
            vocab_size,
            d_model,
            n_layers,
            n_heads,
            d_ff,
            max_seq_len,
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
            bucket_rule=bucket_rule,
            unit_keys=unit_keys,
        )
