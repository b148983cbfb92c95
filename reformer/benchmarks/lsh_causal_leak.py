"""How often future tokens change what a causal LSH layer lets a query see of the past.

Causal masking makes every output position independent of later tokens *as a function*:
no gradient flows from the future (tests/reformer/test_models.py checks that it is exactly
zero). But the hash buckets are sorted and cut into chunks over the whole sequence, so where a
chunk boundary falls depends on how many positions, future ones included, land in each bucket. A
query's set of visible past keys can therefore change when only future tokens change. This
script measures how often that happens on the duplication task (sequences ``0 w 0 w``).

Method: for each sequence and a random split ``t``, a second sequence keeps tokens
``0..t`` and takes the rest from another duplication sequence. Both run through the same
1-layer causal LSH language model in ONE batch, so they are hashed with the same random
rotations (rotations are shared across the batch). With the same rotations, the output of a
position ``i <= t`` can only change if its set of past keys changed; an output that moved by
more than ``1e-9`` (float64) is counted. The model is freshly initialised unless a state dict
is given.

Usage::

    python reformer/benchmarks/lsh_causal_leak.py                  # table for 1, 2, 4, 8 rounds
    python reformer/benchmarks/lsh_causal_leak.py --length 1024 --vocab 128 --bucket-size 64
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np
import torch

from reformer.models import ReformerLM
from reformer.tasks.duplication import generate_duplication

TOLERANCE = 1e-9


@torch.no_grad()
def causal_leak_fraction(
    model: ReformerLM,
    tokens: torch.Tensor,
    replacement: torch.Tensor,
    splits: torch.Tensor,
    seed: int = 0,
) -> dict[str, float]:
    """Fraction of past positions whose output changes when only future tokens change.

    Args:
        model: a causal language model (put in eval mode by the caller, dropout off).
        tokens: ``(n, l)`` sequences.
        replacement: ``(n, l)`` sequences that supply the changed future tokens.
        splits: ``(n,)`` split positions ``t`` in ``[0, l - 2]``; tokens ``0..t`` are kept.
        seed: seed for the one forward pass (the LSH rotations).

    Returns:
        ``{"positions": fraction of positions i <= t whose output changed,
        "sequences": fraction of sequences with at least one such position,
        "changed": number of such positions, "past": number of positions i <= t,
        "sequences_changed": number of sequences with a change}``.

    Example:
        >>> model = ReformerLM(8, d_model=8, n_heads=2, d_ff=8, max_seq_len=16, bucket_size=4)
        >>> a, b = torch.randint(1, 8, (2, 3, 16))
        >>> out = causal_leak_fraction(model.double().eval(), a, b, torch.tensor([3, 7, 11]))
        >>> sorted(out)
        ['changed', 'past', 'positions', 'sequences', 'sequences_changed']
    """
    n, length = tokens.shape
    position = torch.arange(length)
    future = position[None, :] > splits[:, None]  # (n, l)
    changed = torch.where(future, replacement, tokens)
    torch.manual_seed(seed)
    logits = model(torch.cat([tokens, changed]))  # one batch: the same rotations for both
    diff = (logits[:n] - logits[n:]).abs().amax(dim=-1)  # (n, l)
    past = ~future
    moved = (diff > TOLERANCE) & past
    changed_positions, past_positions = int(moved.sum()), int(past.sum())
    changed_sequences = int(moved.any(dim=1).sum())
    return {
        "positions": changed_positions / past_positions,
        "sequences": changed_sequences / n,
        "changed": changed_positions,
        "past": past_positions,
        "sequences_changed": changed_sequences,
    }


def measure(
    n_hashes: int,
    length: int = 256,
    vocab: int = 64,
    d_model: int = 64,
    n_heads: int = 4,
    bucket_size: int = 32,
    n_sequences: int = 64,
    seed: int = 0,
    state_dict: dict | None = None,
    batch_size: int = 8,
) -> dict[str, float]:
    """Build a 1-layer causal LSH model and run :func:`causal_leak_fraction` on task data.

    Sequences are processed ``batch_size`` at a time (each batch with its own rotations).
    Returns the same keys as :func:`causal_leak_fraction`, over all sequences.
    """
    torch.manual_seed(seed)
    model = ReformerLM(
        vocab,
        d_model=d_model,
        n_heads=n_heads,
        d_ff=d_model,
        max_seq_len=length,
        bucket_size=bucket_size,
        n_hashes=n_hashes,
    )
    if state_dict is not None:
        model.load_state_dict(state_dict)
    model = model.double().eval()
    rng = np.random.default_rng(seed)
    tokens = torch.from_numpy(generate_duplication(n_sequences, length, vocab, rng))
    replacement = torch.from_numpy(generate_duplication(n_sequences, length, vocab, rng))
    splits = torch.from_numpy(rng.integers(0, length - 1, size=n_sequences))
    totals = {"changed": 0, "past": 0, "sequences_changed": 0}
    for k, start in enumerate(range(0, n_sequences, batch_size)):
        part = slice(start, start + batch_size)
        out = causal_leak_fraction(
            model, tokens[part], replacement[part], splits[part], seed=seed + k
        )
        for key in totals:
            totals[key] += out[key]
    return {
        "positions": totals["changed"] / totals["past"],
        "sequences": totals["sequences_changed"] / n_sequences,
        **totals,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Print the leak fractions for several numbers of hashing rounds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-hashes", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=64)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--bucket-size", type=int, default=32)
    parser.add_argument("--sequences", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--state-dict", default=None, help="weights of a matching ReformerLM")
    args = parser.parse_args(argv)
    state = torch.load(args.state_dict, map_location="cpu") if args.state_dict else None
    print(
        f"duplication task, length {args.length}, vocab {args.vocab}, bucket {args.bucket_size}, "
        f"{args.sequences} sequences, {'trained' if state else 'untrained'} 1-layer model"
    )
    print(f"{'rounds':>6} {'past positions changed':>24} {'sequences affected':>20}")
    for n_hashes in args.n_hashes:
        out = measure(
            n_hashes,
            length=args.length,
            vocab=args.vocab,
            d_model=args.d_model,
            bucket_size=args.bucket_size,
            n_sequences=args.sequences,
            seed=args.seed,
            state_dict=state,
        )
        print(f"{n_hashes:>6} {out['positions']:>24.4f} {out['sequences']:>20.4f}")


if __name__ == "__main__":
    main()
