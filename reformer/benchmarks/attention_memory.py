"""Bytes saved for backward by one attention layer, LSH vs full, as the length grows.

Counts the tensors autograd keeps between forward and backward (deterministic, no timing):
LSH attention grows linearly with the length, full attention on the math path
quadratically. ``full (sdpa)`` is the default kernel choice of
``scaled_dot_product_attention`` for plain causal attention (a fused kernel where one
exists), shown for comparison.

Usage::

    python reformer/benchmarks/attention_memory.py
    python reformer/benchmarks/attention_memory.py --lengths 1024 4096 16384 --full-max-length 8192
"""

from __future__ import annotations

import argparse

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from reformer.attention import FullSelfAttention, LSHSelfAttention
from reformer.memory import saved_tensor_bytes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[1024, 2048, 4096, 8192, 16384])
    p.add_argument("--d-model", type=int, default=32)
    p.add_argument("--n-heads", type=int, default=2)
    p.add_argument("--bucket-size", type=int, default=64)
    p.add_argument("--n-hashes", type=int, default=2)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument(
        "--full-max-length",
        type=int,
        default=8192,
        help="skip full attention above this length (its math path holds l^2 scores)",
    )
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def saved_mib(layer: torch.nn.Module, x: torch.Tensor) -> float:
    """MiB saved for backward by ``layer(x)`` (the layer's own weights excluded)."""
    return saved_tensor_bytes(layer, x, ignore=layer.parameters()) / 2**20


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    lsh = LSHSelfAttention(
        args.d_model,
        args.n_heads,
        bucket_size=args.bucket_size,
        n_hashes=args.n_hashes,
        causal=True,
    )
    full_shared = FullSelfAttention(args.d_model, args.n_heads, causal=True, shared_qk=True)
    full_plain = FullSelfAttention(args.d_model, args.n_heads, causal=True)
    header = f"{'length':>8} {'lsh MiB':>10} {'full math MiB':>14} {'full sdpa MiB':>14}"
    print(header)
    print("-" * len(header))
    lsh_rows: list[tuple[int, float]] = []
    full_rows: list[tuple[int, float]] = []
    for length in args.lengths:
        x = torch.randn(args.batch, length, args.d_model, requires_grad=True)
        lsh_mib = saved_mib(lsh, x)
        lsh_rows.append((length, lsh_mib))
        math_mib = sdpa_mib = float("nan")
        if length <= args.full_max_length:
            with sdpa_kernel(SDPBackend.MATH):
                math_mib = saved_mib(full_shared, x)
            sdpa_mib = saved_mib(full_plain, x)
            full_rows.append((length, math_mib))
        print(f"{length:>8} {lsh_mib:>10.2f} {math_mib:>14.2f} {sdpa_mib:>14.2f}")
    for name, rows in (("lsh", lsh_rows), ("full math", full_rows)):
        if len(rows) > 1:
            (n0, b0), (n1, b1) = rows[0], rows[-1]
            print(f"{name}: x{b1 / b0:.1f} bytes for x{n1 / n0:.0f} length ({n0} -> {n1})")


if __name__ == "__main__":
    main()
