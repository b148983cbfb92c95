#!/usr/bin/env bash
# The smoke profile's experiments, run in a scratch copy of a source tree; their metrics and
# training curves collected into one folder. This is what the pull-request comment compares
# (.github/workflows/pr-metrics.yml), and `make smoke-baseline` writes the committed baseline
# metrics/smoke/ with it, so both sides of the comparison come from the same procedure.
#
#   bash scripts/smoke_metrics.sh OUT [SOURCE]
#
# SOURCE (default: this working tree, uncommitted changes included) is copied without its
# git-ignored files (data, models, caches) into a new git repository in a temporary folder,
# switched to the smoke profile and run with `dvc repro evaluate` (prepare, train and evaluate
# of every smoke experiment; not the benchmark, whose timings depend on the machine). OUT then
# holds exactly <experiment>.json and curves/<experiment>.csv of each smoke experiment, and the
# params.yaml they ran with. The source tree is never touched: its params.yaml, dvc.lock and
# metrics/ keep their own profile.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: bash scripts/smoke_metrics.sh OUT [SOURCE]" >&2
    exit 2
fi
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
out=$(mkdir -p "$1" && cd "$1" && pwd -P)
source_tree=$(cd "${2:-$root}" && pwd -P)
venv="$root/.venv"
[ -x "$venv/bin/dvc" ] || { echo "smoke_metrics: $venv/bin/dvc is missing; run make setup" >&2; exit 1; }

scratch=$(mktemp -d "${TMPDIR:-/tmp}/smoke-metrics.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# The files git would commit: tracked (minus deleted ones) and untracked but not ignored.
(
    cd "$source_tree"
    git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
        if [ -e "$f" ] || [ -L "$f" ]; then cp -P --parents -- "$f" "$scratch/"; fi
    done
)
ln -s "$venv" "$scratch/.venv"  # dvc.yaml runs .venv/bin/python

cd "$scratch"
git init -q
git add -A
git -c user.name=smoke -c user.email=smoke@localhost commit -qm "smoke metrics" --no-verify
# The copy's own packages, not the editable install's (which points at $root), and runs kept
# offline: these are throwaway runs that must never reach the team's W&B project.
export PYTHONPATH="$scratch${PYTHONPATH:+:$PYTHONPATH}"
export WANDB_MODE=offline WANDB_SILENT=true DVC_NO_ANALYTICS=1
unset WANDB_RUN_GROUP DVC_EXP_NAME
.venv/bin/python -m repro.config use smoke
.venv/bin/dvc repro evaluate
# collected by this tree's module (the source may predate it); `python -m` imports from the cwd
cd "$root"
PYTHONPATH="$root" "$venv/bin/python" -m repro.reporting.pr_comment collect "$scratch" "$out"
