"""Write the README's results section from the metrics files (stage ``results``).

Usage:
    python pipelines/results.py            # rewrite the section between the markers
    python pipelines/results.py --check    # exit 1 if README.md is out of date

The section is :func:`repro.reporting.readme.render_results` of the project: the tables of
``report/claims.yaml`` through the ``readme_tables`` plug-in of the paper that
``params.yaml`` names (``paper:``), over ``metrics/*.json`` and the metrics other profiles
saved under ``results/``, and the benchmark headline of ``metrics/benchmark.json``.
Only the committed profile (``default``) writes the README: another profile's numbers
(smoke, a paper-scale run) would otherwise land in the README and be committed by mistake,
so for those the stage writes the section to ``report/build/results-<profile>.md``
instead (git-ignored) and says so. Exit status: 0 done (or up to date), 1 stale (``--check``), 2
bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout's own packages, installed or not

from repro.config import load_params  # noqa: E402
from repro.io import atomic_write_text  # noqa: E402
from repro.paper import load_paper  # noqa: E402
from repro.reporting.readme import read_section, render_results, update_readme  # noqa: E402

COMMITTED_PROFILE = "default"  # the profile whose numbers the README shows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=".", help="project root (default: .)")
    parser.add_argument("--check", action="store_true", help="fail if README.md is stale")
    args = parser.parse_args(argv)
    root = Path(args.root)
    readme = root / "README.md"
    try:
        params = load_params(root / "params.yaml")
        section = render_results(root, load_paper(params.paper), params.profile)
        if params.profile != COMMITTED_PROFILE and not args.check:
            aside = root / "report" / "build" / f"results-{params.profile}.md"
            atomic_write_text(aside, section.strip() + "\n")
            print(
                f"results: profile {params.profile!r} is not the committed "
                f"{COMMITTED_PROFILE!r}: README.md left as it is, wrote {aside}"
            )
            return 0
        if args.check:
            if read_section(readme) != section.strip():
                print(f"{readme}: results section is stale; run `python pipelines/results.py`")
                return 1
            print(f"{readme}: results section is up to date")
            return 0
        changed = update_readme(readme, section)
    except (OSError, ValueError) as err:  # ConfigError and PaperError are ValueErrors
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{readme}: results section {'updated' if changed else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
