"""Activation memory of whole language models against depth (paper, section 3, Table 3).

Counts the bytes of the tensors autograd saves for the backward pass during one forward pass
and loss (parameters excluded), with :func:`reformer.memory.saved_tensor_bytes`. The count is
deterministic: it does not depend on the allocator or the machine. A reversible model keeps
only the outputs of its layer stack, so its figure should stay flat with depth; the ordinary
Transformer keeps every layer's activations and grows linearly.

Usage::

    python reformer/benchmarks/model_memory.py                   # table on stdout
    python reformer/benchmarks/model_memory.py --json out.json   # and the numbers as JSON
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence

import torch

from reformer.memory import saved_tensor_bytes
from reformer.models import ReformerLM, TransformerLM


def model_variants(
    vocab: int, d_model: int, d_ff: int, n_heads: int, length: int, bucket_size: int
) -> dict[str, Callable[[int], torch.nn.Module]]:
    """Builders ``n_layers -> model`` for the compared variants."""
    common = dict(d_model=d_model, d_ff=d_ff, n_heads=n_heads, max_seq_len=length)
    lsh = dict(attention="lsh", bucket_size=bucket_size, n_hashes=2)
    return {
        "transformer": lambda n: TransformerLM(vocab, n_layers=n, **common),
        "reversible full": lambda n: ReformerLM(vocab, n_layers=n, attention="full", **common),
        "lsh, not reversible": lambda n: ReformerLM(
            vocab, n_layers=n, reversible=False, **lsh, **common
        ),
        "reformer (lsh, reversible)": lambda n: ReformerLM(vocab, n_layers=n, **lsh, **common),
        "reformer + chunked ff/loss": lambda n: ReformerLM(
            vocab, n_layers=n, ff_chunks=4, loss_chunks=4, **lsh, **common
        ),
    }


def saved_activation_bytes(model: torch.nn.Module, tokens: torch.Tensor) -> int:
    """Bytes saved for backward by ``model.loss(tokens, next tokens)``, parameters excluded.

    Args:
        model: a language model with a ``loss(tokens, targets)`` method.
        tokens: ``(batch, length)`` token ids.

    Returns:
        Number of bytes.
    """
    return saved_tensor_bytes(
        model.loss, tokens, tokens.roll(-1, dims=1), ignore=model.parameters()
    )


def depth_table(
    depths: Sequence[int] = (1, 2, 4, 8, 12),
    vocab: int = 256,
    d_model: int = 64,
    d_ff: int = 256,
    n_heads: int = 4,
    length: int = 256,
    batch: int = 2,
    bucket_size: int = 32,
    seed: int = 0,
) -> dict[str, dict[int, int]]:
    """Saved activation bytes for every variant and depth: ``{variant: {depth: bytes}}``."""
    torch.manual_seed(seed)
    tokens = torch.randint(0, vocab, (batch, length))
    builders = model_variants(vocab, d_model, d_ff, n_heads, length, bucket_size)
    return {
        name: {n: saved_activation_bytes(build(n), tokens) for n in depths}
        for name, build in builders.items()
    }


def format_table(table: dict[str, dict[int, int]]) -> str:
    """Render ``depth_table`` output: MiB per depth and the ratio of the deepest to 2 layers."""
    depths = sorted(next(iter(table.values())))
    name_width = max(len(name) for name in table)
    header = f"{'model':<{name_width}} " + " ".join(f"{f'{n} layers':>10}" for n in depths)
    ref = 2 if 2 in depths else depths[0]
    header += f" {f'{depths[-1]}/{ref}':>8}"
    lines = [header, "-" * len(header)]
    for name, row in table.items():
        cells = " ".join(f"{row[n] / 2**20:>8.2f}Mi" for n in depths)
        lines.append(f"{name:<{name_width}} {cells} {row[depths[-1]] / row[ref]:>8.2f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Print the table (and optionally write JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[1, 2, 4, 8, 12])
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--d-ff", type=int, default=256)
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args(argv)
    table = depth_table(
        args.depths, d_model=args.d_model, d_ff=args.d_ff, length=args.length, batch=args.batch
    )
    print(
        f"bytes saved for backward by one forward + loss (batch {args.batch}, length "
        f"{args.length}, d_model {args.d_model}, d_ff {args.d_ff}; parameters excluded)"
    )
    print(format_table(table))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({name: {str(n): b for n, b in row.items()} for name, row in table.items()}, f)


if __name__ == "__main__":
    main()
