"""Multi-node training: two torchrun "nodes" on loopback joined by a c10d rendezvous.

Each node is its own ``torchrun --nnodes 2 --nproc_per_node 1`` launcher, as on two
machines; the rendezvous endpoint is 127.0.0.1. Every subprocess is bounded by a timeout
and its whole process group is killed if it overruns.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
MULTINODE = ROOT / "pipelines" / "multinode"
TIMEOUT_S = 120

PROBE = """
import json, os, sys
import torch
import torch.distributed as dist

dist.init_process_group("gloo")
value = torch.tensor([float(dist.get_rank() + 1)])
dist.all_reduce(value)
report = {
    "rank": dist.get_rank(),
    "world": dist.get_world_size(),
    "sum": value.item(),
    "group_rank": int(os.environ["GROUP_RANK"]),
    "local_rank": int(os.environ["LOCAL_RANK"]),
}
with open(os.path.join(sys.argv[1], f"rank{report['rank']}.json"), "w") as f:
    json.dump(report, f)
dist.destroy_process_group()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_RUN_GROUP", "DVC_EXP"))}
    env.update(
        OMP_NUM_THREADS="1",
        GLOO_SOCKET_IFNAME="lo",
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


def _run_nodes(commands: list[tuple[list[str], dict[str, str]]], cwd: Path) -> list[tuple]:
    """Start every node, wait for all (bounded), kill the process groups of any overrun."""
    procs = [
        subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for cmd, env in commands
    ]
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=TIMEOUT_S)
            results.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)  # the launcher and the ranks it started
                proc.communicate()
    return results


def _torchrun(node_rank: int, port: int, script: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "torch.distributed.run",
        "--nnodes", "2", "--nproc_per_node", "1",
        "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
        "--rdzv-id", "multinode-test", "--node-rank", str(node_rank),
        "--local-addr", "127.0.0.1",
        *script,
    ]  # fmt: skip


def test_launch_scripts_are_valid_bash_with_the_rendezvous_flags():
    for name in ("slurm.sbatch", "torchrun-nnodes.sh"):
        script = MULTINODE / name
        assert os.access(script, os.X_OK), f"{name} is not executable"
        checked = subprocess.run(["bash", "-n", str(script)], capture_output=True, timeout=30)
        assert checked.returncode == 0, checked.stderr
        text = script.read_text()
        for flag in ("--nnodes", "--node-rank", "--rdzv-backend c10d", "--rdzv-endpoint"):
            assert flag in text, (name, flag)
    sbatch = (MULTINODE / "slurm.sbatch").read_text()
    assert "#SBATCH --nodes=" in sbatch and "#SBATCH --ntasks-per-node=1" in sbatch
    assert '--node-rank "$SLURM_NODEID"' in sbatch and '"$SLURM_NNODES"' in sbatch
    # SLURM_NODEID must be expanded by each node's task, not once by the batch shell.
    srun = sbatch[sbatch.index("srun --") :]
    assert srun.split("\n")[0].rstrip().endswith("bash -c '")


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.timeout(2 * TIMEOUT_S)
def test_two_nodes_rendezvous_and_all_reduce(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    port = _free_port()
    results = _run_nodes(
        [(_torchrun(i, port, [str(probe), str(tmp_path)]), _env()) for i in (0, 1)], tmp_path
    )
    for code, _, err in results:
        assert code == 0, err[-3000:]
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world"] == 2 and r["sum"] == 3.0 for r in reports)  # 1 + 2 over both nodes
    assert sorted(r["group_rank"] for r in reports) == [0, 1]  # one rank on each node
    assert all(r["local_rank"] == 0 for r in reports)


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.timeout(3 * TIMEOUT_S)
def test_smoke_training_on_two_nodes_with_the_launch_script(tmp_path):
    params = yaml.safe_load((ROOT / "configs" / "smoke.yaml").read_text())
    params["distributed"]["nproc_per_node"] = 1  # per node: 2 nodes x 1 rank
    # the paper's first smoke experiment, with the profile's training settings
    name, spec = next(iter(params["experiments"].items()))
    spec.pop("train", None)
    params["experiments"] = {name: spec}
    params["train"]["steps"] = 10
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (tmp_path / "pipelines").symlink_to(ROOT / "pipelines")
    prepared = subprocess.run(
        [sys.executable, "pipelines/prepare.py", spec["task"]], cwd=tmp_path, env=_env(),
        capture_output=True, text=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    assert prepared.returncode == 0, prepared.stderr
    port = str(_free_port())
    script = str(MULTINODE / "torchrun-nnodes.sh")
    nodes = [
        ([script, name],
         _env(NNODES="2", NODE_RANK=str(i), MASTER_ADDR="127.0.0.1", MASTER_PORT=port,
              LOCAL_ADDR="127.0.0.1", PY=sys.executable, RDZV_ID="smoke"))
        for i in (0, 1)
    ]  # fmt: skip
    results = _run_nodes(nodes, tmp_path)
    for code, out, err in results:
        assert code == 0, (out[-2000:], err[-3000:])
    summary = "".join(out for _, out, _ in results)
    assert f"train {name}: 10 steps" in summary and "on 2 cpu rank(s)" in summary
    model_dir = tmp_path / "models" / name
    assert {"model.pt", "checkpoint.pt", "run.json"} <= {p.name for p in model_dir.iterdir()}
