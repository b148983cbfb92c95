"""Real offline W&B runs for the reporting tests, written by wandb itself.

A separate Python process writes the runs with wandb in offline mode, the way the pipeline
does: a training run with a history, then evaluation reopening it to add ``eval/...``
numbers to its summary. The expected verdicts and cells in the tests are worked out by hand
from the numbers in :data:`RUNS` and the thresholds in ``report/claims.yaml``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
CLAIMS = REPO / "report" / "claims.yaml"

# experiment -> accuracy by evaluation mode (None: the run crashed before evaluation)
RUNS: dict[str, dict[str, float] | None] = {
    "dup-full": {"full": 1.0, "lsh8": 0.62, "lsh4": 0.55, "lsh2": 0.41, "lsh1": 0.3},
    "dup-lsh4": {"full": 0.12, "lsh8": 0.995, "lsh4": 0.991, "lsh2": 0.93, "lsh1": 0.81},
    "dup-lsh1": {"full": 0.3, "lsh8": 0.93, "lsh4": 0.92, "lsh2": 0.88, "lsh1": 0.7},
    "dup-lsh2": None,
}

WRITER = textwrap.dedent(
    """
    import json, os, sys, wandb
    root, spec = sys.argv[1], json.loads(sys.argv[2])
    for exp, acc in spec.items():
        run = wandb.init(project="report-test", dir=root, name=exp, group="g-test",
                         config={"task": "duplication", "model": {"attention": exp[4:]},
                                 "train": {"steps": 100, "lr": 0.001}})
        for i in range(0, 101, 10):
            run.log({"train/loss": 3.0 / (i + 1), "train/accuracy": i / 100}, step=i)
        run_dir = os.path.relpath(os.path.dirname(run.dir), root)
        ref = {"experiment": exp, "mode": "offline", "run_dir": run_dir, "entity": None,
               "project": "report-test", "id": run.id, "group": "g-test", "url": None}
        os.makedirs(os.path.join(root, "models", exp), exist_ok=True)
        with open(os.path.join(root, "models", exp, "run.json"), "w") as f:
            json.dump(ref, f)
        if acc is None:
            run.finish(exit_code=1)  # failed before evaluation
            continue
        run.finish()
        run = wandb.init(project="report-test", dir=root, id=ref["id"], resume="allow")
        run.summary.update({f"eval/accuracy_{k}": v for k, v in acc.items()})
        run.finish()
        os.makedirs(os.path.join(root, "metrics"), exist_ok=True)
        with open(os.path.join(root, "metrics", exp + ".json"), "w") as f:
            json.dump({"accuracy": acc, "train_steps": 100, "final_train_loss": 3 / 101}, f)
    """
)


def wandb_env(root: Path) -> dict[str, str]:
    """The environment of an offline wandb process that keeps every file under ``root``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        WANDB_DIR=str(root),
        WANDB_CONFIG_DIR=str(root / ".config"),
        WANDB_CACHE_DIR=str(root / ".cache"),
        WANDB_DATA_DIR=str(root / ".data"),
        WANDB_DISABLE_GIT="true",
    )
    return env


def params_yaml(experiments: list[str]) -> str:
    """A valid params file: the default profile's sections, with duplication experiments
    named ``dup-full`` or ``dup-lsh<n>`` (``n`` hashing rounds)."""
    params = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    params["experiments"] = {}
    for exp in experiments:
        rounds = re.fullmatch(r"dup-lsh(\d+)", exp)
        model = {"attention": "lsh", "n_hashes": int(rounds[1])} if rounds else {}
        model = model or {"attention": "full"}
        params["experiments"][exp] = {"task": "duplication", "model": model}
    return yaml.safe_dump(params, sort_keys=False)


def write_project(root: Path) -> Path:
    """Write :data:`RUNS` as offline runs, their run.json and metrics, and a params.yaml."""
    script = root / "writer.py"
    script.write_text(WRITER)
    subprocess.run(
        [sys.executable, str(script), str(root), json.dumps(RUNS)],
        env=wandb_env(root),
        check=True,
        timeout=120,
    )
    (root / "params.yaml").write_text(params_yaml(list(RUNS)))
    return root
