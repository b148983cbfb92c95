#!/usr/bin/env bash
# Set up everything this repository needs. Safe to run again: a second run checks and returns
# in about a second.
#
#   bash scripts/setup.sh        (what `make setup` runs; `make reproduce` and `make test` too)
#
# Steps, each skipped when already done:
#   1. Python >= 3.10 (only needed to create .venv);
#   2. TeX Live and poppler through apt-get for the report, and tcmalloc for the benchmark's
#      longest training step (as root, or with passwordless sudo); otherwise it prints the
#      exact install command and stops;
#   3. .venv with the package and its pinned dependencies (requirements/constraints.txt),
#      reinstalled only when pyproject.toml or the constraints change (.setup-stamp);
#   4. the pre-commit hook environments (same pins), and the git hooks (pre-commit, DVC's
#      pre-push and post-checkout) in a git checkout, outside CI.
#
# Environment variables:
#   PYTHON=python3.12     interpreter that creates .venv (default: python3)
#   BENCH=1               also install the `bench` extra (peer implementations for benchmarks)
#   TORCH_INDEX_URL=URL   extra index for torch wheels, e.g. a CUDA build:
#                         https://download.pytorch.org/whl/cu128 (CI uses .../whl/cpu);
#                         remembered in .setup-stamp for later calls
#   SETUP_SKIP_SYSTEM=1   skip step 2 (only the report needs TeX Live and poppler; without
#                         tcmalloc the benchmark's longest step runs under glibc, ~1.8x slower)
#   APT_CACHE_DIR=DIR     keep the downloaded .deb files in DIR (CI caches it)
#   CI=true               skip the git hooks
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV=.venv
PYTHON=${PYTHON:-python3}
CONSTRAINTS=requirements/constraints.txt
STAMP=.setup-stamp
# What the report stage needs: latexmk + pdflatex + the LaTeX packages
# the report uses, and pdftotext/pdftoppm to read the PDF back in tests.
APT_PACKAGES="latexmk texlive-latex-base texlive-latex-recommended texlive-latex-extra \
texlive-pictures texlive-fonts-recommended lmodern poppler-utils libtcmalloc-minimal4"
# Newer releases (Ubuntu 24.04, Debian 13) name tcmalloc's package with a t64 suffix.
TCMALLOC_T64=libtcmalloc-minimal4t64
BREW_LINE="brew install --cask mactex-no-gui && brew install poppler"
SKIP_HINT="or set SETUP_SKIP_SYSTEM=1 to go on without them (then the report cannot be built)"

say() { printf 'setup: %s\n' "$*"; }

# The package list with tcmalloc under the name this release's apt knows.
tcmalloc_name() {
    if command -v apt-cache >/dev/null 2>&1 && apt-cache show "$TCMALLOC_T64" >/dev/null 2>&1; then
        printf '%s' "$1" | sed "s/libtcmalloc-minimal4\( \|$\)/$TCMALLOC_T64\1/"
    else
        printf '%s' "$1"
    fi
}

die() {
    printf 'setup: error: %s\n' "$*" >&2
    exit 1
}
is_true() { case "${1:-}" in 1 | true | TRUE | True | yes) return 0 ;; *) return 1 ;; esac }

venv_ok() {
    [ -x "$VENV/bin/python" ] &&
        "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null
}

# --- 1. Python ---------------------------------------------------------------------------
need_venv=0
venv_ok || need_venv=1
missing_apt=""
if [ "$need_venv" = 1 ]; then
    how="install it (Debian/Ubuntu: apt-get install python3 python3-venv; macOS: brew install python@3.12) or point PYTHON= at one"
    command -v "$PYTHON" >/dev/null 2>&1 || die "Python >= 3.10 is needed and '$PYTHON' was not found: $how"
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
        found=$("$PYTHON" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null) || true
        found=${found:-of unknown version}
        die "Python >= 3.10 is needed and '$PYTHON' is $found: $how"
    fi
    if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
        # Debian splits venv/ensurepip into python3.X-venv.
        pyver=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
        if command -v dpkg-query >/dev/null 2>&1; then
            missing_apt="python$pyver-venv"
        else
            die "'$PYTHON' cannot create virtual environments (no venv/ensurepip module): install a full Python $pyver or point PYTHON= at one"
        fi
    fi
fi

# --- 2. System packages (TeX Live, poppler) ----------------------------------------------
if is_true "${SETUP_SKIP_SYSTEM:-}"; then
    [ -z "$missing_apt" ] || die "'$PYTHON' cannot create virtual environments: apt-get install $missing_apt"
elif command -v dpkg-query >/dev/null 2>&1; then
    # shellcheck disable=SC2086  # word splitting of the package list is intended
    installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' $APT_PACKAGES $TCMALLOC_T64 \
        2>/dev/null || true)
    for pkg in $APT_PACKAGES; do
        case "$installed" in *"$pkg installed"*) continue ;; esac
        if [ "$pkg" = libtcmalloc-minimal4 ]; then
            case "$installed" in *"$TCMALLOC_T64 installed"*) continue ;; esac
        fi
        missing_apt="$missing_apt $pkg"
    done
    missing_apt=$(tcmalloc_name "${missing_apt# }")
    if [ -n "$missing_apt" ]; then
        if [ "$(id -u)" = 0 ]; then
            sudo=""
        elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo="sudo"
        else
            die "missing system packages ($missing_apt); install them with: sudo apt-get install -y --no-install-recommends $missing_apt   ($SKIP_HINT)"
        fi
        command -v apt-get >/dev/null 2>&1 ||
            die "missing system packages ($missing_apt) and no apt-get: install them with your package manager ($SKIP_HINT)"
        say "installing system packages: $missing_apt"
        apt_opts=""
        if [ -n "${APT_CACHE_DIR:-}" ]; then
            mkdir -p "$APT_CACHE_DIR/partial"
            apt_opts="-o Dir::Cache::Archives=$APT_CACHE_DIR -o APT::Keep-Downloaded-Packages=true"
        fi
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
        missing_apt=$(tcmalloc_name "$missing_apt")  # the lists are fresh now
        # shellcheck disable=SC2086
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            $apt_opts $missing_apt
        if [ -n "$sudo" ] && [ -n "${APT_CACHE_DIR:-}" ]; then
            # apt leaves root-owned files; the CI cache step runs as the normal user.
            sudo chown -R "$(id -u):$(id -g)" "$APT_CACHE_DIR"
        fi
    fi
else
    missing_cmds=""
    for cmd in latexmk pdflatex pdftotext; do
        command -v "$cmd" >/dev/null 2>&1 || missing_cmds="$missing_cmds $cmd"
    done
    [ -z "$missing_cmds" ] ||
        die "missing${missing_cmds} (TeX Live and poppler) and no apt-get; install them with: $BREW_LINE   ($SKIP_HINT)"
fi

# --- 3. Virtual environment and pinned packages ------------------------------------------
if [ "$need_venv" = 1 ]; then
    if [ -e "$VENV" ]; then
        say "$VENV does not work (moved, or made by a removed Python): recreating it"
        rm -rf "$VENV"
    fi
    say "creating $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
fi

extras=dev
is_true "${BENCH:-}" && extras=dev,bench
# The stamp records what was installed: a hash of the dependency files, the repository's path
# (the install is editable) and the interpreter; the extras; and the torch index, which sticks
# (a later call without TORCH_INDEX_URL keeps a CUDA torch a CUDA torch).
want=$("$VENV/bin/python" -c '
import hashlib, os, sys
h = hashlib.sha256()
for name in ("pyproject.toml", "requirements/constraints.txt"):
    with open(name, "rb") as f:
        h.update(f.read())
h.update(os.getcwd().encode())
h.update(sys.version.encode())
print(h.hexdigest())')
have_hash="" have_extras="" have_index="-"
if [ -f "$STAMP" ]; then
    read -r have_hash have_extras have_index <"$STAMP" || true
    have_index=${have_index:--}
fi
torch_index=${TORCH_INDEX_URL:-}
[ -n "$torch_index" ] || [ "$have_index" = "-" ] || torch_index=$have_index
up_to_date=0
if [ "$have_hash" = "$want" ] && [ "$have_index" = "${torch_index:--}" ]; then
    case "$extras,$have_extras" in
    dev,dev | dev,dev,bench | dev,bench,dev,bench) up_to_date=1 ;;
    esac
fi
if [ "$up_to_date" = 1 ]; then
    say "python packages up to date ($VENV, extras: $have_extras)"
else
    [ "$have_extras" = dev,bench ] && extras=dev,bench
    say "installing the pinned python packages into $VENV (extras: $extras)"
    rm -f "$STAMP"
    pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
    if [ -n "$torch_index" ]; then
        say "torch from $torch_index"
        # Another build of the same pinned version (CUDA or CPU): its local version label
        # (+cu128, +cpu) ranks above the plain release, so --upgrade switches to it.
        "${pip[@]}" -c "$CONSTRAINTS" --extra-index-url "$torch_index" --upgrade torch
        pip+=(--extra-index-url "$torch_index")
    fi
    "${pip[@]}" -c "$CONSTRAINTS" -e ".[$extras]"
    printf '%s %s %s\n' "$want" "$extras" "${torch_index:--}" >"$STAMP"
fi

# --- 4. pre-commit hook environments and git hooks -----------------------------------------
if ! git rev-parse --git-dir >/dev/null 2>&1; then
    say "not a git checkout: pre-commit hooks skipped (clone the repository to get them)"
else
    # install-hooks returns at once when the environments exist; PIP_CONSTRAINT pins the
    # hooks' own dependencies to the same versions as .venv.
    PIP_CONSTRAINT="$PWD/$CONSTRAINTS" "$VENV/bin/pre-commit" install-hooks
    if is_true "${CI:-}"; then
        say "CI: git hooks not installed"
    else
        hooks_dir=$(git rev-parse --git-path hooks)
        installed_hooks=1
        for hook in pre-commit pre-push post-checkout; do
            grep -qs "pre-commit" "$hooks_dir/$hook" || installed_hooks=0
        done
        if [ "$installed_hooks" = 0 ]; then
            "$VENV/bin/pre-commit" install >/dev/null 2>&1 &&
                say "git hooks installed: pre-commit (lint), pre-push (dvc push), post-checkout (dvc checkout)" ||
                say "warning: could not install the git hooks (is core.hooksPath set?); run '$VENV/bin/pre-commit install' yourself"
        fi
    fi
fi

say "ready: run commands with $VENV/bin/... (or 'source $VENV/bin/activate')"
