"""Real offline W&B runs for the reporting tests, written by wandb itself.

A separate Python process writes the runs with wandb in offline mode, the way the pipeline
does: a training run with a history, then evaluation reopening it to add ``eval/...``
numbers to its summary. The runs are the fixture paper's (``tests/repro/minipaper``): the
expected verdicts and cells in the tests are worked out by hand from the numbers in
:data:`RUNS` and the thresholds in its claims file, :data:`CLAIMS`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

import yaml
from pipeline_helpers import wandb_env

REPO = Path(__file__).resolve().parents[3]
MINIPAPER = Path(__file__).resolve().parents[1] / "minipaper"
CLAIMS = MINIPAPER / "claims.yaml"
PARAMS = MINIPAPER / "params.yaml"

# experiment -> accuracy by evaluation mode (None: the run crashed before evaluation);
# copy-full is trained without dropout, copy-r<n> with dropout n/10
RUNS: dict[str, dict[str, float] | None] = {
    "copy-full": {"full": 1.0, "r8": 0.62, "r4": 0.55, "r2": 0.41, "r1": 0.3},
    "copy-r4": {"full": 0.12, "r8": 0.995, "r4": 0.991, "r2": 0.93, "r1": 0.81},
    "copy-r1": {"full": 0.3, "r8": 0.93, "r4": 0.92, "r2": 0.88, "r1": 0.7},
    "copy-r2": None,
}

WRITER = textwrap.dedent(
    """
    import json, os, sys, wandb
    root, spec, task = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    for exp, acc in spec.items():
        run = wandb.init(project="report-test", dir=root, name=exp, group="g-test",
                         config={"task": task, "model": {"variant": exp.split("-", 1)[1]},
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


def params_yaml(experiments: list[str]) -> str:
    """A valid params file of the fixture paper (its smoke profile's sections), with copy
    experiments named ``copy-full`` (no dropout) or ``copy-r<n>`` (dropout ``n / 10``)."""
    params = yaml.safe_load(PARAMS.read_text())
    params["experiments"] = {}
    for exp in experiments:
        rounds = re.fullmatch(r"copy-r(\d+)", exp)
        model = {"dropout": int(rounds[1]) / 10} if rounds else {"dropout": 0.0}
        params["experiments"][exp] = {"task": "copy", "model": model}
    return yaml.safe_dump(params, sort_keys=False)


def write_project(
    root: Path, runs: Mapping[str, Mapping[str, float] | None] = RUNS, task: str = "copy"
) -> Path:
    """Write ``runs`` (of ``task``) as offline runs, their run.json and metrics files, and a
    params.yaml of the fixture paper naming them."""
    script = root / "writer.py"
    script.write_text(WRITER)
    subprocess.run(
        [sys.executable, str(script), str(root), json.dumps(runs), task],
        env=wandb_env(root),
        check=True,
        timeout=120,
    )
    (root / "params.yaml").write_text(params_yaml(list(runs)))
    return root
