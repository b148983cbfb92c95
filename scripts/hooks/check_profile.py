"""pre-commit hook: a commit's params.yaml is on the default profile.

The committed dvc.lock and metrics/, and the README's results made from them, must come from
the profile they claim, the default one. A params.yaml switched to another profile (``make
profile-smoke`` to try a change, ``make profile-paper`` on a cluster) is fine to run but not
to commit; this hook fails with one line saying how to switch back. It reads the file as the
commit will hold it (pre-commit sets unstaged changes aside first), with the YAML parser DVC
uses, so it needs nothing beyond the hook's DVC environment.

    python scripts/hooks/check_profile.py [PARAMS]      (default: params.yaml)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

EXPECTED = "default"


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0] if argv else "params.yaml")
    if not path.is_file():
        return 0
    from ruamel.yaml import YAML, YAMLError

    try:
        params = YAML(typ="safe").load(path.read_text())
    except YAMLError as err:
        print(f"{path}: not valid YAML ({str(err).splitlines()[0]})")
        return 1
    profile = params.get("profile") if isinstance(params, dict) else None
    if profile != EXPECTED:
        print(
            f"{path}: profile is {profile!r}, but only the {EXPECTED!r} profile may be "
            f"committed; switch back with `make profile-{EXPECTED}`"
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
