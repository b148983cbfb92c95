#!/usr/bin/env bash
# Train one experiment on several machines with torchrun's c10d rendezvous.
#
# Run the same command on every machine, from the repository root, with the same
# MASTER_ADDR (a host name or address of one of the machines that all of them can reach):
#
#   machine 0:  NNODES=2 NODE_RANK=0 MASTER_ADDR=node0.example.org \
#                 pipelines/multinode/torchrun-nnodes.sh enwik8-lsh4
#   machine 1:  NNODES=2 NODE_RANK=1 MASTER_ADDR=node0.example.org \
#                 pipelines/multinode/torchrun-nnodes.sh enwik8-lsh4
#
# Every machine needs the same checkout, params.yaml and prepared data/<task>/ (e.g. from
# `dvc pull`). Each starts distributed.nproc_per_node ranks (params.yaml; override with
# NPROC_PER_NODE), so the job has NNODES x nproc_per_node ranks; train.batch_size must be a
# multiple of that times train.grad_accum. Rank 0 (on the machine that becomes group rank 0)
# writes models/<experiment>/ and the W&B run; copy them back or `dvc push` from there.
#
# Environment: NNODES (default 2), NODE_RANK (required), MASTER_ADDR (required),
# MASTER_PORT (default 29500), NPROC_PER_NODE, RDZV_ID (default: the experiment name; the
# same on every machine), LOCAL_ADDR (this machine's address as the others see it, on hosts
# with several networks), PY (default .venv/bin/python), TRAIN (default
# pipelines/train.py), and the usual NCCL_* / GLOO_SOCKET_IFNAME to pick the network.
set -euo pipefail

EXPERIMENT=${1:?usage: NODE_RANK=<i> MASTER_ADDR=<host> $0 EXPERIMENT [train.py options]}
shift
NNODES=${NNODES:-2}
NODE_RANK=${NODE_RANK:?set NODE_RANK to this machine index, 0 to NNODES-1}
MASTER_ADDR=${MASTER_ADDR:?set MASTER_ADDR to the host name of machine 0}
MASTER_PORT=${MASTER_PORT:-29500}
PY=${PY:-.venv/bin/python}
TRAIN=${TRAIN:-pipelines/train.py}

# A bad parameter gives its one-line error here, before any rank starts or waits.
"$PY" -m repro.config check "$EXPERIMENT"
if [[ -z "${NPROC_PER_NODE:-}" ]]; then
  NPROC_PER_NODE=$("$PY" -c 'from repro.config import load_params
print(load_params().distributed.nproc_per_node)')
fi

export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec "$PY" -m torch.distributed.run \
  --nnodes "$NNODES" \
  --nproc_per_node "$NPROC_PER_NODE" \
  --node-rank "$NODE_RANK" \
  --rdzv-backend c10d \
  --rdzv-endpoint "$MASTER_ADDR:$MASTER_PORT" \
  --rdzv-id "${RDZV_ID:-$EXPERIMENT}" \
  ${LOCAL_ADDR:+--local-addr "$LOCAL_ADDR"} \
  "$TRAIN" "$EXPERIMENT" "$@"
