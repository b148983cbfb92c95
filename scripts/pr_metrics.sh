#!/usr/bin/env bash
# The pull-request comment's smoke comparison, exactly as the PR metrics workflow makes it
# (.github/workflows/pr-metrics.yml), and runnable before pushing:
#
#   bash scripts/pr_metrics.sh BASE OUT        e.g.  bash scripts/pr_metrics.sh main /tmp/pr
#
# Runs the smoke profile twice with scripts/smoke_metrics.sh, one after the other on this
# machine with this environment (.venv): on this working tree (the head) and on a scratch git
# worktree of BASE (the base). Both sides on one machine is what makes them comparable: a smoke
# run repeats bit for bit on one machine, but its metrics move by several percent with the
# number of threads or the CPU (measured: 1 vs 2 threads per rank moved greedy BLEU by 10
# points), so a baseline from another machine would show changes the code did not make.
# Writes into OUT:
#   head/, base/      the two metrics folders (<experiment>.json, curves/<experiment>.csv,
#                     params.yaml: the smoke params each side ran with)
#   base-error.txt    empty, or why the base could not run (then base/ is empty)
#   curves.png        both sides' training curves
#   comment.md        the comment (python -m repro.reporting.pr_comment render), linking
#                     curves.png beside it; the workflow renders it again with the link to
#                     the uploaded artifact instead
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: bash scripts/pr_metrics.sh BASE OUT   (BASE: a branch, tag or commit)" >&2
    exit 2
fi
base_ref=$1
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
out=$(mkdir -p "$2" && cd "$2" && pwd -P)
cd "$root"
base_commit=$(git rev-parse --verify --quiet "$base_ref^{commit}") ||
    { echo "pr_metrics: BASE '$base_ref' is not a commit of this repository" >&2; exit 2; }

worktree=$(mktemp -d "${TMPDIR:-/tmp}/pr-metrics-base.XXXXXX")
trap 'git -C "$root" worktree remove --force "$worktree" 2>/dev/null || true; rm -rf "$worktree"' EXIT
rm -rf "$out/head" "$out/base" "$out/curves.png" "$out/comment.md"
: > "$out/base-error.txt"

echo "pr_metrics: smoke run of the head (this working tree)"
bash scripts/smoke_metrics.sh "$out/head"

echo "pr_metrics: smoke run of the base ($base_ref, ${base_commit:0:7})"
git worktree add --quiet --detach "$worktree" "$base_commit"
if ! bash scripts/smoke_metrics.sh "$out/base" "$worktree" > "$out/base.log" 2>&1; then
    reason=$(grep -v '^[[:space:]]*$' "$out/base.log" | tail -n 1 | cut -c1-300)
    echo "the smoke run of $base_ref failed: $reason" > "$out/base-error.txt"
    rm -rf "$out/base"
    mkdir -p "$out/base"
    cat "$out/base-error.txt" >&2
fi

.venv/bin/python -m repro.reporting.pr_comment plot "$out/base" "$out/head" "$out/curves.png"
.venv/bin/python -m repro.reporting.pr_comment render "$out/base" "$out/head" \
    --base-label "$base_ref" --head-label "${HEAD_LABEL:-this branch}" \
    --base-error "$out/base-error.txt" --plot-url curves.png --out "$out/comment.md"
echo "pr_metrics: wrote $out/comment.md and $out/curves.png"
