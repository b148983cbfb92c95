"""Another profile's runs, saved for the report: ``results/<profile>/``.

One ``params.yaml`` holds one profile, so the report of the committed profile reads its own
runs (``models/<exp>/run.json``) and, to quote experiments that only other profiles train
(more seeds, more heads, a longer sequence), the runs those profiles made, saved here::

    python -m repro.config use seeds && dvc repro      # train and evaluate the profile
    python -m repro.reporting.saved_runs save          # -> results/seeds/ + dvc add
    git add results && git commit -m "Saved runs of the seeds profile" && dvc push
    python -m repro.config use default && dvc repro    # the report now reads them

A saved profile is a small project root, so the ordinary run reader reads it: its
``params.yaml``, and for each evaluated experiment ``models/<exp>/run.json`` with the
training segment of its W&B run and ``runs/<exp>/wandb/`` (the evaluation segment). Model
weights are not saved. The folder is a DVC output (``results/<profile>.dvc``, pushed with
``dvc push``). Committed to git beside it: ``results/<profile>.metrics.json``, every
experiment's ``metrics/<exp>.json`` (small, like the profile's own; the README's results
read them on any clone), and ``results/index.yaml``, the list of saved profiles, so a
clone knows what it has not pulled; the report and results stages depend on it.

The report names a saved run ``<profile>/<experiment>`` (``seeds/dup-full-s1``), in claims
and tables alike. When ``<profile>`` is the profile in ``params.yaml``, the name reads that
profile's own, current run instead, so running a profile again refreshes its numbers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from repro.io import atomic_write_text, read_json
from repro.reporting.runs import check_metrics, experiments_from_params, load_runs
from repro.tracking.layout import EVALUATION_DIR, find_run_segments
from repro.tracking.reader import Run, RunFetchError, read_run

__all__ = [
    "INDEX_FILE",
    "RESULTS_DIR",
    "SavedProfile",
    "load_saved_metrics",
    "load_saved_runs",
    "main",
    "metrics_path",
    "qualified",
    "read_index",
    "save_profile",
]

RESULTS_DIR = "results"
INDEX_FILE = f"{RESULTS_DIR}/index.yaml"
_PROFILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class SaveError(ValueError):
    """A profile cannot be saved (one line naming the file or experiment and what to do)."""


@dataclass(frozen=True)
class SavedProfile:
    """One entry of ``results/index.yaml``.

    Attributes:
        profile: the profile's name (``params.yaml``'s ``profile:``).
        experiments: the experiments saved, evaluated, in params order.
        not_run: the profile's experiments that had not been evaluated when it was saved
            (no run, no metrics file, or a metrics file that the run's evaluation summary
            does not match).
        commit: the git commit of the checkout that ran them (``None`` outside git).
        dirty: whether that checkout's code (the kit, the paper package, the stage scripts)
            had uncommitted changes.
        saved_at: when it was saved (UTC, ISO 8601).
    """

    profile: str
    experiments: tuple[str, ...]
    not_run: tuple[str, ...] = ()
    commit: str | None = None
    dirty: bool = False
    saved_at: str = ""


def qualified(profile: str, experiment: str) -> str:
    """The report's name of a saved run.

    Example:
        >>> qualified("seeds", "dup-full-s1")
        'seeds/dup-full-s1'
    """
    return f"{profile}/{experiment}"


def metrics_path(root: str | os.PathLike[str], profile: str) -> Path:
    """The saved profile's metrics, committed to git: ``results/<profile>.metrics.json``."""
    return Path(root) / RESULTS_DIR / f"{profile}.metrics.json"


def load_saved_metrics(
    root: str | os.PathLike[str] = ".", *, current_profile: str | None = None
) -> dict[str, dict[str, Any]]:
    """Every saved profile's metrics files, as ``{"<profile>/<experiment>": metrics}``.

    They are in git, so they are here even where the runs were not pulled: the README's
    results show them on any clone.

    Raises:
        ValueError: a metrics file is missing or not valid JSON (one line naming it).
    """
    found: dict[str, dict[str, Any]] = {}
    for name in read_index(root):
        if name == current_profile:
            continue
        data = read_json(metrics_path(root, name), "saved metrics")
        found.update({qualified(name, exp): values for exp, values in data.items()})
    return found


def read_index(root: str | os.PathLike[str] = ".") -> dict[str, SavedProfile]:
    """The saved profiles that ``results/index.yaml`` lists (none when it is absent).

    Raises:
        ValueError: the index is not a mapping of profile -> entry (one line naming it).
    """
    path = Path(root) / INDEX_FILE
    if not path.is_file():
        return {}
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    profiles = raw.get("profiles") if isinstance(raw, Mapping) else None
    if profiles is None:
        return {}
    if not isinstance(profiles, Mapping):
        raise ValueError(f"{path}: profiles={profiles!r} must map a profile to its entry")
    index = {}
    for name, entry in profiles.items():
        if not isinstance(entry, Mapping) or not isinstance(entry.get("experiments"), list):
            raise ValueError(f"{path}: profiles.{name} must hold an experiments list")
        index[str(name)] = SavedProfile(
            profile=str(name),
            experiments=tuple(str(e) for e in entry["experiments"]),
            not_run=tuple(str(e) for e in entry.get("not_run") or ()),
            commit=entry.get("commit"),
            dirty=bool(entry.get("dirty", False)),
            saved_at=str(entry.get("saved_at", "")),
        )
    return index


def _write_index(root: Path, index: Mapping[str, SavedProfile]) -> None:
    entries = {}
    for name in sorted(index):
        entry = asdict(index[name])
        del entry["profile"]
        entry["experiments"] = list(entry["experiments"])
        entry["not_run"] = list(entry["not_run"])
        entries[name] = entry
    header = (
        "# Profiles whose runs are saved under results/<profile>/ (a DVC output each:\n"
        "# results/<profile>.dvc). Written by `python -m repro.reporting.saved_runs save`;\n"
        "# the report stage depends on this file. See results/README.md.\n"
    )
    body = yaml.safe_dump({"profiles": entries}, sort_keys=False, default_flow_style=None)
    atomic_write_text(root / INDEX_FILE, header + body)


def _git(source: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(source), *args], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def _evaluated(source: Path, exp: str) -> bool:
    """Whether ``exp``'s run holds the evaluation its metrics file says: the file may be
    another run's (a committed one, while this run is still training)."""
    ref, metrics = source / "models" / exp / "run.json", source / "metrics" / f"{exp}.json"
    if not (ref.is_file() and metrics.is_file()):
        return False
    try:
        run = read_run(ref, root=source)
        return not check_metrics(exp, run, metrics)  # a note: the run lacks a number
    except ValueError:  # unreadable, or the numbers differ: not this run's evaluation
        return False


def _run_folders(source: Path, exp: str) -> list[Path]:
    """The segment folders of ``exp``'s offline run, relative to ``source``."""
    path = source / "models" / exp / "run.json"
    ref = read_json(path, "run reference")
    if not isinstance(ref, Mapping):
        raise SaveError(f"{path}: a run reference must be a JSON object")
    if ref.get("mode", "offline") != "offline" or not ref.get("run_dir"):
        return []  # an online run: run.json is all the reader needs
    also = [source / EVALUATION_DIR / exp / "wandb"]
    folders = []
    for record in find_run_segments(source / ref["run_dir"], also):
        try:
            folders.append(record.parent.resolve().relative_to(source))
        except ValueError:
            raise SaveError(
                f"{source / 'models' / exp / 'run.json'}: its run {record.parent} is outside "
                f"{source}; save from the checkout that holds it"
            ) from None
    return folders


def save_profile(
    source: str | os.PathLike[str], dest: str | os.PathLike[str] | None = None, *, dvc: bool = True
) -> SavedProfile:
    """Copy the runs of ``source``'s current profile to ``dest``/results/<profile>/.

    Args:
        source: the project root that ran the profile (its ``params.yaml`` names it).
        dest: the project root to save into (default: ``source``; another clone's runs are
            saved by naming that clone as ``source``).
        dvc: track the folder with ``dvc add`` (``results/<profile>.dvc``).

    Returns:
        The index entry written.

    Raises:
        SaveError: no experiment of the profile has been evaluated, or ``dvc add`` failed.
    """
    source = Path(source).resolve()
    dest = Path(dest).resolve() if dest is not None else source
    if not (source / "params.yaml").is_file():
        raise SaveError(f"{source}: no params.yaml; name the checkout that ran the profile")
    params = yaml.safe_load((source / "params.yaml").read_text()) or {}
    profile = str(params.get("profile") or "")
    if not _PROFILE.fullmatch(profile):
        raise SaveError(f"{source / 'params.yaml'}: profile={profile!r} must name the profile")
    names = experiments_from_params(params)
    done = [e for e in names if _evaluated(source, e)]
    if not done:
        raise SaveError(
            f"{source}: no experiment of profile {profile!r} has been evaluated "
            "(models/<exp>/run.json and metrics/<exp>.json); run `dvc repro` first"
        )
    out = dest / RESULTS_DIR / profile
    staging = dest / RESULTS_DIR / f".{profile}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    ignore = shutil.ignore_patterns("*.pt", "*.pt.tmp*")  # weights stay with the models
    for exp in done:
        shutil.copytree(source / "models" / exp, staging / "models" / exp, ignore=ignore)
        evaluation = source / EVALUATION_DIR / exp
        if evaluation.is_dir():
            shutil.copytree(evaluation, staging / EVALUATION_DIR / exp)
        for folder in _run_folders(source, exp):  # where run.json's run lives, if elsewhere
            if not (staging / folder).exists():
                shutil.copytree(source / folder, staging / folder)
    shutil.copy2(source / "params.yaml", staging / "params.yaml")
    metrics = {}
    for exp in done:
        metrics[exp] = read_json(source / "metrics" / f"{exp}.json", "metrics file")
    paper = str(params.get("paper") or "")
    code = [p for p in ("repro", "pipelines", paper) if p and (source / p).exists()]
    status = _git(source, "status", "--porcelain", "--", *code)
    entry = SavedProfile(
        profile=profile,
        experiments=tuple(done),
        not_run=tuple(e for e in names if e not in done),
        commit=_git(source, "rev-parse", "HEAD"),
        dirty=bool(status),
        saved_at=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
    )
    if out.exists():  # replaced only once the new copy is complete
        shutil.rmtree(out)
    staging.rename(out)
    atomic_write_text(metrics_path(dest, profile), json.dumps(metrics, indent=2) + "\n")
    index = dict(read_index(dest))
    index[profile] = entry
    _write_index(dest, index)
    if dvc:
        try:
            subprocess.run(
                [sys.executable, "-m", "dvc", "add", "-q", f"{RESULTS_DIR}/{profile}"],
                cwd=dest,
                check=True,
                capture_output=True,
                text=True,
            )
        except subprocess.CalledProcessError as exc:
            reason = (exc.stderr or exc.stdout or "").strip().splitlines()
            raise SaveError(
                f"dvc add {RESULTS_DIR}/{profile} failed ({reason[-1] if reason else exc}); "
                "the copy is in place, run it by hand"
            ) from None
    return entry


def load_saved_runs(
    root: str | os.PathLike[str], *, current_profile: str | None = None
) -> tuple[dict[str, Run], list[str]]:
    """The saved runs the index lists, by their qualified names, and warnings.

    A profile that is ``current_profile`` is skipped (its own runs are read instead), and
    one whose folder is not here (not pulled) gives a warning and no runs: the claims and
    cells that name it are "not run".

    Args:
        root: the project root.
        current_profile: the profile in ``params.yaml``.

    Returns:
        ``({"<profile>/<exp>": Run}, warnings)``.

    Raises:
        ValueError: a saved run or metrics file is unreadable or disagrees (names it).
    """
    root = Path(root)
    runs: dict[str, Run] = {}
    warnings: list[str] = []
    metrics = load_saved_metrics(root, current_profile=current_profile)
    for name, entry in read_index(root).items():
        if name == current_profile:
            continue
        home = root / RESULTS_DIR / name
        if not (home / "params.yaml").is_file():
            warnings.append(
                f"{RESULTS_DIR}/{name}: saved runs not here; `dvc pull {RESULTS_DIR}/{name}.dvc`"
                " then `dvc repro -f report` (until then its claims are not run)"
            )
            continue
        loaded = load_runs(entry.experiments, root=home)
        source = str(metrics_path(root, name))
        for exp, run in loaded.items():
            saved = metrics.get(qualified(name, exp), {})
            notes = check_metrics(exp, run, saved, source)
            warnings += [f"{RESULTS_DIR}/{name}: {note}" for note in notes]
            runs[qualified(name, exp)] = run
    return runs, warnings


def _print_index(root: Path) -> None:
    index = read_index(root)
    if not index:
        print(f"{root / INDEX_FILE}: no saved profile")
    for name, entry in index.items():
        here = "here" if (root / RESULTS_DIR / name / "params.yaml").is_file() else "not pulled"
        commit = (entry.commit or "no commit")[:10] + (
            " (uncommitted changes)" if entry.dirty else ""
        )
        print(
            f"{name}: {len(entry.experiments)} runs, saved {entry.saved_at} from {commit}, {here}"
            + (f"; not run: {', '.join(entry.not_run)}" if entry.not_run else "")
        )


def main(argv: Sequence[str] | None = None) -> int:
    """``save`` the current profile's runs, or ``list`` the saved profiles."""
    parser = argparse.ArgumentParser(
        prog="python -m repro.reporting.saved_runs", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    save = sub.add_parser("save", help="save the current profile's evaluated runs")
    save.add_argument("--from", dest="source", default=".", help="the checkout that ran it")
    save.add_argument("--root", default=".", help="the project to save into (default: .)")
    save.add_argument("--no-dvc", action="store_true", help="skip `dvc add`")
    listing = sub.add_parser("list", help="list the saved profiles")
    listing.add_argument("--root", default=".")
    args = parser.parse_args(argv)
    root = Path(args.root)
    if args.command == "list":
        _print_index(root)
        return 0
    try:
        entry = save_profile(args.source, root, dvc=not args.no_dvc)
    except (OSError, ValueError, RunFetchError) as exc:
        print(f"saved_runs: error: {exc}", file=sys.stderr)
        return 2
    skipped = f"; not evaluated, left out: {', '.join(entry.not_run)}" if entry.not_run else ""
    print(
        f"saved_runs: {len(entry.experiments)} runs of profile {entry.profile!r} in "
        f"{RESULTS_DIR}/{entry.profile}/{skipped}\n"
        f"next: git add {RESULTS_DIR} && git commit -m 'Saved runs of the {entry.profile} "
        "profile' && dvc push"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
