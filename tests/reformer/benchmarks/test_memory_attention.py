"""Activation memory of one attention layer, counted as bytes saved for backward (issue 3.4).

LSH attention keeps ``O(l * n_rounds * 2 * bucket_size)`` per head, linear in the length;
full attention on the plain math path keeps the ``(l, l)`` attention matrix, quadratic.
The full-attention check goes from 1k to 8k tokens (16k would hold about 2 GB).
"""

from __future__ import annotations

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from reformer.attention import FullSelfAttention, LSHSelfAttention
from reformer.memory import saved_tensor_bytes


def saved(layer, length):
    x = torch.randn(1, length, 32, requires_grad=True)
    return saved_tensor_bytes(layer, x, ignore=layer.parameters())


def test_lsh_saved_bytes_grow_linearly():
    torch.manual_seed(0)
    lsh = LSHSelfAttention(32, 2, bucket_size=64, n_hashes=2, causal=True)
    ratio = saved(lsh, 16384) / saved(lsh, 1024)
    assert 12 <= ratio <= 24, ratio


def test_full_attention_saved_bytes_grow_quadratically_on_the_math_path():
    torch.manual_seed(0)
    full = FullSelfAttention(32, 2, causal=True, shared_qk=True)
    with sdpa_kernel(SDPBackend.MATH):
        small, large = saved(full, 1024), saved(full, 8192)
    # 8x the length: a linear layer would give about 8, a quadratic one about 64.
    assert large / small > 40, large / small


def test_saved_tensor_bytes_counts_each_storage_once():
    x = torch.randn(10, 10, requires_grad=True)
    with saved_tensor_bytes() as counter:
        y = x.exp()  # saves y (400 bytes)
        y.sum().backward()
        z = x * x  # saves x twice: one storage
    assert counter.total == 2 * 400
    assert counter.count == 2
    assert saved_tensor_bytes(lambda t: (t * 2).sum(), x) == 0  # scalar factor: nothing saved
    del z
