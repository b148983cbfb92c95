"""Locality-sensitive-hashing (LSH) self-attention, as defined in the paper (Section 2).

Map from the paper to this module:

* **Shared QK** (Section 2, "Shared-QK Transformer"): one projection ``to_qk`` gives the
  queries; the keys are the queries normalised to unit length, ``k_j = q_j / ||q_j||``;
  scores are scaled by ``1 / sqrt(d_head)``.
* **Hashing** (Section 2, "Locality sensitive hashing"): for each head and each round a
  random matrix ``R`` of shape ``(d_head, n_buckets / 2)`` is drawn afresh in every forward
  pass and ``h(x) = argmax([xR; -xR])`` (:func:`hash_vectors`). Rotations are shared across
  the batch.
* **Number of buckets** (Section 2): ``2 l / m`` for chunks of length ``m``, so a bucket
  holds half a chunk on average (``bucket_rule="paper"``, the default; ``"half"`` gives
  reformer-pytorch's ``l / m``); decided in :mod:`reformer.attention.buckets`.
* **Sorting and chunking** (Figure 2, Eq. 3-5): in every round the positions are sorted
  stably by ``(bucket, position)`` and the sorted sequence is cut into chunks of
  ``bucket_size`` (the paper's ``m``); each chunk attends to itself and to the chunk before
  it in the same round. The first chunk has no look-back (no wrap-around).
* **Masks** (Section 2 and Eq. 16), all on original positions: a key in another bucket is
  masked (unless ``attend_across_buckets``), ``causal`` masks keys after the query, the
  padding mask masks keys, and the self score ``i -> i`` is replaced by ``-1e5`` so a query
  attends to itself only when nothing else is allowed
  (:mod:`reformer.attention.masks`).
* **Multi-round hashing** (Eq. 6 and Appendix A): each round ``r`` gives an output
  ``o_r`` and the log-sum-exp ``z_r`` of its scores; the rounds are combined as
  ``o = sum_r exp(z_r - logsumexp_r(z_r)) o_r``.
* **Duplicate correction** (Eq. 16): a key ``j`` found by query ``i`` in several rounds has
  ``log N_ij`` subtracted from its score, where ``N_ij`` counts the rounds whose attention
  set of ``i`` holds ``j``. The combined output is then exactly softmax attention over the
  union of the rounds' attention sets (over the multiset, with weight ``N_ij``, when
  ``allow_duplicate_attention=True``).

How the public implementations differ (facts, not code, were compared):

* reformer-pytorch (``reformer_pytorch.LSHSelfAttention``): allows duplicate attention and
  attention across buckets by default (the paper does neither; here both default to the
  paper's choice), draws one set of rotations shared by all heads by default, uses ``-5e4``
  for the self score (chosen for float16) and needs the length to be divisible by twice the
  bucket size.
* HuggingFace ``transformers`` ``ReformerModel``: rotations per head, no duplicate counting
  across rounds, keys scaled by an RMS norm rather than normalised to unit length, and LSH
  layers mixed with local-attention layers.

Implementation, batched over batch, heads and rounds: the hash in
:mod:`reformer.attention.hashing`; sorting, masks, duplicate codes and combining the rounds in
:mod:`reformer.attention.chunked` (:func:`lsh_attend`); the chunked window attention (one
autograd function, fused softmax, hand-written backward; nothing of size ``l x l``, memory
``O(b h r l (2m + d))``) in :mod:`reformer.attention.window`; a group of heads at a time
(``head_chunks``) in :mod:`reformer.attention.head_groups`. A query whose keys are all masked
(a padded position whose own key is padding) gets a zero output.

Reversible recompute: the reversible block recomputes this layer in its backward pass and
must get the same rotations and dropout masks. Rotations come from ``self.generator`` when
one is set, otherwise from torch's global RNG of the input's device (dropout always uses the
global RNG). The block therefore saves and restores the global CPU/CUDA RNG state, plus the
generator states returned by :func:`~reformer.attention.rng_states.get_rng_states` (or each
module's :meth:`rng_state`), restored with
:func:`~reformer.attention.rng_states.set_rng_states` (or :meth:`set_rng_state`).

Shape notation: ``b`` batch, ``l`` length, ``h`` heads, ``d`` head dimension,
``r`` rounds (``n_hashes``), ``c`` chunks per round (``l / bucket_size``), ``m`` chunk
length (``bucket_size``), ``w = 2 m`` keys per chunk (itself and one chunk back).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from reformer.attention.buckets import BUCKET_RULES, n_buckets_for
from reformer.attention.chunked import lsh_attend
from reformer.attention.hashing import hash_vectors
from reformer.attention.head_groups import _HeadGroups, _slab_starts
from reformer.attention.masks import check_heads, check_padding_mask

__all__ = [
    "BUCKET_RULES",
    "LSHSelfAttention",
    "hash_vectors",
    "lsh_attend",
    "n_buckets_for",
]


class LSHSelfAttention(nn.Module):
    """Multi-head LSH self-attention with shared QK (paper, Section 2).

    Args:
        d_model: model width; must be divisible by ``n_heads``.
        n_heads: number of attention heads.
        bucket_size: chunk length ``m`` (the sorted sequence is cut into chunks of this
            length); the sequence length must be a multiple of it.
        n_hashes: number of hashing rounds; a plain attribute that may be changed at any
            time (e.g. evaluate a model trained with 1 round using 8).
        causal: mask keys after the query position.
        n_buckets: number of hash buckets; default (``None``): from the length by
            ``bucket_rule`` (:func:`~reformer.attention.buckets.n_buckets_for`). Must be 1
            (one bucket: no hashing) or even. A tuple of even factors, e.g. ``(128, 128)``,
            factorises ``prod`` buckets (see :func:`hash_vectors`): for very long sequences,
            where one rotation of ``n_buckets / 2`` columns per round would dominate the
            step.
        bucket_rule: how ``n_buckets`` follows from the length when it is not set:
            ``"paper"`` ``2 * length / bucket_size`` (Section 2 and the authors' code) or
            ``"half"`` ``length / bucket_size`` (reformer-pytorch's); see
            :data:`~reformer.attention.buckets.BUCKET_RULES`.
        attend_across_buckets: let a query attend to keys of other buckets that share its
            chunk window (reformer-pytorch's default); the paper does not.
        allow_duplicate_attention: turn off the duplicate correction of Eq. 16.
        dropout: dropout probability on the attention weights (training only).
        bias: whether the projections have a bias.
        generator: optional ``torch.Generator`` for the rotations (tests fix it); default:
            torch's global RNG on the input's device.
        head_chunks: compute the heads in this many groups, forward and backward, so a
            training step keeps only the input for backward and one group's attention
            buffers at a time instead of all heads' (for the longest sequences; costs one
            more forward of the attention). A plain attribute, like ``n_hashes``.

    Parameters ``to_qk``, ``to_v``, ``to_out`` (each ``Linear(d_model, d_model)``) match
    those of ``FullSelfAttention(shared_qk=True)``, so state dicts load across the two.

    Hook for tests: the rotations come from :meth:`random_rotations`; replacing it on an
    instance (``attn.random_rotations = lambda n_buckets, device: R``) fixes them.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> attn = LSHSelfAttention(d_model=16, n_heads=2, bucket_size=4, n_hashes=2,
        ...                         causal=True, generator=g)
        >>> x = torch.randn(2, 32, 16)
        >>> attn(x).shape
        torch.Size([2, 32, 16])
        >>> attn.n_hashes = 8  # more rounds at evaluation time
        >>> attn(x, mask=torch.ones(2, 32, dtype=torch.bool)).shape
        torch.Size([2, 32, 16])
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        bucket_size: int = 64,
        n_hashes: int = 4,
        causal: bool = False,
        n_buckets: int | Sequence[int] | None = None,
        attend_across_buckets: bool = False,
        allow_duplicate_attention: bool = False,
        dropout: float = 0.0,
        bias: bool = False,
        generator: torch.Generator | None = None,
        head_chunks: int = 1,
        bucket_rule: str = "paper",
    ) -> None:
        super().__init__()
        self.d_head = check_heads(d_model, n_heads)
        if bucket_size <= 0:
            raise ValueError(f"bucket_size={bucket_size} must be a positive integer")
        if n_hashes <= 0:
            raise ValueError(f"n_hashes={n_hashes} must be a positive integer")
        if isinstance(n_buckets, Sequence):
            n_buckets = tuple(int(n) for n in n_buckets)
            if not n_buckets or any(n <= 0 or n % 2 for n in n_buckets):
                raise ValueError(
                    f"n_buckets={n_buckets} must be 1, a positive even number or a tuple of "
                    "positive even factors"
                )
        elif n_buckets is not None and (n_buckets <= 0 or (n_buckets != 1 and n_buckets % 2)):
            raise ValueError(f"n_buckets={n_buckets} must be 1 or a positive even number")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout={dropout} must be in [0, 1)")
        if bucket_rule not in BUCKET_RULES:
            raise ValueError(
                f"bucket_rule={bucket_rule!r} is not allowed: choose one of {list(BUCKET_RULES)}"
            )
        self.d_model = d_model
        self.n_heads = n_heads
        self.bucket_size = bucket_size
        self.n_hashes = n_hashes
        self.causal = causal
        self.n_buckets = n_buckets
        self.bucket_rule = bucket_rule
        self.attend_across_buckets = attend_across_buckets
        self.allow_duplicate_attention = allow_duplicate_attention
        self.dropout = dropout
        self.generator = generator
        self.head_chunks = head_chunks
        self.to_qk = nn.Linear(d_model, d_model, bias=bias)
        self.to_v = nn.Linear(d_model, d_model, bias=bias)
        self.to_out = nn.Linear(d_model, d_model, bias=bias)

    def buckets_for_length(self, length: int) -> int | tuple[int, ...]:
        """Validate ``length`` and return the number of buckets used for it (the factors
        when ``n_buckets`` is a tuple): ``n_buckets`` when set, else :func:`n_buckets_for`
        with ``bucket_rule``.

        Raises:
            ValueError: when ``length`` is not a multiple of ``bucket_size`` or the number
                of buckets is neither 1 nor even.

        Example:
            >>> LSHSelfAttention(8, 2, bucket_size=4).buckets_for_length(32)
            16
            >>> LSHSelfAttention(8, 2, bucket_size=4, bucket_rule="half").buckets_for_length(32)
            8
        """
        if length % self.bucket_size:
            raise ValueError(
                f"sequence length {length} must be divisible by bucket_size={self.bucket_size}"
            )
        if self.n_buckets is not None:
            return self.n_buckets
        return n_buckets_for(length, self.bucket_size, self.bucket_rule)

    def random_rotations(
        self, n_buckets: int | tuple[int, ...], device: torch.device
    ) -> torch.Tensor | list[torch.Tensor]:
        """Draw fresh random rotations, one per head and round.

        Drawn in float32 from ``self.generator`` when set (on the generator's device, then
        moved), else from torch's global RNG on ``device``.

        Args:
            n_buckets: number of buckets (even), or a tuple of even factors.
            device: device of the input.

        Returns:
            ``(n_heads, n_hashes, d_head, n_buckets // 2)`` float32 tensor; for factors, a
            list of such tensors, one per factor.

        Example:
            >>> attn = LSHSelfAttention(8, 2, n_hashes=3)
            >>> attn.random_rotations(6, torch.device("cpu")).shape
            torch.Size([2, 3, 4, 3])
        """
        if isinstance(n_buckets, tuple):
            return [self.random_rotations(n, device) for n in n_buckets]
        shape = (self.n_heads, self.n_hashes, self.d_head, n_buckets // 2)
        if self.generator is None:
            return torch.randn(shape, device=device)
        g = self.generator
        return torch.randn(shape, generator=g, device=g.device).to(device)

    def rng_state(self) -> torch.Tensor | None:
        """State of ``self.generator`` (``None`` when the global RNG is used).

        Example:
            >>> LSHSelfAttention(8, 2).rng_state() is None
            True
        """
        return None if self.generator is None else self.generator.get_state()

    def set_rng_state(self, state: torch.Tensor | None) -> None:
        """Restore a state returned by :meth:`rng_state` (no-op for ``None``).

        Example:
            >>> attn = LSHSelfAttention(8, 2, generator=torch.Generator().manual_seed(0))
            >>> state = attn.rng_state()
            >>> a = attn.random_rotations(4, torch.device("cpu"))
            >>> attn.set_rng_state(state)
            >>> torch.equal(a, attn.random_rotations(4, torch.device("cpu")))
            True
        """
        if state is not None and self.generator is not None:
            self.generator.set_state(state)

    # PreNorm hands its layer norm to this layer (see ``norm`` below).
    accepts_norm = True

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        norm: nn.Module | None = None,
    ) -> torch.Tensor:
        """LSH attention of every position within its buckets.

        Args:
            x: ``(b, l, d_model)`` input; ``l`` must be a multiple of ``bucket_size``.
            mask: optional ``(b, l)`` bool padding mask, True = real token (masks keys).
            norm: optional position-wise module (the block's layer norm) applied to ``x``
                first. With ``head_chunks > 1`` its output is never held whole: it is
                computed in slabs of positions where the projections need it, in forward and
                again in backward, so a training step keeps only ``x``.

        Returns:
            ``(b, l, d_model)`` output.
        """
        b, l, _ = x.shape
        n_buckets = self.buckets_for_length(l)
        check_padding_mask(mask, b, l)
        rotations = None if n_buckets == 1 else self.random_rotations(n_buckets, x.device)
        if self.head_chunks <= 0 or self.n_heads % self.head_chunks:
            raise ValueError(
                f"head_chunks={self.head_chunks} must be a positive divisor of "
                f"n_heads={self.n_heads}"
            )
        if self.head_chunks == 1:
            out = self._attend(x if norm is None else norm(x), rotations, 0, self.n_heads, mask)
        else:
            norm_params = () if norm is None else tuple(norm.parameters())
            out = _HeadGroups.apply(
                x,
                self.to_qk.weight,
                self.to_qk.bias,
                self.to_v.weight,
                self.to_v.bias,
                self.to_out.weight,
                self,
                rotations,
                mask,
                norm,
                *norm_params,
            )
        if self.to_out.bias is not None:
            out = out + self.to_out.bias
        return out

    def _attend(
        self,
        x: torch.Tensor,
        rotations: torch.Tensor | list[torch.Tensor] | None,
        first: int,
        stop: int,
        mask: torch.Tensor | None,
        norm: nn.Module | None = None,
    ) -> torch.Tensor:
        """Heads ``first:stop``: their projections (of ``norm(x)``), attention and share of
        ``to_out`` (without its bias), ``(b, l, d_model)``."""
        b, l, _ = x.shape
        cols = slice(first * self.d_head, stop * self.d_head)
        qk, v = self._project(x, first, stop, norm)
        out = self._attend_heads(qk, v, rotations, first, stop, mask)  # (b, l, h, d)
        return F.linear(out.reshape(b, l, -1), self.to_out.weight[:, cols])

    def _project(
        self, x: torch.Tensor, first: int, stop: int, norm: nn.Module | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Shared query/key and value of heads ``first:stop`` from ``norm(x)``, each
        ``(b, l, h, d)``; with a ``norm``, in slabs of positions (:func:`_slab_starts`)."""
        b, l, _ = x.shape
        cols = slice(first * self.d_head, stop * self.d_head)
        linears = (self.to_qk, self.to_v)
        weights = [(m.weight[cols], None if m.bias is None else m.bias[cols]) for m in linears]
        if norm is None:
            outs = [F.linear(x, w, bias) for w, bias in weights]
        else:
            parts: list[list[torch.Tensor]] = [[], []]
            for _, piece in _slab_starts(x):
                normed = norm(piece)
                for part, (w, bias) in zip(parts, weights, strict=True):
                    part.append(F.linear(normed, w, bias))
            outs = [torch.cat(part, dim=1) for part in parts]
        qk, v = (out.view(b, l, stop - first, self.d_head) for out in outs)
        return qk, v

    def _attend_heads(
        self,
        qk: torch.Tensor,
        v: torch.Tensor,
        rotations: torch.Tensor | list[torch.Tensor] | None,
        first: int,
        stop: int,
        mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """Hash and attend heads ``first:stop`` given their ``(b, l, h, d)`` ``qk`` and ``v``;
        returns ``(b, l, h, d)``."""
        b, l, h, _ = qk.shape
        if rotations is None:
            buckets = torch.zeros(b, h, self.n_hashes, l, dtype=torch.long, device=qk.device)
        elif isinstance(rotations, torch.Tensor):
            buckets = hash_vectors(qk.detach(), rotations[first:stop])
        else:
            buckets = hash_vectors(qk.detach(), [factor[first:stop] for factor in rotations])
        return lsh_attend(
            qk,
            v,
            buckets,
            self.bucket_size,
            causal=self.causal,
            mask=mask,
            # With one bucket, "across buckets" is the same thing and skips a mask.
            attend_across_buckets=self.attend_across_buckets or rotations is None,
            allow_duplicate_attention=self.allow_duplicate_attention,
            dropout_p=self.dropout if self.training else 0.0,
        )

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, n_heads={self.n_heads}, bucket_size={self.bucket_size}, "
            f"n_hashes={self.n_hashes}, causal={self.causal}, n_buckets={self.n_buckets}, "
            f"bucket_rule={self.bucket_rule}, "
            f"attend_across_buckets={self.attend_across_buckets}, "
            f"allow_duplicate_attention={self.allow_duplicate_attention}, dropout={self.dropout}, "
            f"head_chunks={self.head_chunks}"
        )
