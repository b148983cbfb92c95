"""One trained experiment's evaluation: what the ``evaluate@<experiment>`` stage runs.

The kit reads ``models/<exp>/model.pt`` and checks that it is readable and belongs to this
experiment (its ``experiment`` and ``task`` fields), the paper's plug-in rebuilds the model
and measures it (:attr:`repro.paper.Paper.evaluate`), and the kit writes
``metrics/<exp>.json`` (the paper's numbers plus ``train_steps`` and ``final_train_loss``)
and puts the same numbers into the summary of the W&B run that trained the model.

That run is reopened in the stage's own DVC output, ``runs/<exp>/wandb/`` (not inside
``models/<exp>``, the train stage's output and this stage's dependency; see
:mod:`repro.tracking.layout`), which is emptied first: it holds this evaluation's segment
only. When ``run.json`` names a run folder that is not here (never pulled, or deleted),
nothing is evaluated or written: one line says to ``dvc pull`` or
``dvc repro -f train@<exp>``. A model trained while W&B could not write (``run_dir:
null``) is evaluated into ``metrics/<exp>.json`` only, with one warning.
"""

from __future__ import annotations

import math
import pickle
import shutil
import sys
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from repro.config import ExperimentConfig, Params, resolve_device
from repro.data.manifest import DataIntegrityError
from repro.io import atomic_write_json
from repro.paper import Paper
from repro.tracking import RunMissingError, check_run_present, read_run_json, resume_run
from repro.tracking.layout import evaluation_home

__all__ = ["ModelFileError", "evaluate_experiment", "load_model_file"]

DIGITS = 6  # the training fields are rounded like the paper's metrics


class ModelFileError(ValueError):
    """``model.pt`` is missing, unreadable or belongs to another experiment (one line)."""


def load_model_file(path: Path, exp: ExperimentConfig) -> dict[str, Any]:
    """The saved dictionary of ``path``, checked against the experiment it should hold.

    Raises:
        ModelFileError: one line naming the file and what to do.

    Example:
        >>> import tempfile, pathlib
        >>> from repro.io import atomic_save
        >>> exp = type("E", (), {"name": "a", "task": "t"})()
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = pathlib.Path(d) / "model.pt"
        ...     atomic_save({"experiment": "b", "task": "t", "state_dict": {}}, p)
        ...     load_model_file(p, exp)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        repro.evaluation.ModelFileError: .../model.pt: holds experiment 'b', not 'a'; ...
    """
    redo = f"run `dvc repro train@{exp.name}` to train it again"
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: not found; run `dvc repro train@{exp.name}` first") from None
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile) as err:
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise ModelFileError(f"{path}: unreadable ({first}); {redo}") from None
    if not isinstance(saved, Mapping) or "state_dict" not in saved:
        raise ModelFileError(f"{path}: not a saved model (no state_dict); {redo}")
    for key, want in (("experiment", exp.name), ("task", exp.task)):
        if saved.get(key) != want:
            raise ModelFileError(f"{path}: holds {key} {saved.get(key)!r}, not {want!r}; {redo}")
    return dict(saved)


def training_fields(saved: Mapping[str, Any]) -> dict[str, int | float | None]:
    """The checkpoint's step count and last training loss (``None`` if missing or NaN).

    Example:
        >>> training_fields({"step": 7, "final_train_loss": float("nan")})
        {'train_steps': 7, 'final_train_loss': None}
    """
    final_loss = saved.get("final_train_loss")
    return {
        "train_steps": int(saved["step"]),
        "final_train_loss": None
        if final_loss is None or math.isnan(final_loss)
        else round(float(final_loss), DIGITS),
    }


def evaluate_experiment(params: Params, exp: ExperimentConfig, paper: Paper, root: Path) -> int:
    """Evaluate one trained experiment; returns the exit status (1: missing or bad inputs)."""
    name = exp.name
    model_dir = root / "models" / name
    ref_path = model_dir / "run.json"
    try:
        saved = load_model_file(model_dir / "model.pt", exp)
        ref = read_run_json(ref_path)
        check_run_present(ref, root, f"models/{name}/run.json")
    except RunMissingError as err:
        if ref.run_dir:  # named but not here: evaluating now would start a second run
            print(f"error: evaluate {name}: {err}", file=sys.stderr)
            return 1
        print(f"warning: evaluate {name}: {err}; evaluating into metrics only", file=sys.stderr)
        ref = None
    except (ModelFileError, ValueError) as err:
        print(f"error: evaluate {name}: {err}", file=sys.stderr)
        return 1
    try:
        model = paper.load_model(saved)
    except ValueError as err:
        print(f"error: evaluate {name}: {err}", file=sys.stderr)
        return 1
    device = torch.device(resolve_device(params.distributed))
    model.to(device)
    start = time.perf_counter()
    try:
        result = paper.evaluate(exp, model, root / "data" / exp.task, device)
    except (DataIntegrityError, ValueError, OSError) as err:
        print(f"error: evaluate {name}: {err}", file=sys.stderr)
        return 1
    metrics = {**result.metrics, **training_fields(saved)}
    home = evaluation_home(root, name)
    try:
        atomic_write_json(root / "metrics" / f"{name}.json", metrics)
        shutil.rmtree(home, ignore_errors=True)  # this stage's output: one evaluation's segment
        home.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        print(
            f"error: evaluate {name}: cannot write {err.filename or home} ({err.strerror})",
            file=sys.stderr,
        )
        return 1
    if ref is not None:
        tracker = resume_run(ref, root, params.tracking.init_timeout_s, home=home)
        tracker.summary(result.summary)
        tracker.finish()
    print(
        f"evaluate {name}: {result.line}; wrote metrics/{name}.json "
        f"({time.perf_counter() - start:.1f} s)",
        flush=True,
    )
    return 0
