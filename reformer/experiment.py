"""The Reformer's side of the train and evaluate stages: build, restore and measure a model.

The kit's stages (``pipelines/train.py``, ``pipelines/evaluate.py``) call these through
:data:`reformer.paper.PAPER`:

- :func:`build_model`: a :class:`~reformer.models.ReformerLM` for the language-model tasks,
  or a :class:`~reformer.models.ReformerEncoderDecoder` for translation, trained through
  :class:`~reformer.tasks.wmt14.PackedTranslationModel` (packed source + target sequences);
- :func:`load_model`: the saved ``model.pt`` back into its class;
- :func:`evaluate`: the paper's Table 2 row (masked accuracy on the duplication task, with
  full attention and LSH at each round count, plus the evaluation-time experiments of
  :func:`reformer.config.eval_modes`, each with the share of predictions equal to the
  current token), bits per character (enwik8), or Table 4's BLEU numbers with beam search
  and greedy decoding (wmt14).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reformer.config import ACCURACY_TASKS, TRANSLATION_TASKS, eval_modes, model_kwargs
from reformer.models import ReformerEncoderDecoder, ReformerLM
from repro.config import ExperimentConfig
from repro.paper import BuiltModel, Evaluation
from repro.training import evaluate_lm

__all__ = ["DIGITS", "build_model", "evaluate", "load_model", "scaled_queries"]

DIGITS = 6  # metrics are rounded once, so the file and the W&B summary hold the same numbers
MODEL_CLASSES: dict[str, type[nn.Module]] = {
    "ReformerLM": ReformerLM,
    "ReformerEncoderDecoder": ReformerEncoderDecoder,
}


def build_model(exp: ExperimentConfig, vocab_size: int) -> BuiltModel:
    """The model of experiment ``exp`` with freshly initialised weights.

    Example:
        >>> from repro.config import parse_params
        >>> task = dict(length=16, vocab_size=8, n_train=8, n_valid=2, n_test=2, seed=0)
        >>> p = parse_params({"paper": "reformer", "tasks": {"duplication": task},
        ...                   "model": {"d_model": 16, "n_heads": 2, "bucket_size": 4},
        ...                   "train": {"batch_size": 2},
        ...                   "experiments": {"e": {"task": "duplication"}}})
        >>> built = build_model(p.experiment("e"), vocab_size=8)
        >>> type(built.core).__name__, built.core is built.trainable
        ('ReformerLM', True)
    """
    kwargs = model_kwargs(exp, vocab_size)
    if exp.task in TRANSLATION_TASKS:
        from reformer.tasks.wmt14 import PackedTranslationModel

        core = ReformerEncoderDecoder(**kwargs)
        # The kit trains a language model: the wrapper unpacks source and target.
        return BuiltModel(core, PackedTranslationModel(core, exp.seq_len // 2), kwargs)
    core = ReformerLM(**kwargs)
    return BuiltModel(core, core, kwargs)


def load_model(saved: Mapping[str, Any]) -> nn.Module:
    """Rebuild the saved model (``model.pt``'s ``model_class``, ``model_config``, weights).

    Raises:
        ValueError: the file names a class this package does not define (one line).
    """
    name = saved.get("model_class")
    if name not in MODEL_CLASSES:
        raise ValueError(
            f"model_class = {name!r}: not a model of this package; allowed: "
            f"{', '.join(MODEL_CLASSES)}"
        )
    model = MODEL_CLASSES[name](**saved["model_config"])
    model.load_state_dict(saved["state_dict"])
    return model


def evaluate(
    exp: ExperimentConfig, model: nn.Module, data_dir: Path, device: torch.device
) -> Evaluation:
    """Measure ``model`` on the test split of ``data_dir`` with ``exp.evaluate``'s settings.

    Each mode of :func:`~reformer.config.eval_modes` swaps the model's attention
    (:meth:`~reformer.models.language_model.LanguageModel.set_attention`: rounds, bucket
    size and rule, self-mask, key normalisation; :func:`scaled_queries`) and draws the LSH
    rotations from ``evaluate.seed``; the model is left as trained. The duplication task reports
    ``accuracy`` and ``copy_rate`` (the share of predictions equal to the current token)
    per mode; the other language-model tasks bits per character.

    Raises:
        ValueError, DataIntegrityError: the test split is missing or corrupt (one line).
    """
    if exp.task in TRANSLATION_TASKS:
        return _evaluate_translation(exp, model, data_dir, device)
    from reformer.tasks import load_split

    test_set = load_split(data_dir, "test", exp.seq_len)
    ev = exp.evaluate
    families = ("accuracy", "copy_rate") if exp.task in ACCURACY_TASKS else ("bpc",)
    trained = (
        model.attention,
        model.n_hashes,
        model.bucket_size,
        model.bucket_rule,
        model.unit_keys,
    )
    start = time.perf_counter()
    results: dict[str, dict[str, float]] = {family: {} for family in families}
    for mode in eval_modes(exp, ev):
        model.set_attention(
            mode.attention,
            mode.n_hashes,
            bucket_size=mode.bucket_size or trained[2],
            self_mask=mode.self_mask,
            bucket_rule=mode.bucket_rule or trained[3],
            unit_keys=trained[4] if mode.unit_keys is None else mode.unit_keys,
        )
        torch.manual_seed(ev.seed)  # the same LSH rotations on every run
        with scaled_queries(model, mode.qk_scale):
            m = evaluate_lm(
                model,
                test_set,
                ev.batch_size,
                device,
                ev.max_batches,
                precision=exp.train.precision,
            )
        for family in families:
            results[family][mode.label] = round(m[family], DIGITS)
        shown = "  ".join(f"{family} {results[family][mode.label]:.4f}" for family in families)
        print(f"evaluate {exp.name}: {mode.label:>11} {shown}", flush=True)
    model.set_attention(
        trained[0],
        trained[1],
        bucket_size=trained[2],
        self_mask=True,
        bucket_rule=trained[3],
        unit_keys=trained[4],
    )
    metric = families[0]
    shown = ", ".join(
        f"{label} {100 * v:.1f}%" if metric == "accuracy" else f"{label} {v:.3f}"
        for label, v in results[metric].items()
    )
    return Evaluation(
        metrics=results,
        summary={
            f"eval/{family}_{label}": value
            for family, row in results.items()
            for label, value in row.items()
        },
        line=f"{metric} {shown} ({time.perf_counter() - start:.1f} s)",
    )


@contextmanager
def scaled_queries(model: nn.Module, scale: float) -> Iterator[None]:
    """Multiply the query projection of every attention layer by ``scale`` inside the block.

    With shared QK the keys are the normalised queries, so every score ``q_i . k_j`` is
    multiplied by ``scale``: attention ``scale`` times sharper, as longer training makes it
    (the weights are restored on exit).

    Example:
        >>> from reformer.models import ReformerLM
        >>> model = ReformerLM(10, d_model=8, n_heads=2, max_seq_len=8, attention="full")
        >>> w = model.layers.blocks[0].f.fn.to_qk.weight.clone()
        >>> with scaled_queries(model, 16):
        ...     bool(torch.equal(model.layers.blocks[0].f.fn.to_qk.weight, 16 * w))
        True
        >>> bool(torch.equal(model.layers.blocks[0].f.fn.to_qk.weight, w))
        True
    """
    if scale == 1:
        yield
        return
    layers = [getattr(b.f.fn, "to_qk", None) or b.f.fn.to_q for b in model.layers.blocks]
    saved = [layer.weight.detach().clone() for layer in layers]
    try:
        with torch.no_grad():
            for layer in layers:
                layer.weight.mul_(scale)
        yield
    finally:
        with torch.no_grad():
            for layer, weight in zip(layers, saved, strict=True):
                layer.weight.copy_(weight)


def _evaluate_translation(
    exp: ExperimentConfig, model: nn.Module, data_dir: Path, device: torch.device
) -> Evaluation:
    """Beam and greedy decoding of the test set, scored with BLEU (the paper's Table 4)."""
    from reformer.tasks.wmt14 import evaluate_translation

    model.eval()
    ev = exp.evaluate
    limit = ev.max_batches * ev.batch_size if ev.max_batches is not None else None
    start = time.perf_counter()
    bleu: dict[str, dict[str, float]] = {}
    signature = None
    keys = ("bleu", "sacrebleu_uncased", "sacrebleu_cased")
    for method in ("beam", "greedy"):
        torch.manual_seed(ev.seed)
        scores = evaluate_translation(
            model,
            data_dir,
            "test",
            method=method,
            beam_size=ev.beam_size,
            alpha=ev.length_penalty,
            batch_size=ev.batch_size,
            max_sentences=limit,
            device=device,
        )
        bleu[method] = {k: round(float(scores[k]), DIGITS) for k in keys}
        signature = scores["signature_cased"]
        shown = " / ".join(f"{bleu[method][k]:.2f}" for k in keys)
        print(
            f"evaluate {exp.name}: {method:>6} BLEU / sacreBLEU uncased / cased {shown} "
            f"({scores['n_sentences']} sentences)",
            flush=True,
        )
    # The paper's numbers (beam search) under plain keys, as report/claims.yaml reads them.
    summary = {
        f"eval/{k}" + ("" if method == "beam" else f"_{method}"): v
        for method, row in bleu.items()
        for k, v in row.items()
    }
    return Evaluation(
        metrics={"bleu": bleu, "sacrebleu_signature": signature},
        summary=summary,
        line=(
            f"BLEU {bleu['beam']['bleu']:.2f} (beam {ev.beam_size}, alpha "
            f"{ev.length_penalty}) in {time.perf_counter() - start:.1f} s"
        ),
    )
