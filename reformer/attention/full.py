"""Full (quadratic) multi-head attention, the baseline of the paper's experiments.

Both modules are built on :func:`torch.nn.functional.scaled_dot_product_attention`, so the
fastest available kernel (flash, memory-efficient or the plain math path) is used.

``FullSelfAttention(shared_qk=True)`` is the full-attention counterpart of LSH attention
(paper, Section 2, "Shared-QK Transformer"): one projection gives the queries, the keys are
the queries normalised to unit length (``k_j = q_j / ||q_j||``), and the score of
``i -> i`` is replaced by ``-1e5`` so a position attends to itself only when nothing else is
allowed. Its parameters (``to_qk``, ``to_v``, ``to_out``) have the same names and shapes as
those of :class:`~reformer.attention.lsh.LSHSelfAttention`, so a state dict trained with one
loads into the other (Table 2 evaluates models across the two).

Shape notation: ``b`` batch, ``l`` query length, ``lc`` context length, ``h`` heads,
``d`` head dimension (``d_model // n_heads``).
"""

from __future__ import annotations

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


class FullSelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention, optionally with shared QK.

    Args:
        d_model: model width; must be divisible by ``n_heads``.
        n_heads: number of attention heads.
        causal: mask keys after the query position (language modelling).
        shared_qk: use one projection ``to_qk`` for queries and keys, normalise the keys to
            unit length and apply the self-mask (paper, Section 2).
        self_mask: with ``shared_qk``, replace the score of ``i -> i`` by ``-1e5`` (the
            paper). ``False`` lets a position attend to itself like any other key: an
            evaluation-time diagnostic (a shared-QK query matches its own key best, so sharp
            attention then copies the current token). A plain attribute.
        unit_keys: with ``shared_qk``, the keys are the queries normalised to unit length (the
            paper, and what LSH attention always does). ``False`` uses the raw queries as keys,
            as the fast.ai reproduction's switchable full-attention path did (its LSH path
            normalised them). A plain attribute.
        dropout: dropout probability on the attention weights (training only).
        bias: whether the projections have a bias.

    Parameters: ``to_qk`` (shared) or ``to_q`` and ``to_k``, then ``to_v`` and ``to_out``,
    each a ``Linear(d_model, d_model)``.

    Example:
        >>> attn = FullSelfAttention(d_model=8, n_heads=2, causal=True, shared_qk=True)
        >>> attn(torch.randn(3, 5, 8)).shape
        torch.Size([3, 5, 8])
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        causal: bool = False,
        shared_qk: bool = False,
        dropout: float = 0.0,
        bias: bool = False,
        self_mask: bool = True,
        unit_keys: bool = True,
    ) -> None:
        super().__init__()
        self.d_head = check_heads(d_model, n_heads)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout={dropout} must be in [0, 1)")
        self.d_model = d_model
        self.n_heads = n_heads
        self.causal = causal
        self.shared_qk = shared_qk
        self.self_mask = self_mask
        self.unit_keys = unit_keys
        self.dropout = dropout
        if shared_qk:
            self.to_qk = nn.Linear(d_model, d_model, bias=bias)
        else:
            self.to_q = nn.Linear(d_model, d_model, bias=bias)
            self.to_k = nn.Linear(d_model, d_model, bias=bias)
        self.to_v = nn.Linear(d_model, d_model, bias=bias)
        self.to_out = nn.Linear(d_model, d_model, bias=bias)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        return rearrange(t, "b l (h d) -> b h l d", h=self.n_heads)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Attend every position to every allowed position.

        Args:
            x: ``(b, l, d_model)`` input.
            mask: optional ``(b, l)`` bool padding mask, True = real token; False keys are
                masked for every query.

        Returns:
            ``(b, l, d_model)`` output.
        """
        b, l, _ = x.shape
        check_padding_mask(mask, b, l)
        if self.shared_qk:
            q = self._heads(self.to_qk(x))  # (b, h, l, d)
            k = F.normalize(q, dim=-1) if self.unit_keys else q  # k_j = q_j / ||q_j||
        else:
            q, k = self._heads(self.to_q(x)), self._heads(self.to_k(x))
        v = self._heads(self.to_v(x))

        attn_mask, is_causal = None, False
        masks_self = self.shared_qk and self.self_mask
        if masks_self or mask is not None:
            # An additive float mask: finite values, so a fully masked row stays finite.
            bias = torch.zeros(l, l, dtype=q.dtype, device=x.device)
            bias.diagonal().fill_(self_mask_value(q.dtype) if masks_self else 0.0)
            hard = hard_mask_value(q.dtype)
            if self.causal:
                later = torch.ones(l, l, dtype=torch.bool, device=x.device).triu_(1)
                bias = bias.masked_fill(later, hard)
            bias = bias[None, None]  # (1, 1, l, l)
            if mask is not None:
                bias = bias.masked_fill(~mask[:, None, None, :], hard)  # (b, 1, l, l)
            attn_mask = bias
        else:
            is_causal = self.causal

        out = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=attn_mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=is_causal,
        )  # (b, h, l, d)
        return self.to_out(rearrange(out, "b h l d -> b l (h d)"))

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, n_heads={self.n_heads}, causal={self.causal}, "
            f"shared_qk={self.shared_qk}, self_mask={self.self_mask}, "
            f"unit_keys={self.unit_keys}, dropout={self.dropout}"
        )


class FullCrossAttention(nn.Module):
    """Multi-head attention from a sequence to a context (encoder-decoder attention).

    Args:
        d_model: model width of both the queries and the context; divisible by ``n_heads``.
        n_heads: number of attention heads.
        dropout: dropout probability on the attention weights (training only).
        bias: whether the projections have a bias.

    Parameters: ``to_q``, ``to_k``, ``to_v``, ``to_out``, each a ``Linear(d_model, d_model)``.

    Example:
        >>> attn = FullCrossAttention(d_model=8, n_heads=2)
        >>> x, context = torch.randn(2, 3, 8), torch.randn(2, 7, 8)
        >>> attn(x, context, context_mask=torch.ones(2, 7, dtype=torch.bool)).shape
        torch.Size([2, 3, 8])
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = False):
        super().__init__()
        self.d_head = check_heads(d_model, n_heads)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout={dropout} must be in [0, 1)")
        self.d_model = d_model
        self.n_heads = n_heads
        self.dropout = dropout
        self.to_q = nn.Linear(d_model, d_model, bias=bias)
        self.to_k = nn.Linear(d_model, d_model, bias=bias)
        self.to_v = nn.Linear(d_model, d_model, bias=bias)
        self.to_out = nn.Linear(d_model, d_model, bias=bias)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        return rearrange(t, "b l (h d) -> b h l d", h=self.n_heads)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor,
        context_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attend each position of ``x`` to the (unmasked) positions of ``context``.

        Args:
            x: ``(b, l, d_model)`` queries' input.
            context: ``(b, lc, d_model)`` keys' and values' input (e.g. encoder output).
            context_mask: optional ``(b, lc)`` bool, True = real context token.

        Returns:
            ``(b, l, d_model)`` output.
        """
        b, _, _ = x.shape
        check_padding_mask(context_mask, b, context.shape[1])
        q = self._heads(self.to_q(x))  # (b, h, l, d)
        k = self._heads(self.to_k(context))  # (b, h, lc, d)
        v = self._heads(self.to_v(context))  # (b, h, lc, d)
        attn_mask = None
        if context_mask is not None:
            # Additive (not boolean) so a fully padded context gives finite outputs.
            attn_mask = torch.zeros(context_mask.shape, dtype=q.dtype, device=x.device).masked_fill(
                ~context_mask, hard_mask_value(q.dtype)
            )[:, None, None, :]
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0
        )  # (b, h, l, d)
        return self.to_out(rearrange(out, "b h l d -> b l (h d)"))

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, n_heads={self.n_heads}, dropout={self.dropout}"
