"""Stage ``evaluate@<experiment>``: the paper's Table 2 row (or bits per character) of one model.

Usage (from the repository root, as ``dvc.yaml`` runs it)::

    python pipelines/evaluate.py dup-lsh4

The final weights ``models/<experiment>/model.pt`` are evaluated on the test split, with the
``evaluate`` section's settings under the experiment's own ``evaluate:`` overrides, with full
attention and with LSH attention at every round count of ``evaluate.n_hashes``
(:meth:`reformer.models.ReformerLM.set_attention` keeps the weights; shared-QK models only).

- duplication: masked next-token accuracy on the second half of each sequence;
- enwik8: bits per character;
- wmt14: the test set (newstest2014) translated with beam search (``evaluate.beam_size``,
  ``evaluate.length_penalty``: the paper's 4 and 0.6) and greedily, scored with the paper's
  Table 4 numbers: tokenised BLEU, sacreBLEU uncased and cased (:mod:`reformer.bleu`);
  ``evaluate.max_batches`` x ``evaluate.batch_size`` sentences at most.

Results go to ``metrics/<experiment>.json``::

    {"accuracy": {"full": 1.0, "lsh1": ..., "lsh2": ..., "lsh4": ..., "lsh8": ...},
     "train_steps": 600, "final_train_loss": 0.01}

(``"bpc"`` instead of ``"accuracy"`` for enwik8; for wmt14 ``{"bleu": {"beam": {"bleu",
"sacrebleu_uncased", "sacrebleu_cased"}, "greedy": {...}}, "sacrebleu_signature": ...}``),
and the same numbers to the summary of the training's W&B run (``run.json``) as
``eval/accuracy_<mode>`` (or ``eval/bpc_<mode>``; for wmt14 ``eval/bleu``,
``eval/sacrebleu_uncased``, ``eval/sacrebleu_cased`` from beam search and the same keys with
``_greedy`` for greedy decoding).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout's own package, installed or not

from reformer.config import (  # noqa: E402
    ACCURACY_TASKS,
    TRANSLATION_TASKS,
    ConfigError,
    ExperimentConfig,
    Params,
    load_params,
    resolve_device,
)

if TYPE_CHECKING:  # torch is imported late: `--help` and params errors stay fast
    import torch

    from repro.tracking import RunRef

DIGITS = 6  # metrics are rounded once, so the file and the W&B summary hold the same numbers


def main(argv: list[str] | None = None) -> int:
    """Evaluate one experiment; returns the exit status (2: bad params, 1: missing inputs)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", help="a key of `experiments` in params.yaml")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        exp = params.experiment(args.experiment)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    import torch

    from reformer.models import ReformerLM
    from reformer.tasks import DataIntegrityError, load_split
    from repro.tracking import read_run_json, resume_run
    from repro.training import atomic_write_json, evaluate_lm

    root = Path.cwd()
    name = exp.name
    model_dir = root / "models" / name
    try:
        saved = torch.load(model_dir / "model.pt", map_location="cpu", weights_only=True)
        ref = read_run_json(model_dir / "run.json")
        test_set = load_split(root / "data" / exp.task, "test", exp.seq_len)
    except FileNotFoundError as err:
        print(
            f"error: evaluate {name}: {err.filename} not found; run `dvc repro train@{name}` first",
            file=sys.stderr,
        )
        return 1
    except (DataIntegrityError, ValueError) as err:
        print(f"error: evaluate {name}: {err}", file=sys.stderr)
        return 1

    device = torch.device(resolve_device(params.distributed))
    if exp.task in TRANSLATION_TASKS:
        return _evaluate_translation(params, exp, saved, ref, root, device)
    model = ReformerLM(**saved["model_config"])
    model.load_state_dict(saved["state_dict"])
    model.to(device)
    ev = exp.evaluate or params.evaluate  # the experiment's overrides
    accuracy_task = exp.task in ACCURACY_TASKS
    metric = "accuracy" if accuracy_task else "bpc"

    start = time.perf_counter()
    results: dict[str, float] = {}
    for label, attention, n_hashes in exp.eval_modes(ev):
        model.set_attention(attention, n_hashes)
        torch.manual_seed(ev.seed)  # the same LSH rotations on every run
        m = evaluate_lm(
            model, test_set, ev.batch_size, device, ev.max_batches, precision=exp.train.precision
        )
        results[label] = round(m[metric], DIGITS)
        print(f"evaluate {name}: {label:>5} {metric} {results[label]:.4f}", flush=True)

    metrics = {metric: results, **_training_fields(saved)}
    atomic_write_json(root / "metrics" / f"{name}.json", metrics)

    tracker = resume_run(ref, root, params.tracking.init_timeout_s)
    tracker.summary({f"eval/{metric}_{label}": value for label, value in results.items()})
    tracker.finish()
    shown = ", ".join(
        f"{label} {100 * v:.1f}%" if accuracy_task else f"{label} {v:.3f}"
        for label, v in results.items()
    )
    print(
        f"evaluate {name}: {metric} {shown} ({time.perf_counter() - start:.1f} s); "
        f"wrote metrics/{name}.json",
        flush=True,
    )
    return 0


def _training_fields(saved: dict) -> dict[str, int | float | None]:
    """The checkpoint's step count and last training loss (``None`` if missing or NaN)."""
    final_loss = saved.get("final_train_loss")
    return {
        "train_steps": int(saved["step"]),
        "final_train_loss": None
        if final_loss is None or math.isnan(final_loss)
        else round(float(final_loss), DIGITS),
    }


def _evaluate_translation(
    params: Params,
    exp: ExperimentConfig,
    saved: dict[str, Any],
    ref: RunRef,
    root: Path,
    device: torch.device,
) -> int:
    """Beam and greedy decoding of the test set, scored with BLEU (the paper's Table 4)."""
    import torch

    from reformer.models import ReformerEncoderDecoder
    from reformer.tasks import DataIntegrityError
    from reformer.tasks.wmt14 import evaluate_translation
    from repro.tracking import resume_run
    from repro.training import atomic_write_json

    name = exp.name
    model = ReformerEncoderDecoder(**saved["model_config"])
    model.load_state_dict(saved["state_dict"])
    model.to(device).eval()
    ev = exp.evaluate or params.evaluate  # the experiment's overrides
    limit = ev.max_batches * ev.batch_size if ev.max_batches is not None else None
    start = time.perf_counter()
    bleu: dict[str, dict[str, float]] = {}
    signature = None
    for method in ("beam", "greedy"):
        torch.manual_seed(ev.seed)
        try:
            scores = evaluate_translation(
                model,
                root / "data" / exp.task,
                "test",
                method=method,
                beam_size=ev.beam_size,
                alpha=ev.length_penalty,
                batch_size=ev.batch_size,
                max_sentences=limit,
                device=device,
            )
        except (DataIntegrityError, ValueError) as err:
            print(f"error: evaluate {name}: {err}", file=sys.stderr)
            return 1
        keys = ("bleu", "sacrebleu_uncased", "sacrebleu_cased")
        bleu[method] = {k: round(float(scores[k]), DIGITS) for k in keys}
        signature = scores["signature_cased"]
        shown = " / ".join(f"{bleu[method][k]:.2f}" for k in keys)
        print(
            f"evaluate {name}: {method:>6} BLEU / sacreBLEU uncased / cased {shown} "
            f"({scores['n_sentences']} sentences)",
            flush=True,
        )
    metrics = {"bleu": bleu, "sacrebleu_signature": signature, **_training_fields(saved)}
    atomic_write_json(root / "metrics" / f"{name}.json", metrics)
    tracker = resume_run(ref, root, params.tracking.init_timeout_s)
    # The paper's numbers (beam search) under plain keys, as report/claims.yaml reads them.
    tracker.summary(
        {
            f"eval/{k}" + ("" if method == "beam" else f"_{method}"): v
            for method, row in bleu.items()
            for k, v in row.items()
        }
    )
    tracker.finish()
    print(
        f"evaluate {name}: BLEU {bleu['beam']['bleu']:.2f} (beam {ev.beam_size}, alpha "
        f"{ev.length_penalty}) in {time.perf_counter() - start:.1f} s; wrote metrics/{name}.json",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
