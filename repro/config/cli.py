"""Profiles and the command line: ``python -m repro.config use | check | show``.

Profiles live in ``configs/<name>.yaml`` (smoke, default, paper): ``use`` validates one and
copies it, verbatim, to ``params.yaml``; ``check`` validates ``params.yaml`` and this
machine's resources; ``show`` prints one experiment's resolved parameters.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from repro.io import atomic_write_text

from .errors import ConfigError, suggest
from .params import PARAMS_FILE, load_params
from .runtime import check_runtime

__all__ = ["PROFILES_DIR", "main", "use_profile"]

PROFILES_DIR = "configs"


def use_profile(profile: str, root: str | os.PathLike = ".") -> Path:
    """Validate ``configs/<profile>.yaml`` and copy it, verbatim, to ``params.yaml``.

    Args:
        profile: a file name under ``configs/`` without ``.yaml`` (smoke, default, paper).
        root: the repository root.

    Returns:
        The written ``params.yaml``.

    Raises:
        ConfigError: unknown profile, or the profile holds a bad parameter.

    Example:
        >>> use_profile("nope", root="/nonexistent")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        repro.config.errors.ConfigError: profile 'nope' is unknown; allowed: (no configs/*.yaml ...
    """
    root = Path(root)
    profiles = sorted(p.stem for p in (root / PROFILES_DIR).glob("*.yaml"))
    if profile not in profiles:
        raise ConfigError(
            f"profile {profile!r} is unknown{suggest(profile, profiles)}; allowed: "
            f"{', '.join(profiles) or '(no configs/*.yaml found)'}"
        )
    source = root / PROFILES_DIR / f"{profile}.yaml"
    load_params(source)
    target = root / PARAMS_FILE
    atomic_write_text(target, source.read_text(encoding="utf-8"))
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m repro.config {use PROFILE | check [EXPERIMENT ...] | show EXPERIMENT}``.

    Returns the exit status: 0, or 2 after printing ``error: <one line>`` to stderr.

    Example:
        >>> main(["check", "--params", "no/such/params.yaml"])
        2
    """
    parser = argparse.ArgumentParser(
        prog="python -m repro.config", description="Profiles and validation of params.yaml."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    use = sub.add_parser("use", help="copy configs/PROFILE.yaml to params.yaml")
    use.add_argument("profile")
    check = sub.add_parser("check", help="validate params.yaml (and this machine's resources)")
    check.add_argument("experiments", nargs="*", help="also require these experiments to exist")
    show = sub.add_parser("show", help="print one experiment's resolved parameters as JSON")
    show.add_argument("experiment")
    for p in (use, check, show):
        p.add_argument("--params", default=PARAMS_FILE, help="params file (default params.yaml)")
    args = parser.parse_args(argv)
    try:
        if args.command == "use":
            target = use_profile(args.profile, Path(args.params).parent)
            params = load_params(target)
            print(
                f"{target}: profile {args.profile!r} with experiments "
                f"{', '.join(params.experiments)}"
            )
        elif args.command == "check":
            params = load_params(args.params)
            for name in args.experiments:
                params.experiment(name)
            check_runtime(params)
            if args.experiments:  # the train stage's pre-check: refuse before any rank starts
                from repro.tracking.mode import RecordingDisabledError, require_recording

                try:
                    require_recording(f"train {', '.join(args.experiments)}")
                except RecordingDisabledError as err:
                    raise ConfigError(str(err)) from None
            print(
                f"{args.params}: ok (profile {params.profile!r}, "
                f"{len(params.experiments)} experiments: {', '.join(params.experiments)})"
            )
        else:
            params = load_params(args.params)
            print(json.dumps(params.wandb_config(args.experiment), indent=2))
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
