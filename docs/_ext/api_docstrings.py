"""Docstrings and signatures fixed up for autodoc and napoleon.

The library's docstrings are Google style; a few of their forms (an attribute docstring with
a colon in its first line, ``a, b: text`` in an ``Args:`` section, a dataclass field with a
default factory, a named tuple's fields) would come out wrong or warn in a nitpicky build.
The handlers here rewrite them before napoleon and autodoc see them.
"""

from __future__ import annotations

import inspect
import re
import typing
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sphinx.application import Sphinx

__all__ = [
    "factory_defaults",
    "plain_attribute_docstring",
    "setup",
    "skip_tuple_fields",
    "split_multi_name_fields",
]


def plain_attribute_docstring(
    app: Sphinx, what: str, name: str, obj: object, options: Any, lines: list[str]
) -> None:
    """Before napoleon: keep the first line of a constant's or property's docstring as text.

    Napoleon reads the first line of an attribute, constant or property docstring as
    ``type: description``, so ``"True on rank 0: ..."`` would become a reference to a class
    named ``True on rank 0``. This project gives types as annotations (shown in the
    signature), never in that form, so an empty type is put in front (``": ..."``), which
    napoleon reads as "no type" and leaves the text as written.

    A constant without a docstring of its own would show, say, ``dict``'s docstring; that is
    dropped too.
    """
    if what not in ("data", "attribute", "property"):
        return
    if what == "data":
        type_doc = inspect.getdoc(type(obj)) or ""
        if type_doc and "\n".join(lines).strip() == type_doc.strip():
            lines.clear()
            return
    for i, line in enumerate(lines):
        if line.strip():
            outside_code = re.sub(r"`[^`]*`", "", line)
            if re.search(r"(?<!:):(?!:)", outside_code):
                lines[i] = ": " + line
            break


_FIELD_SECTION = re.compile(
    r"^(\s*)(Args|Arguments|Attributes|Parameters|Keyword Args|Keyword Arguments|"
    r"Other Parameters):\s*$"
)
_MULTI_NAME_ENTRY = re.compile(r"^(\s+)(\w+(?:\s*,\s*\w+)+)(\s*\([^)]*\))?\s*:(\s.*|)$")


def split_multi_name_fields(
    app: Sphinx, what: str, name: str, obj: object, options: Any, lines: list[str]
) -> None:
    """Before napoleon: turn ``a, b: text`` in an Args/Attributes section into two entries.

    Google style allows one description for several names; Sphinx's field lists read
    ``a, b`` as a type ``a,`` and a name ``b``. Each name gets its own copy of the entry.
    """
    out: list[str] = []
    section_indent: int | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        header = _FIELD_SECTION.match(line)
        if header:
            section_indent = len(header.group(1))
            out.append(line)
            i += 1
            continue
        indent = len(line) - len(line.lstrip())
        if section_indent is not None and line.strip() and indent <= section_indent:
            section_indent = None
        entry = _MULTI_NAME_ENTRY.match(line) if section_indent is not None else None
        if not entry:
            out.append(line)
            i += 1
            continue
        body = [line]
        i += 1
        # The entry continues over more-indented lines (and blank lines between them).
        while i < len(lines):
            nxt = lines[i]
            nxt_indent = len(nxt) - len(nxt.lstrip())
            if (
                nxt.strip()
                and nxt_indent > indent
                or not nxt.strip()
                and any(
                    later.strip() and len(later) - len(later.lstrip()) > indent
                    for later in lines[i + 1 : i + 2]
                )
            ):
                body.append(nxt)
            else:
                break
            i += 1
        lead, names, kind, rest = entry.groups()
        for one in re.split(r"\s*,\s*", names):
            out.append(f"{lead}{one}{kind or ''}:{rest}")
            out.extend(body[1:])
    lines[:] = out


def factory_defaults(
    app: Sphinx,
    what: str,
    name: str,
    obj: object,
    options: Any,
    signature: str | None,
    return_annotation: str | None,
) -> tuple[str, str | None] | None:
    """Show a dataclass field's ``default_factory`` default as ``...``.

    ``inspect`` renders it as ``<factory>``, which is not Python, so Sphinx could not parse
    the signature and would print it as plain text with unresolvable type names.
    """
    if signature and "<factory>" in signature:
        return signature.replace("<factory>", "..."), return_annotation
    return None


_TUPLE_FIELD = type(typing.NamedTuple("_Pair", [("a", int)]).a)


def skip_tuple_fields(
    app: Sphinx, what: str, name: str, obj: object, skip: bool, options: Any
) -> bool | None:
    """Leave out a named tuple's field accessors ("Alias for field number 0").

    The class docstring's ``Attributes:`` section documents the fields; the accessors would
    document them a second time (a duplicate object) with nothing to say.
    """
    doc = getattr(obj, "__doc__", None) or ""
    if isinstance(obj, _TUPLE_FIELD) and re.fullmatch(r"Alias for field number \d+", doc):
        return True
    return None


def setup(app: Sphinx) -> dict[str, Any]:
    """Connect the handlers; the docstring ones run before napoleon's."""
    app.setup_extension("sphinx.ext.autodoc")  # the events below are autodoc's
    # napoleon processes docstrings at the default priority, 500; these must run before it.
    app.connect("autodoc-process-docstring", plain_attribute_docstring, priority=400)
    app.connect("autodoc-process-docstring", split_multi_name_fields, priority=400)
    app.connect("autodoc-process-signature", factory_defaults)
    app.connect("autodoc-skip-member", skip_tuple_fields)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
