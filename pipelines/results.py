"""Write the README's results section from the metrics files (stage ``results``).

Usage:
    python pipelines/results.py            # rewrite the section between the markers
    python pipelines/results.py --check    # exit 1 if README.md is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from repro.reporting.readme import END, START, render_results, update_readme


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=".", help="project root (default: .)")
    parser.add_argument("--check", action="store_true", help="fail if README.md is stale")
    args = parser.parse_args(argv)
    root = Path(args.root)
    readme = root / "README.md"
    try:
        section = render_results(root)
        if args.check:
            text = readme.read_text()
            current = text[text.find(START) + len(START) : text.find(END)].strip()
            if current != section.strip():
                print(f"{readme}: results section is stale; run `python pipelines/results.py`")
                return 1
            print(f"{readme}: results section is up to date")
            return 0
        changed = update_readme(readme, section)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{readme}: results section {'updated' if changed else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
