"""LSH attention against references written here from the paper's definitions.

* ``shared_qk_reference``: full shared-QK attention with the self-mask, plain softmax math.
* ``brute_force_lsh``: Eq. 16's attention sets built explicitly from the bucket ids, without
  sorting and without chunks, O(rounds * length^2).
"""

from __future__ import annotations

import math

import pytest
import torch

from reformer.attention import FullSelfAttention, LSHSelfAttention, get_rng_states, set_rng_states

SELF = -1e5  # paper, Eq. 16


def project(attn, x):
    """q (= unnormalised shared qk) and v as (b, h, l, d), from the module's weights."""
    b, l, _ = x.shape
    h = attn.n_heads
    q = (x @ attn.to_qk.weight.T).view(b, l, h, -1).transpose(1, 2)
    v = (x @ attn.to_v.weight.T).view(b, l, h, -1).transpose(1, 2)
    return q, v


def finish(attn, p, v):
    """Weights p (b, h, l, l) -> module output (b, l, d_model)."""
    out = p @ v  # (b, h, l, d)
    b, h, l, d = out.shape
    return out.transpose(1, 2).reshape(b, l, h * d) @ attn.to_out.weight.T


def scores(q):
    k = q / q.norm(dim=-1, keepdim=True)
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    l = q.shape[-2]
    return s.masked_fill(torch.eye(l, dtype=torch.bool), SELF)  # replaced, not added


def shared_qk_reference(attn, x, causal, mask=None):
    q, v = project(attn, x)
    l = x.shape[1]
    s = scores(q)
    allowed = torch.ones(l, l, dtype=torch.bool)
    if causal:
        allowed = allowed.tril()
    allowed = allowed[None, None]
    if mask is not None:
        allowed = allowed & mask[:, None, None, :]
    s = s.masked_fill(~allowed, -1e300)  # finite: no nan for rows with nothing allowed
    return finish(attn, torch.softmax(s, dim=-1), v)


def reference_hash(q, rotations):
    """The paper's h(x) = argmax([xR; -xR]): (b, h, l, d) -> (b, h, r, l) bucket ids."""
    proj = torch.einsum("bhld,hrdk->bhrlk", q, rotations)
    return torch.cat([proj, -proj], dim=-1).argmax(dim=-1)


def brute_force_lsh(attn, x, rotations, causal, mask=None, dedupe=True, across=False):
    """Union (dedupe) or multiset (no dedupe) of the rounds' attention sets of Eq. 16."""
    buckets = reference_hash(project(attn, x)[0], rotations)
    return brute_force_from_buckets(attn, x, buckets, causal, mask, dedupe, across)


def brute_force_from_buckets(attn, x, buckets, causal, mask=None, dedupe=True, across=False):
    """As brute_force_lsh, from given (b, h, r, l) bucket ids."""
    q, v = project(attn, x)
    l, m = x.shape[1], attn.bucket_size
    bi, bj = buckets[..., :, None], buckets[..., None, :]
    pos = torch.arange(l)
    i, j = pos[:, None], pos[None, :]
    # Rank in the order (bucket, position), counted rather than sorted.
    rank = ((bj < bi) | ((bj == bi) & (j < i))).sum(-1)  # (b, h, r, l)
    chunk = rank // m
    ci, cj = chunk[..., :, None], chunk[..., None, :]
    in_set = (cj == ci) | (cj == ci - 1)  # (b, h, r, l, l)
    if not across:
        in_set &= bi == bj
    if causal:
        in_set &= j <= i
    n = in_set.sum(dim=2)  # N_ij: rounds in which j is in i's set, (b, h, l, l)
    allowed = n > 0
    if mask is not None:
        allowed &= mask[:, None, None, :]
    s = scores(q)
    if not dedupe:
        s = s + n.clamp(min=1).to(s.dtype).log()  # multiset: weight N_ij exp(s_ij)
    s = s.masked_fill(~allowed, -1e300)  # finite: no nan for rows with nothing allowed
    return finish(attn, torch.softmax(s, dim=-1), v), n


def fixed_rotations(attn, n_buckets, seed):
    g = torch.Generator().manual_seed(seed)
    shape = (attn.n_heads, attn.n_hashes, attn.d_head, n_buckets // 2)
    rotations = torch.randn(shape, generator=g, dtype=torch.float64)
    attn.random_rotations = lambda n, device: rotations  # the documented test hook
    return rotations


def make(seed=0, **kw):
    torch.manual_seed(seed)
    kw.setdefault("d_model", 16)
    kw.setdefault("n_heads", 2)
    return LSHSelfAttention(**kw).double()


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("n_hashes", [1, 3])
@pytest.mark.parametrize("dedupe", [True, False])
@pytest.mark.parametrize("one", ["bucket", "chunk"])
def test_one_bucket_or_one_chunk_equals_full_shared_qk(causal, n_hashes, dedupe, one):
    l = 24
    kw = {"n_buckets": 4, "attend_across_buckets": True} if one == "chunk" else {"n_buckets": 1}
    attn = make(
        bucket_size=l, n_hashes=n_hashes, causal=causal, allow_duplicate_attention=not dedupe, **kw
    )
    x = torch.randn(3, l, 16, dtype=torch.float64)
    expected = shared_qk_reference(attn, x, causal)
    assert (attn(x) - expected).abs().max() < 1e-5
    # ... and so does full attention with shared QK, loaded from the LSH layer's weights.
    full = FullSelfAttention(16, 2, causal=causal, shared_qk=True).double()
    full.load_state_dict(attn.state_dict())
    assert (full(x) - expected).abs().max() < 1e-5


def test_one_bucket_with_padding_equals_full_shared_qk():
    l = 16
    attn = make(bucket_size=l, n_hashes=2, bucket_rule="half")  # l / l = 1 bucket
    x = torch.randn(2, l, 16, dtype=torch.float64)
    mask = torch.ones(2, l, dtype=torch.bool)
    mask[0, 10:] = False
    mask[1, :3] = False
    expected = shared_qk_reference(attn, x, causal=False, mask=mask)
    assert (attn(x, mask=mask) - expected).abs().max() < 1e-5


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dedupe", [True, False])
@pytest.mark.parametrize("n_hashes", [1, 2, 4, 8])
@pytest.mark.parametrize("padded", [False, True])
def test_matches_brute_force_reference(causal, dedupe, n_hashes, padded):
    attn = make(
        bucket_size=4, n_hashes=n_hashes, causal=causal, allow_duplicate_attention=not dedupe
    )
    l = 32  # 8 buckets, 8 chunks per round
    x = torch.randn(2, l, 16, dtype=torch.float64, requires_grad=True)
    mask = torch.ones(2, l, dtype=torch.bool)
    if padded:
        mask[0, 25:] = False
        mask[1, torch.randperm(l)[:6]] = False
    rotations = fixed_rotations(attn, l // 4, seed=n_hashes)
    expected, n = brute_force_lsh(attn, x, rotations, causal, mask, dedupe=dedupe)
    out = attn(x, mask=mask if padded else None)
    # Compare real query positions (a padded query may have no allowed key at all).
    out, expected = out[mask], expected[mask]
    assert (out - expected).abs().max() < 1e-10
    # The gradients (through the fixed buckets) agree too.
    g = torch.randn_like(out)
    (gx,) = torch.autograd.grad(out, x, g)
    (gx_ref,) = torch.autograd.grad(expected, x, g)
    assert (gx - gx_ref).abs().max() < 1e-8
    if n_hashes > 1:
        assert n.max() > 1  # duplicates occur, so the correction is exercised


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dedupe", [True, False])
@pytest.mark.parametrize("across", [False, True])
def test_matches_brute_force_with_padding_and_wide_buckets(causal, dedupe, across):
    # n_buckets=2 with 8 chunks: buckets span several chunks, so look-back and the
    # no-wrap-around rule of the first chunk matter.
    attn = make(
        seed=1,
        bucket_size=4,
        n_hashes=4,
        n_buckets=2,
        causal=causal,
        allow_duplicate_attention=not dedupe,
        attend_across_buckets=across,
    )
    l = 32
    x = torch.randn(2, l, 16, dtype=torch.float64)
    mask = torch.ones(2, l, dtype=torch.bool)
    mask[0, 20:] = False
    mask[1, torch.randperm(l)[:9]] = False
    rotations = fixed_rotations(attn, 2, seed=7)
    expected, _ = brute_force_lsh(attn, x, rotations, causal, mask, dedupe, across)
    out = attn(x, mask=mask)
    # Compare real query positions (a padded query may have no allowed key at all).
    assert (out[mask] - expected[mask]).abs().max() < 1e-10


def test_duplicate_correction_changes_the_output():
    l, kw = 32, {"bucket_size": 4, "n_hashes": 4, "causal": True}
    x = torch.randn(1, l, 16, dtype=torch.float64)
    with_, without = make(**kw), make(**kw, allow_duplicate_attention=True)
    fixed_rotations(with_, 8, seed=3)
    fixed_rotations(without, 8, seed=3)
    assert (with_(x) - without(x)).abs().max() > 1e-4


def test_first_position_attends_to_itself_when_causal():
    attn = make(bucket_size=4, n_hashes=2, causal=True)
    x = torch.randn(1, 16, 16, dtype=torch.float64)
    _, v = project(attn, x)
    expected = v[:, :, 0].reshape(1, 16) @ attn.to_out.weight.T
    assert torch.allclose(attn(x)[:, 0], expected, atol=1e-12)


def test_causal_no_gradient_from_future():
    attn = make(bucket_size=4, n_hashes=4, causal=True)
    x = torch.randn(1, 32, 16, dtype=torch.float64, requires_grad=True)
    out = attn(x)
    for i in (0, 5, 17):
        (g,) = torch.autograd.grad(out[0, i].sum(), x, retain_graph=True)
        assert g[0, i + 1 :].abs().max() == 0
        assert g[0, : i + 1].abs().max() > 0


def test_n_hashes_changeable_after_construction():
    attn = make(bucket_size=4, n_hashes=1, causal=True)
    x = torch.randn(2, 32, 16, dtype=torch.float64)
    attn.n_hashes = 8
    rotations = fixed_rotations(attn, 8, seed=0)
    assert rotations.shape[1] == 8
    expected, _ = brute_force_lsh(attn, x, rotations, causal=True)
    assert (attn(x) - expected).abs().max() < 1e-10


def test_lsh_and_full_state_dicts_are_interchangeable():
    lsh = LSHSelfAttention(16, 2)
    full = FullSelfAttention(16, 2, shared_qk=True)
    full.load_state_dict(lsh.state_dict())
    lsh.load_state_dict(full.state_dict())
    assert set(lsh.state_dict()) == {"to_qk.weight", "to_v.weight", "to_out.weight"}


def test_generator_makes_forward_reproducible_and_rng_state_restores_it():
    attn = make(bucket_size=4, n_hashes=2, generator=torch.Generator().manual_seed(5))
    x = torch.randn(1, 32, 16, dtype=torch.float64)
    states = get_rng_states(attn)
    y1, y2 = attn(x), attn(x)
    assert not torch.equal(y1, y2)  # fresh rotations on every forward
    set_rng_states(attn, states)
    assert torch.equal(attn(x), y1)
    attn.set_rng_state(states[0])
    assert torch.equal(attn(x), y1)


def test_global_rng_and_dropout_restore():
    # Without a generator, rotations and dropout both come from the global RNG.
    attn = make(bucket_size=4, n_hashes=2, dropout=0.3).train()
    x = torch.randn(1, 32, 16, dtype=torch.float64)
    state = torch.get_rng_state()
    y1 = attn(x)
    torch.set_rng_state(state)
    assert torch.equal(attn(x), y1)
    attn.eval()
    fixed_rotations(attn, 8, seed=1)
    assert torch.equal(attn(x), attn(x))  # no dropout in evaluation


def _lsh_vs_full_error(n_hashes, causal, draws=20):
    """Mean |LSH - full| over 20 seeded draws of inputs and rotations (same weights)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    lsh = LSHSelfAttention(
        32, 1, bucket_size=16, n_hashes=n_hashes, causal=causal, generator=g
    ).double()
    full = FullSelfAttention(32, 1, causal=causal, shared_qk=True).double()
    full.load_state_dict(lsh.state_dict())
    xs = torch.randn(draws, 1, 128, 32, dtype=torch.float64)  # 8 buckets, 8 chunks
    return sum((lsh(x) - full(x)).abs().mean().item() for x in xs) / draws


@pytest.mark.parametrize("causal", [False, True])
def test_more_rounds_are_closer_to_full_attention(causal):
    e1, e2, e4, e8 = (_lsh_vs_full_error(r, causal) for r in (1, 2, 4, 8))
    assert e1 > e2 > e4 > e8, (e1, e2, e4, e8)
    assert e8 < 0.5 * e1, (e1, e8)


@pytest.mark.parametrize(
    ("kwargs", "length", "words"),
    [
        ({"bucket_size": 4, "bucket_rule": "half"}, 12, ["12", "bucket_size", "3"]),  # odd
        ({"bucket_size": 4}, 30, ["30", "bucket_size=4"]),  # not divisible
        ({"bucket_size": 4, "n_buckets": 3}, 16, ["n_buckets=3"]),
    ],
)
def test_impossible_shapes_raise_one_line_errors(kwargs, length, words):
    def build_and_run():
        LSHSelfAttention(8, 2, **kwargs)(torch.randn(1, length, 8))

    with pytest.raises(ValueError) as info:
        build_and_run()
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_d_model_not_divisible_by_heads():
    with pytest.raises(ValueError, match=r"d_model=10.*n_heads=4"):
        LSHSelfAttention(10, 4)
    with pytest.raises(ValueError, match=r"d_model=10.*n_heads=4"):
        FullSelfAttention(10, 4)


def test_bad_padding_mask():
    with pytest.raises(ValueError, match="mask"):
        LSHSelfAttention(8, 2, bucket_size=4)(torch.randn(1, 8, 8), mask=torch.ones(1, 8))


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_gradcheck_with_padding_dropout_and_rounds(causal, dropout):
    # Finite differences are the independent reference for the hand-written backward.
    from reformer.attention import lsh_attend

    torch.manual_seed(0)
    b, l, h, d, m = 1, 8, 2, 2, 2
    qk = torch.randn(b, l, h, d, dtype=torch.float64, requires_grad=True)
    v = torch.randn(b, l, h, d, dtype=torch.float64, requires_grad=True)
    buckets = torch.randint(0, 4, (b, h, 3, l))
    mask = torch.ones(b, l, dtype=torch.bool)
    mask[0, 5:] = False

    def fn(qk, v):
        torch.manual_seed(1)  # the same dropout mask on every evaluation
        return lsh_attend(qk, v, buckets, m, causal=causal, mask=mask, dropout_p=dropout)

    assert torch.autograd.gradcheck(fn, (qk, v))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_low_precision_and_autocast_are_finite(dtype):
    torch.manual_seed(0)
    attn = LSHSelfAttention(32, 4, bucket_size=8, n_hashes=4, causal=True)
    x = torch.randn(2, 64, 32, requires_grad=True)
    mask = torch.ones(2, 64, dtype=torch.bool)
    mask[1, 50:] = False
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        out = attn(x, mask=mask)
    out.float().square().sum().backward()
    assert out.dtype == dtype
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in attn.parameters())


def test_fully_masked_query_gives_zero_and_no_nan():
    attn = make(bucket_size=4, n_hashes=2, causal=True)
    x = torch.randn(1, 16, 16, dtype=torch.float64, requires_grad=True)
    mask = torch.ones(1, 16, dtype=torch.bool)
    mask[0, :3] = False  # causal: queries 0..2 see only padded keys
    out = attn(x, mask=mask)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    assert out[0, :3].abs().max() == 0


@pytest.mark.parametrize("causal", [False, True])
def test_two_chunks_per_round_match_brute_force(causal):
    # c = 2: the second chunk looks back at the first, the first at nothing.
    attn = make(bucket_size=4, n_hashes=3, causal=causal)
    x = torch.randn(3, 8, 16, dtype=torch.float64)
    rotations = fixed_rotations(attn, 2, seed=11)
    expected, _ = brute_force_lsh(attn, x, rotations, causal)
    assert (attn(x) - expected).abs().max() < 1e-10


def test_hash_equals_argmax_of_concatenation_in_slices_and_on_ties(monkeypatch):
    from reformer.attention import hashing

    g = torch.Generator().manual_seed(0)
    qk = torch.randn(2, 96, 3, 8, generator=g)  # (b, l, h, d)
    qk[0, 5] = 0.0  # every projection 0: the first index of the positive half wins
    rotations = torch.randn(3, 2, 8, 6, generator=g)
    rotations[:, :, :, 1] = -rotations[:, :, :, 0]  # exact +/- ties between halves
    expected = reference_hash(qk.transpose(1, 2), rotations)
    monkeypatch.setattr(hashing, "_HASH_SLAB", 2 * 3 * 2 * 6 * 7)  # slices of 7 positions
    assert torch.equal(hashing.hash_vectors(qk, rotations), expected)
    assert (expected[0, :, :, 5] == 0).all()


def test_factorised_buckets_are_the_mixed_radix_of_independent_hashes():
    g = torch.Generator().manual_seed(1)
    qk = torch.randn(2, 64, 2, 8, generator=g)
    r1, r2 = torch.randn(2, 3, 8, 2, generator=g), torch.randn(2, 3, 8, 3, generator=g)
    from reformer.attention.lsh import hash_vectors

    h1, h2 = reference_hash(qk.transpose(1, 2), r1), reference_hash(qk.transpose(1, 2), r2)
    buckets = hash_vectors(qk, [r1, r2])
    assert torch.equal(buckets, h1 + 4 * h2)
    assert int(buckets.max()) < 4 * 6 and len(buckets.unique()) > 8


@pytest.mark.parametrize("causal", [False, True])
def test_factorised_buckets_match_brute_force(causal):
    attn = make(bucket_size=4, n_hashes=2, causal=causal, n_buckets=(2, 4))
    g = torch.Generator().manual_seed(3)
    factors = [
        torch.randn(attn.n_heads, 2, attn.d_head, n // 2, generator=g, dtype=torch.float64)
        for n in (2, 4)
    ]
    attn.random_rotations = lambda n, device: factors
    x = torch.randn(2, 32, 16, dtype=torch.float64)
    q, _ = project(attn, x)
    buckets = reference_hash(q, factors[0]) + 2 * reference_hash(q, factors[1])
    assert len(buckets.unique()) > 4  # both factors split the positions
    expected, _ = brute_force_from_buckets(attn, x, buckets, causal)
    assert (attn(x) - expected).abs().max() < 1e-10


def test_factorised_n_buckets_must_be_even_factors():
    with pytest.raises(ValueError, match=r"n_buckets=\(4, 3\).*even factors"):
        LSHSelfAttention(8, 2, n_buckets=(4, 3))


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("padded", [False, True])
def test_head_chunks_equal_all_heads_at_once_with_less_saved_memory(bias, padded):
    from reformer.memory import saved_tensor_bytes

    kw = {"d_model": 32, "n_heads": 4, "bucket_size": 4, "n_hashes": 2, "causal": True}
    whole = make(bias=bias, **kw)
    chunked = make(bias=bias, head_chunks=4, **kw)
    chunked.load_state_dict(whole.state_dict())
    rotations = fixed_rotations(whole, 8, seed=5)
    chunked.random_rotations = lambda n, device: rotations
    x = torch.randn(2, 32, 32, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 32, 32, dtype=torch.float64)
    mask = torch.arange(32) < torch.tensor([[32], [27]]) if padded else None
    results = []
    for attn in (whole, chunked):
        with saved_tensor_bytes(ignore=list(attn.parameters())) as counter:
            out = attn(x, mask=mask)
        grads = torch.autograd.grad(out, [x, *attn.parameters()], g)
        results.append((out, grads, counter.total))
    (out_w, grads_w, saved_w), (out_c, grads_c, saved_c) = results
    assert (out_w - out_c).abs().max() < 1e-12
    for a, b in zip(grads_w, grads_c, strict=True):
        assert (a - b).abs().max() < 1e-10
    assert saved_c < saved_w / 2  # the groups keep only their input until backward


def test_head_chunks_under_autocast_match_all_heads_at_once():
    kw = {"d_model": 32, "n_heads": 4, "bucket_size": 4, "n_hashes": 1, "causal": True}
    whole, chunked = make(**kw).float(), make(head_chunks=2, **kw).float()
    chunked.load_state_dict(whole.state_dict())
    rotations = fixed_rotations(whole, 8, seed=7).float()
    chunked.random_rotations = lambda n, device: rotations
    x = torch.randn(2, 32, 32, requires_grad=True)
    grads = []
    for attn in (whole, chunked):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = attn(x)
        grads.append(torch.autograd.grad(out.float().square().sum(), [x, *attn.parameters()]))
    for a, b in zip(*grads, strict=True):
        assert a.dtype == b.dtype == torch.float32
        assert (a - b).abs().max() <= 0.05 * a.abs().max()


def test_head_chunks_recompute_reuses_the_dropout_masks():
    # The gradient of the checkpointed groups must equal that of the same groups run
    # without checkpointing from the same RNG state (same rotations, same dropout masks).
    attn = make(d_model=32, n_heads=4, bucket_size=4, n_hashes=2, causal=True, dropout=0.3)
    attn.head_chunks = 2
    fixed_rotations(attn, 8, seed=6)
    x = torch.randn(2, 32, 32, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 32, 32, dtype=torch.float64)
    torch.manual_seed(11)
    out = attn(x)
    (gx,) = torch.autograd.grad(out, x, g)
    torch.manual_seed(11)
    rotations = attn.random_rotations(8, x.device)
    ref = sum(attn._attend(x, rotations, h, h + 2, None) for h in (0, 2))
    (gx_ref,) = torch.autograd.grad(ref, x, g)
    assert (out - ref).abs().max() < 1e-12
    assert (gx - gx_ref).abs().max() < 1e-10


def test_head_chunks_must_divide_heads():
    attn = LSHSelfAttention(8, 4, bucket_size=4, head_chunks=3)
    with pytest.raises(ValueError, match=r"head_chunks=3 .* n_heads=4"):
        attn(torch.randn(1, 8, 8))


@pytest.mark.parametrize("head_chunks", [1, 2])
def test_norm_handed_to_the_layer_equals_norm_applied_before(monkeypatch, head_chunks):
    # PreNorm hands its LayerNorm to LSH attention, which (in head groups) applies it in slabs
    # of positions and writes its gradients by hand: the reference is norm(x) then attention.
    import reformer.attention.head_groups as head_groups

    monkeypatch.setattr(head_groups, "_SLAB_ELEMENTS", 2 * 5 * 32)  # slabs of 5 positions, uneven
    kw = {"d_model": 32, "n_heads": 4, "bucket_size": 4, "n_hashes": 2, "causal": True}
    attn = make(bias=True, head_chunks=head_chunks, **kw)
    rotations = fixed_rotations(attn, 8, seed=9)
    norm = torch.nn.LayerNorm(32).double()
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, 32, 32, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 32, 32, dtype=torch.float64)
    params = [x, *attn.parameters(), *norm.parameters()]
    out = attn(x, norm=norm)
    grads = torch.autograd.grad(out, params, g)
    reference = make(bias=True, **kw)
    reference.load_state_dict(attn.state_dict())
    reference.random_rotations = lambda n, device: rotations
    out_ref = reference(norm(x))
    grads_ref = torch.autograd.grad(out_ref, [x, *reference.parameters(), *norm.parameters()], g)
    assert (out - out_ref).abs().max() < 1e-12
    for a, b in zip(grads, grads_ref, strict=True):
        assert (a - b).abs().max() < 1e-10


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("n_hashes", [1, 2])
def test_low_precision_matches_float64_brute_force(dtype, n_hashes):
    # float16's mask values (-5e4 self, -6e4 hard) are only 1e4 apart: masked keys must
    # still get exactly zero weight from the fused softmax.
    from reformer.attention.lsh import lsh_attend

    attn = make(bucket_size=4, n_hashes=n_hashes, causal=True)
    b, l = 2, 32
    x = torch.randn(b, l, 16, dtype=torch.float64)
    mask = torch.ones(b, l, dtype=torch.bool)
    mask[0, 27:] = False
    rotations = fixed_rotations(attn, l // 4, seed=3)
    buckets = reference_hash(project(attn, x)[0], rotations)
    expected, _ = brute_force_from_buckets(attn, x, buckets, causal=True, mask=mask)
    low = x.to(dtype)
    qk = (low @ attn.to_qk.weight.T.to(dtype)).view(b, l, attn.n_heads, -1)
    v = (low @ attn.to_v.weight.T.to(dtype)).view(b, l, attn.n_heads, -1)
    heads = lsh_attend(qk, v, buckets, attn.bucket_size, causal=True, mask=mask)
    out = heads.reshape(b, l, -1) @ attn.to_out.weight.T.to(dtype)
    assert out.dtype == dtype
    err = (out.double() - expected)[mask].abs().max()
    assert err < (5e-3 if dtype == torch.float16 else 3e-2), err
