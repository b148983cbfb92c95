"""Full attention against plain softmax attention written out here."""

from __future__ import annotations

import math

import pytest
import torch

from reformer.attention import FullCrossAttention, FullSelfAttention


def heads(t, h):
    b, l, _ = t.shape
    return t.view(b, l, h, -1).transpose(1, 2)  # (b, h, l, d)


def attend(q, k, v, allowed, self_value=None):
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if self_value is not None:
        s = s.masked_fill(torch.eye(s.shape[-1], dtype=torch.bool), self_value)
    s = s.masked_fill(~allowed, float("-inf"))
    out = torch.softmax(s, dim=-1) @ v  # (b, h, l, d)
    b, h, l, d = out.shape
    return out.transpose(1, 2).reshape(b, l, h * d)


def padding_mask(b, l):
    mask = torch.ones(b, l, dtype=torch.bool)
    mask[0, l - 3 :] = False
    mask[-1, 1:3] = False
    return mask


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("with_mask", [False, True])
def test_self_attention_matches_softmax_attention(causal, with_mask):
    torch.manual_seed(0)
    attn = FullSelfAttention(16, 4, causal=causal).double()
    b, l = 2, 10
    x = torch.randn(b, l, 16, dtype=torch.float64)
    mask = padding_mask(b, l) if with_mask else None
    q, k, v = (heads(x @ lin.weight.T, 4) for lin in (attn.to_q, attn.to_k, attn.to_v))
    allowed = torch.ones(l, l, dtype=torch.bool)
    if causal:
        allowed = allowed.tril()
    allowed = allowed[None, None]
    if mask is not None:
        allowed = allowed & mask[:, None, None, :]
    expected = attend(q, k, v, allowed) @ attn.to_out.weight.T
    out = attn(x, mask=mask)
    if mask is not None:  # a padded query may have no allowed key: compare real ones
        out, expected = out[mask], expected[mask]
    assert (out - expected).abs().max() < 1e-10


@pytest.mark.parametrize("causal", [False, True])
def test_shared_qk_with_padding(causal):
    torch.manual_seed(0)
    attn = FullSelfAttention(16, 2, causal=causal, shared_qk=True).double()
    b, l = 2, 9
    x = torch.randn(b, l, 16, dtype=torch.float64)
    mask = padding_mask(b, l)
    q, v = heads(x @ attn.to_qk.weight.T, 2), heads(x @ attn.to_v.weight.T, 2)
    k = q / q.norm(dim=-1, keepdim=True)
    allowed = torch.ones(l, l, dtype=torch.bool)
    if causal:
        allowed = allowed.tril()
    allowed = allowed[None, None] & mask[:, None, None, :]
    expected = attend(q, k, v, allowed, self_value=-1e5) @ attn.to_out.weight.T
    assert (attn(x, mask=mask)[mask] - expected[mask]).abs().max() < 1e-10


def test_shared_qk_self_mask_only_when_nothing_else():
    # Causal: position 0 can only see itself, so its output is exactly its value.
    attn = FullSelfAttention(8, 1, causal=True, shared_qk=True).double()
    x = torch.randn(1, 5, 8, dtype=torch.float64)
    v0 = x[0, 0] @ attn.to_v.weight.T @ attn.to_out.weight.T
    assert torch.allclose(attn(x)[0, 0], v0, atol=1e-12)


@pytest.mark.parametrize("causal", [False, True])
def test_shared_qk_self_mask_switch_against_softmax_attention(causal):
    """self_mask=False: position i may attend to itself like any key (no -1e5 on the
    diagonal); self_mask=True: the paper's -1e5. Both against the written-out softmax."""
    torch.manual_seed(0)
    attn = FullSelfAttention(16, 2, causal=causal, shared_qk=True, self_mask=False).double()
    l = 9
    x = torch.randn(2, l, 16, dtype=torch.float64)
    q = heads(x @ attn.to_qk.weight.T, 2)
    k = q / q.norm(dim=-1, keepdim=True)
    v = heads(x @ attn.to_v.weight.T, 2)
    allowed = torch.ones(l, l, dtype=torch.bool)
    allowed = (allowed.tril() if causal else allowed)[None, None]
    without = attend(q, k, v, allowed) @ attn.to_out.weight.T
    assert (attn(x) - without).abs().max() < 1e-10
    attn.self_mask = True  # a plain attribute
    with_mask = attend(q, k, v, allowed, self_value=-1e5) @ attn.to_out.weight.T
    assert (attn(x) - with_mask).abs().max() < 1e-10
    assert (with_mask - without).abs().max() > 1e-3


@pytest.mark.parametrize("causal", [False, True])
def test_shared_qk_raw_keys_against_softmax_attention(causal):
    """unit_keys=False: the keys are the raw queries (fast.ai's full-attention path), with
    the self-mask; the default normalises them (the paper)."""
    torch.manual_seed(1)
    attn = FullSelfAttention(16, 2, causal=causal, shared_qk=True, unit_keys=False).double()
    l = 9
    x = torch.randn(2, l, 16, dtype=torch.float64)
    q = heads(x @ attn.to_qk.weight.T, 2)
    v = heads(x @ attn.to_v.weight.T, 2)
    allowed = torch.ones(l, l, dtype=torch.bool)
    allowed = (allowed.tril() if causal else allowed)[None, None]
    raw = attend(q, q, v, allowed, self_value=-1e5) @ attn.to_out.weight.T
    assert (attn(x) - raw).abs().max() < 1e-10
    attn.unit_keys = True
    unit = attend(q, q / q.norm(dim=-1, keepdim=True), v, allowed, self_value=-1e5)
    assert (attn(x) - unit @ attn.to_out.weight.T).abs().max() < 1e-10


def test_cross_attention_matches_softmax_attention():
    torch.manual_seed(0)
    attn = FullCrossAttention(16, 4).double()
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    context = torch.randn(2, 7, 16, dtype=torch.float64)
    mask = padding_mask(2, 7)
    q = heads(x @ attn.to_q.weight.T, 4)
    k, v = heads(context @ attn.to_k.weight.T, 4), heads(context @ attn.to_v.weight.T, 4)
    allowed = mask[:, None, None, :].expand(2, 1, 5, 7)
    expected = attend(q, k, v, allowed) @ attn.to_out.weight.T
    assert (attn(x, context, context_mask=mask) - expected).abs().max() < 1e-10
    unmasked = attend(q, k, v, torch.ones(1, 1, 5, 7, dtype=torch.bool)) @ attn.to_out.weight.T
    assert (attn(x, context) - unmasked).abs().max() < 1e-10


def test_fully_padded_context_stays_finite():
    attn = FullCrossAttention(8, 2)
    out = attn(torch.randn(1, 3, 8), torch.randn(1, 4, 8), torch.zeros(1, 4, dtype=torch.bool))
    assert torch.isfinite(out).all()


def test_parameter_names():
    assert set(FullSelfAttention(8, 2).state_dict()) == {
        "to_q.weight",
        "to_k.weight",
        "to_v.weight",
        "to_out.weight",
    }
    assert set(FullSelfAttention(8, 2, shared_qk=True, bias=True).state_dict()) == {
        "to_qk.weight",
        "to_qk.bias",
        "to_v.weight",
        "to_v.bias",
        "to_out.weight",
        "to_out.bias",
    }


def test_dropout_only_in_training():
    attn = FullSelfAttention(8, 2, dropout=0.5)
    x = torch.randn(1, 6, 8)
    attn.eval()
    assert torch.equal(attn(x), attn(x))
    attn.train()
    torch.manual_seed(0)
    a = attn(x)
    torch.manual_seed(0)
    assert torch.equal(a, attn(x))  # dropout follows the global RNG
    assert not torch.equal(a, attn(x))


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"d_model=6.*n_heads=4"):
        FullSelfAttention(6, 4)
    with pytest.raises(ValueError, match="dropout"):
        FullCrossAttention(8, 2, dropout=1.5)
    with pytest.raises(ValueError, match="mask"):
        FullSelfAttention(8, 2)(torch.randn(1, 4, 8), mask=torch.ones(1, 5, dtype=torch.bool))
