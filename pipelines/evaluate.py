"""Stage ``evaluate@<experiment>``: the paper's Table 2 row (or bits per character) of one model.

Usage (from the repository root, as ``dvc.yaml`` runs it)::

    python pipelines/evaluate.py dup-lsh4

The final weights ``models/<experiment>/model.pt`` are evaluated on the test split with full
attention and with LSH attention at every round count of ``evaluate.n_hashes``
(:meth:`reformer.models.ReformerLM.set_attention` keeps the weights; shared-QK models only).

- duplication: masked next-token accuracy on the second half of each sequence;
- enwik8: bits per character.

Results go to ``metrics/<experiment>.json``::

    {"accuracy": {"full": 1.0, "lsh1": ..., "lsh2": ..., "lsh4": ..., "lsh8": ...},
     "train_steps": 600, "final_train_loss": 0.01}

(``"bpc"`` instead of ``"accuracy"`` for enwik8), and the same numbers to the summary of the
training's W&B run (``run.json``) as ``eval/accuracy_<mode>`` (or ``eval/bpc_<mode>``).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout's own package, installed or not

from reformer.config import (  # noqa: E402
    ACCURACY_TASKS,
    ConfigError,
    load_params,
    resolve_device,
)

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

    from reformer.data import DataIntegrityError, load_split
    from reformer.models import ReformerLM
    from reformer.tracking import read_run_json, resume_run
    from reformer.training import atomic_write_json, evaluate_lm

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
    model = ReformerLM(**saved["model_config"])
    model.load_state_dict(saved["state_dict"])
    model.to(device)
    ev = params.evaluate
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

    final_loss = saved.get("final_train_loss")
    metrics = {
        metric: results,
        "train_steps": int(saved["step"]),
        "final_train_loss": None
        if final_loss is None or math.isnan(final_loss)
        else round(float(final_loss), DIGITS),
    }
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


if __name__ == "__main__":
    sys.exit(main())
