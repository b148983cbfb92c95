"""LaTeX text for the report: escaping, macro names, number formats and ``\\newcommand`` sets.

Everything numeric the report prints goes through one of the formatters here, so a number
looks the same in every table and in the prose: fixed decimals (:func:`format_number`),
significant digits (:func:`format_significant`), a paper's number as printed
(:func:`published`) or a duration (:func:`format_duration`). A number that does not exist
(an experiment that has not run) is ``MISSING`` (``---``), never a made-up value.
"""

from __future__ import annotations

import math
import re

__all__ = [
    "MISSING",
    "Macros",
    "format_duration",
    "format_number",
    "format_significant",
    "latex_escape",
    "latex_inline",
    "macro_name",
    "published",
    "unit_suffix",
]

#: What a table cell shows for a number that does not exist (not run).
MISSING = "---"

_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\u00a0": "~",  # a no-break space ("Figure 5") is LaTeX's tie
}


def latex_escape(text: object) -> str:
    """Escape a string for LaTeX text mode.

    Args:
        text: anything; it is converted with ``str``.

    Example:
        >>> latex_escape("eval/accuracy_lsh4 = 50% & {more}")
        'eval/accuracy\\\\_lsh4 = 50\\\\% \\\\& \\\\{more\\\\}'
    """
    return "".join(_ESCAPES.get(ch, ch) for ch in str(text))


def latex_inline(text: object) -> str:
    """Escape plain text for LaTeX, with code spans (between backticks) in ``\\texttt``.

    Captions that a stage writes into a JSON file use it: plain text that reads well in
    Markdown too, with file names and keys marked as code.

    Example:
        >>> print(latex_inline("from `metrics/benchmark.json`, 50%"))
        from \\texttt{metrics/benchmark.json}, 50\\%
    """
    parts = str(text).split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: no code spans, escape it all
        return latex_escape(text)
    return "".join(
        rf"\texttt{{{latex_escape(p)}}}" if i % 2 else latex_escape(p) for i, p in enumerate(parts)
    )


_WORDS = (
    "Zero",
    "One",
    "Two",
    "Three",
    "Four",
    "Five",
    "Six",
    "Seven",
    "Eight",
    "Nine",
    "Ten",
    "Eleven",
    "Twelve",
    "Thirteen",
    "Fourteen",
    "Fifteen",
    "Sixteen",
    "Seventeen",
    "Eighteen",
    "Nineteen",
    "Twenty",
)


def _number_word(digits: str) -> str:
    value = int(digits)
    if value <= 20:
        return _WORDS[value]
    return "".join(_WORDS[int(d)] for d in digits)


def macro_name(*parts: str) -> str:
    """A LaTeX macro name (letters only) from words that may hold digits and punctuation.

    Args:
        parts: pieces such as ``"acc"``, ``"lsh4"``, ``"dup-full"``.

    Returns:
        CamelCase letters; each number is spelled out (12 -> Twelve, 1024 -> OneZeroTwoFour).

    Example:
        >>> macro_name("acc", "lsh4", "eval", "lsh8")
        'AccLshFourEvalLshEight'
        >>> macro_name("enwik8-12l", "bpc")
        'EnwikEightTwelveLBpc'
    """
    words: list[str] = []
    for part in parts:
        for token in re.findall(r"[A-Za-z]+|\d+", str(part)):
            words.append(_number_word(token) if token.isdigit() else token[0].upper() + token[1:])
    name = "".join(words)
    if not name:
        raise ValueError(f"macro name: parts={parts!r} hold no letters or digits")
    return name


def format_number(value: float | None, digits: int = 1, *, signed: bool = False) -> str:
    """Format a number for the report with a fixed number of decimals; ``None`` -> ``---``.

    Args:
        value: the number, or ``None`` when it does not exist (not run).
        digits: decimals.
        signed: always show the sign (for differences).

    Example:
        >>> format_number(99.8765, 1), format_number(None), format_number(-0.0123, 3, signed=True)
        ('99.9', '---', '$-$0.012')
        >>> format_number(float("nan"))
        'NaN'
    """
    if value is None:
        return MISSING
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return r"$\infty$" if value > 0 else r"$-\infty$"
    text = f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    if text.lstrip("+-").strip("0.") == "":  # -0.0 is 0.0
        text = f"{0.0:.{digits}f}"
        text = ("+" + text) if signed else text
    return text.replace("-", "$-$")


def format_significant(value: float | None, digits: int = 3) -> str:
    """A table number with ``digits`` significant digits, commas between thousands.

    Whole digits are never dropped (``150000`` stays ``150,000``); below ``1e-3`` the number
    is written as a power of ten. ``None`` (no value) is ``---``.

    Example:
        >>> [format_significant(v) for v in (0.14491, 38.44, 581.6, 150000, 0, None)]
        ['0.145', '38.4', '582', '150,000', '0', '---']
        >>> print(format_significant(5.97e-6))
        5.97$\\times 10^{-6}$
    """
    if value is None:
        return MISSING
    value = float(value)
    if not math.isfinite(value):
        return format_number(value)
    if value == 0:
        return "0"
    if abs(value) < 1e-3:
        mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
        mantissa = f"{float(mantissa):g}".replace("-", "$-$")
        return rf"{mantissa}$\times 10^{{{int(exponent)}}}$"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:,.{decimals}f}".replace("-", "$-$")


def published(value: float) -> str:
    """A number from a paper as it was printed: no padding zeros (``100``, ``94.8``, ``1.37``).

    Example:
        >>> published(100.0), published(94.8), published(1.37), published(-0.5)
        ('100', '94.8', '1.37', '$-$0.5')
    """
    return f"{float(value):g}".replace("-", "$-$")


def format_duration(seconds: float | None) -> str:
    r"""A duration in the unit that suits it: seconds, minutes or hours; ``None`` -> ``---``.

    Example:
        >>> [format_duration(t) for t in (42.04, 750, 9000, None)]
        ['42.0\\,s', '12.5\\,min', '2.5\\,h', '---']
    """
    if seconds is None:
        return MISSING
    if seconds < 60:
        return format_number(seconds, 1) + r"\,s"
    if seconds < 3600:
        return format_number(seconds / 60, 1) + r"\,min"
    return format_number(seconds / 3600, 1) + r"\,h"


def unit_suffix(unit: str) -> str:
    r"""What follows a number in ``unit``: a thin space and ``\%``, a times sign, or a word.

    Example:
        >>> unit_suffix("%"), unit_suffix("x"), unit_suffix("bpc"), unit_suffix("")
        ('\\,\\%', '$\\times$', '~bpc', '')
    """
    if unit == "%":
        return r"\,\%"
    if unit == "x":
        return r"$\times$"
    return rf"~{latex_escape(unit)}" if unit else ""


class Macros:
    """An ordered set of ``\\newcommand`` definitions; a name defined twice is an error.

    Example:
        >>> m = Macros()
        >>> m.add("AccFullEvalFull", "99.9")
        >>> m.add_switch("IfRunDupFull", 2, 1)
        >>> print(m.render(), end="")
        \\newcommand{\\AccFullEvalFull}{99.9}
        \\newcommand{\\IfRunDupFull}[2]{#1}
    """

    def __init__(self) -> None:
        self._defs: dict[str, str] = {}

    def _check(self, name: str) -> None:
        if not re.fullmatch(r"[A-Za-z]+", name):
            raise ValueError(f"macro name {name!r}: only letters are allowed")
        if name in self._defs:
            raise ValueError(f"macro name {name!r} is defined twice")

    def add(self, name: str, tex: str) -> None:
        """Define ``\\name`` to expand to ``tex`` (already LaTeX: escape text first)."""
        self._check(name)
        self._defs[name] = f"\\newcommand{{\\{name}}}{{{tex}}}"

    def add_switch(self, name: str, n_args: int, chosen: int) -> None:
        """Define ``\\name`` taking ``n_args`` arguments and expanding to argument ``chosen``."""
        self._check(name)
        if not 1 <= chosen <= n_args:
            raise ValueError(f"macro {name}: chosen={chosen} must be in 1..{n_args}")
        self._defs[name] = f"\\newcommand{{\\{name}}}[{n_args}]{{#{chosen}}}"

    def __contains__(self, name: str) -> bool:
        return name in self._defs

    def render(self) -> str:
        """The definitions, one per line."""
        return "".join(line + "\n" for line in self._defs.values())
