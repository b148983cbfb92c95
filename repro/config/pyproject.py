"""Which paper a params file belongs to when it does not say: ``[tool.repro] paper``.

A project's ``pyproject.toml`` names its paper package once::

    [tool.repro]
    paper = "my_paper"

so that ``params.yaml`` (and every profile) may leave out ``paper:``. The nearest
``pyproject.toml`` with that key wins: the params file's folder, then each folder above
it, then the checkout that this kit is imported from.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import ConfigError

__all__ = ["KIT_ROOT", "default_paper"]

KIT_ROOT = Path(__file__).resolve().parents[2]  # the checkout holding repro/ (and the paper)


def _paper_key(path: Path) -> str | None:
    """``[tool.repro] paper`` of one pyproject.toml, or None."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the one key, read with a pattern
        section = re.search(r"^\[tool\.repro\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
        found = section and re.search(r"^paper\s*=\s*[\"']([^\"']+)[\"']", section[1], re.M)
        return found[1] if found else None
    try:
        paper = tomllib.loads(text).get("tool", {}).get("repro", {}).get("paper")
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    return paper if isinstance(paper, str) else None


def default_paper(start: str | os.PathLike) -> tuple[str, Path] | None:
    """The paper named by ``[tool.repro] paper``, and the pyproject.toml that names it.

    Args:
        start: the params file's folder (the search goes up from there).

    Returns:
        ``(package name, path of the pyproject.toml)``, or None when none names one.

    Example:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as d:
        ...     _ = (pathlib.Path(d) / "pyproject.toml").write_text('[tool.repro]\\npaper = "p"\\n')
        ...     default_paper(pathlib.Path(d) / "configs")[0]
        'p'
    """
    start = Path(start).resolve()
    for folder in (start, *start.parents, KIT_ROOT):
        pyproject = folder / "pyproject.toml"
        name = _paper_key(pyproject) if pyproject.is_file() else None
        if name:
            return name, pyproject
    return None
