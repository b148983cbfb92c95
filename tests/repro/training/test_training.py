"""Training building blocks against hand-computed references: schedules, Adafactor, metrics,
atomic checkpoints, exact resume, accumulation, and the stop on a non-finite loss.

The data and model are the kit's fixture paper's (``tests/repro/minipaper``): its copy task
and its tiny language model, with dropout where a test needs training to draw random
numbers (an exact resume must restore the random state too)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from minipaper.model import TinyLM
from minipaper.task import COPY
from torch import nn

from repro.config import TrainConfig
from repro.training import (
    DistContext,
    LanguageModelObjective,
    NonFiniteLossError,
    atomic_save,
    build_optimizer,
    build_scheduler,
    evaluate_lm,
    fit,
    load_checkpoint,
    lr_multiplier,
)

CPU = DistContext(0, 1, 0, 1, torch.device("cpu"), None)
LENGTH, VOCAB = 16, 8


load_split = COPY.load_split


@pytest.fixture(scope="module")
def dup_dir(tmp_path_factory) -> Path:
    """The copy task's splits: sequences ``0 w 0 w``, the second ``w`` counted."""
    out = tmp_path_factory.mktemp("data") / "copy"
    params = dict(length=LENGTH, vocab_size=VOCAB, n_train=64, n_valid=16, n_test=16, seed=0)
    return COPY.prepare(out, params)


def tiny_lm(stochastic: bool = True, seed: int = 0) -> TinyLM:
    """The fixture paper's model; ``stochastic``: with dropout, so training draws numbers."""
    torch.manual_seed(seed)
    return TinyLM(
        VOCAB,
        max_seq_len=LENGTH,
        width=16,
        heads=2,
        kind="fancy",
        dropout=0.1 if stochastic else 0.0,
        shape=(1, 16),
    )


# ----------------------------------------------------------------------------- schedules


@pytest.mark.parametrize(
    ("step", "schedule", "total", "warmup", "min_ratio", "expected"),
    [
        (0, "constant", 100, 4, 0.0, 0.25),
        (3, "constant", 100, 4, 0.0, 1.0),
        (50, "constant", 100, 4, 0.0, 1.0),
        (5, "linear", 10, 0, 0.0, 0.5),
        (5, "linear", 10, 0, 0.2, 0.6),
        (10, "cosine", 110, 10, 0.0, 1.0),
        (60, "cosine", 110, 10, 0.0, 0.5),
        (35, "cosine", 110, 10, 0.0, (1 + math.cos(math.pi / 4)) / 2),
        (110, "cosine", 110, 10, 0.1, 0.1),
        (99, "rsqrt", 1000, 100, 0.0, 1.0),
        (399, "rsqrt", 1000, 100, 0.0, 0.5),
        (9, "onecycle", 20, 10, 0.0, 1.0),
        (0, "onecycle", 20, 10, 0.0, 1 / 25 + (24 / 25) * (1 - math.cos(math.pi / 10)) / 2),
        (15, "onecycle", 20, 10, 0.0, 0.5),
    ],
)
def test_lr_multiplier_matches_formula(step, schedule, total, warmup, min_ratio, expected):
    assert lr_multiplier(step, schedule, total, warmup, min_ratio) == pytest.approx(expected)


def test_scheduler_sets_optimizer_lr_per_step():
    p = nn.Parameter(torch.zeros(2))
    opt = torch.optim.AdamW([p], lr=0.5)
    sched = build_scheduler(opt, "cosine", total_steps=8, warmup_steps=2)
    seen = []
    for _ in range(8):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    expected = [0.25, 0.5] + [0.5 * (1 + math.cos(math.pi * k / 6)) / 2 for k in range(6)]
    assert seen == pytest.approx(expected)


# ----------------------------------------------------------------------------- Adafactor


def adafactor_reference(x, grads, lr, eps1, eps2=1e-3, d=1.0):
    """Shazeer & Stern (2018), Algorithm 4 with relative step size, in plain Python floats.

    ``x`` is a matrix (list of rows) or a vector (list); returns the values after each step.
    """
    is_matrix = isinstance(x[0], list)
    x = [row[:] for row in x] if is_matrix else x[:]
    rows = len(x) if is_matrix else 1
    cols = len(x[0]) if is_matrix else len(x)
    R, C, v = [0.0] * rows, [0.0] * cols, [0.0] * cols
    out = []

    def flat(m):
        return [a for row in m for a in row] if is_matrix else list(m)

    for t, g in enumerate(grads, start=1):
        w = t**-0.8  # 1 - beta2_t
        rho = min(lr, 1 / math.sqrt(t))
        xs = flat(x)
        alpha = max(eps2, math.sqrt(sum(a * a for a in xs) / len(xs))) * rho
        if is_matrix:
            for i in range(rows):
                R[i] = (1 - w) * R[i] + w * sum(g[i][j] ** 2 for j in range(cols)) / cols
            for j in range(cols):
                C[j] = (1 - w) * C[j] + w * sum(g[i][j] ** 2 for i in range(rows)) / rows
            mean_r = sum(R) / rows
            u = [
                [g[i][j] / math.sqrt(max(R[i] * C[j] / mean_r, eps1**2)) for j in range(cols)]
                for i in range(rows)
            ]
        else:
            for j in range(cols):
                v[j] = (1 - w) * v[j] + w * g[j] ** 2
            u = [g[j] / math.sqrt(max(v[j], eps1**2)) for j in range(cols)]
        us = flat(u)
        denom = max(1.0, math.sqrt(sum(a * a for a in us) / len(us)) / d)
        if is_matrix:
            x = [[x[i][j] - alpha * u[i][j] / denom for j in range(cols)] for i in range(rows)]
        else:
            x = [x[j] - alpha * u[j] / denom for j in range(cols)]
        out.append(x)
    return out


def test_adafactor_matches_hand_computed_reference():
    torch.manual_seed(0)
    matrix = nn.Parameter(torch.randn(2, 3, dtype=torch.float64))
    vector = nn.Parameter(torch.randn(3, dtype=torch.float64))
    grads_m = [torch.randn(2, 3, dtype=torch.float64) for _ in range(3)]
    grads_v = [torch.randn(3, dtype=torch.float64) * 10 for _ in range(3)]
    lr = 0.05
    ref_m = adafactor_reference(
        matrix.tolist(), [g.tolist() for g in grads_m], lr, eps1=torch.finfo(torch.float64).eps
    )
    ref_v = adafactor_reference(
        vector.tolist(), [g.tolist() for g in grads_v], lr, eps1=torch.finfo(torch.float64).eps
    )
    opt = build_optimizer([matrix, vector], "adafactor", lr=lr)
    for t in range(3):
        matrix.grad, vector.grad = grads_m[t].clone(), grads_v[t].clone()
        opt.step()
        got = [a for row in matrix.detach().tolist() for a in row]
        assert got == pytest.approx([a for row in ref_m[t] for a in row], rel=1e-12, abs=1e-14)
        assert vector.detach().tolist() == pytest.approx(ref_v[t], rel=1e-12, abs=1e-14)


def test_weight_decay_spares_vectors():
    layer = nn.Linear(3, 3)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.bias.fill_(1.0)
    opt = build_optimizer(layer.parameters(), "adamw", lr=0.1, weight_decay=0.5)
    layer.weight.grad = torch.zeros(3, 3)
    layer.bias.grad = torch.zeros(3)
    opt.step()
    assert torch.allclose(layer.weight, torch.full((3, 3), 1 - 0.1 * 0.5))
    assert torch.equal(layer.bias, torch.ones(3))


# ----------------------------------------------------------------------------- metrics


class Oracle(nn.Module):
    """Puts all probability on the true next token."""

    def forward(self, tokens):
        return torch.nn.functional.one_hot(tokens.roll(-1, dims=1), VOCAB).float() * 50


class Uniform(nn.Module):
    def forward(self, tokens):
        return torch.zeros(*tokens.shape, VOCAB)


def test_evaluate_lm_against_known_models(dup_dir):
    test = load_split(dup_dir, "test")
    n_counted = len(test) * (LENGTH // 2 - 1)  # the second copy of w: length/2 - 1 symbols
    oracle = evaluate_lm(Oracle(), test, batch_size=5, device=torch.device("cpu"))
    assert oracle["accuracy"] == 1.0 and oracle["count"] == n_counted
    assert oracle["loss"] < 1e-10
    uniform = evaluate_lm(Uniform(), test, batch_size=5, device=torch.device("cpu"))
    assert uniform["loss"] == pytest.approx(math.log(VOCAB))
    assert uniform["bpc"] == pytest.approx(math.log2(VOCAB))
    assert uniform["accuracy"] == 0.0  # argmax picks 0, which never occurs inside w
    part = evaluate_lm(Oracle(), test, batch_size=4, device=torch.device("cpu"), max_batches=2)
    assert part["count"] == 8 * (LENGTH // 2 - 1)


def test_objective_loss_is_masked_mean_cross_entropy():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(VOCAB, 6), nn.Linear(6, VOCAB))
    tokens = torch.randint(0, VOCAB, (2, 5))
    mask = torch.tensor([[False, True, True, False, True], [True, False, False, True, True]])
    loss, correct, count = LanguageModelObjective(model)(tokens, mask)
    logp = torch.log_softmax(model(tokens), dim=-1)
    terms, right = [], 0
    for b in range(2):
        for t in range(4):  # the last position has no next token
            if mask[b, t]:
                terms.append(-logp[b, t, tokens[b, t + 1]].item())
                right += int(logp[b, t].argmax() == tokens[b, t + 1])
    assert loss.item() == pytest.approx(sum(terms) / len(terms), rel=1e-6)
    assert (int(correct), int(count)) == (right, len(terms))


# ----------------------------------------------------------------------------- checkpoints


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("cannot pickle this")


def test_atomic_save_never_leaves_a_partial_file(tmp_path):
    path = tmp_path / "checkpoint.pt"
    atomic_save({"step": 1}, path)
    with pytest.raises(RuntimeError, match="cannot pickle"):
        atomic_save({"step": 2, "bad": Unpicklable()}, path)
    assert torch.load(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary left


def test_load_checkpoint_of_garbage_is_one_line(tmp_path):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError) as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


class Crash(RuntimeError):
    pass


def test_resume_ends_identical_to_uninterrupted_run(dup_dir, tmp_path):
    """Interrupted at step 10 (last checkpoint: 8), resumed, the run ends bit-identical."""
    train, valid = load_split(dup_dir, "train"), load_split(dup_dir, "valid")
    cfg = TrainConfig(
        steps=12,
        batch_size=8,
        lr=3e-3,
        warmup_steps=2,
        log_every=2,
        checkpoint_every=4,
        valid_batches=1,
    )

    def run(model, checkpoint_path, desc, **kwargs):
        return fit(
            model,
            train,
            valid,
            cfg,
            CPU,
            seed=3,
            checkpoint_path=checkpoint_path,
            fingerprint="f",
            desc=desc,
            **kwargs,
        )

    reference = tiny_lm()
    ref_result = run(reference, tmp_path / "ref.pt", "reference")

    def crash_at_10(metrics, step):
        if step == 10:
            raise Crash("killed")

    ckpt = tmp_path / "run.pt"
    with pytest.raises(Crash):
        run(tiny_lm(), ckpt, "interrupted", on_log=crash_at_10)
    assert load_checkpoint(ckpt)["step"] == 8
    torch.manual_seed(12345)  # the resumed process starts with another RNG state
    resumed = tiny_lm()
    result = run(resumed, ckpt, "resumed")
    assert result.resumed_from == 8 and result.step == 12
    assert result.history == ref_result.history
    for (name, a), (_, b) in zip(
        reference.state_dict().items(), resumed.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_checkpoint_of_another_configuration_is_not_resumed(dup_dir, tmp_path):
    train = load_split(dup_dir, "train")
    cfg = TrainConfig(steps=4, batch_size=8, log_every=2, checkpoint_every=2, valid_batches=0)
    ckpt = tmp_path / "c.pt"
    fit(tiny_lm(False), train, None, cfg, CPU, checkpoint_path=ckpt, fingerprint="a")
    result = fit(tiny_lm(False), train, None, cfg, CPU, checkpoint_path=ckpt, fingerprint="b")
    assert result.resumed_from is None and result.step == 4


def test_same_seed_same_weights(dup_dir):
    train = load_split(dup_dir, "train")
    cfg = TrainConfig(steps=3, batch_size=8, log_every=3, valid_batches=0)
    a, b = tiny_lm(), tiny_lm()
    fit(a, train, None, cfg, CPU, seed=1)
    fit(b, train, None, cfg, CPU, seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))


def test_gradient_accumulation_matches_one_big_batch(dup_dir):
    train = load_split(dup_dir, "train")
    one = TrainConfig(
        steps=2, batch_size=8, grad_accum=1, log_every=1, valid_batches=0, clip_grad_norm=None
    )
    two = TrainConfig(**{**one.__dict__, "grad_accum": 2})
    a, b = tiny_lm(stochastic=False), tiny_lm(stochastic=False)
    ra = fit(a, train, None, one, CPU, seed=0)
    rb = fit(b, train, None, two, CPU, seed=0)
    for x, y in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(x, y, atol=1e-6)
    assert [r["train_loss"] for r in ra.history] == pytest.approx(
        [r["train_loss"] for r in rb.history], rel=1e-5
    )


class PoisonAt(nn.Module):
    """Wraps a model; its ``n``-th forward pass returns NaN logits."""

    def __init__(self, inner: nn.Module, n: int) -> None:
        super().__init__()
        self.inner, self.n, self.calls = inner, n, 0

    def forward(self, tokens):
        self.calls += 1
        logits = self.inner(tokens)
        return logits * float("nan") if self.calls == self.n else logits


def test_non_finite_loss_stops_naming_the_step_and_keeps_checkpoint(dup_dir, tmp_path):
    train = load_split(dup_dir, "train")
    cfg = TrainConfig(steps=20, batch_size=8, log_every=5, checkpoint_every=5, valid_batches=0)
    ckpt = tmp_path / "checkpoint.pt"
    model = PoisonAt(tiny_lm(stochastic=False), n=7)
    with pytest.raises(NonFiniteLossError) as info:
        fit(model, train, None, cfg, CPU, checkpoint_path=ckpt, fingerprint="x", desc="nan")
    message = str(info.value)
    assert "\n" not in message
    assert "at step 7" in message and f"{ckpt} (step 5) is kept" in message
    saved = load_checkpoint(ckpt)
    assert saved["step"] == 5
    assert all(torch.isfinite(t).all() for t in saved["model"].values())
    assert all(torch.isfinite(p).all() for p in model.parameters())  # step 7 was not applied


def test_source_digest_changes_with_the_code_and_nothing_else(tmp_path):
    from repro.training import source_digest

    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "sub" / "b.py").write_text("y = 2\n")
    (pkg / "notes.txt").write_text("not code\n")
    first = source_digest(pkg.rglob("*.py"))
    (pkg / "notes.txt").write_text("changed, still not code\n")
    assert source_digest(pkg.rglob("*.py")) == first
    (pkg / "sub" / "b.py").write_text("y = 3\n")
    assert source_digest(pkg.rglob("*.py")) != first
    (pkg / "sub" / "b.py").write_text("y = 2\n")
    assert source_digest(pkg.rglob("*.py")) == first
    (pkg / "sub" / "b.py").rename(pkg / "b.py")  # same bytes, another module path
    assert source_digest(pkg.rglob("*.py")) != first
