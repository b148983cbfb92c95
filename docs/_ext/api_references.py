"""Cross-references written the way the code names things: short names, re-exports, imports.

The plain Python-domain lookup wants the full name of the module that defines an object;
docstrings and signatures also write a last component, a package-level re-export or a name
the module imports. :func:`resolve_reference` (on ``missing-reference``) follows those to
the documented object, and lets a name that leads outside the documented packages fall
under ``nitpick_ignore_regex`` as its full name would.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
import typing
from typing import TYPE_CHECKING, Any

from api_modules import module_names, read_source

if TYPE_CHECKING:
    from docutils import nodes
    from sphinx.addnodes import pending_xref
    from sphinx.application import Sphinx
    from sphinx.config import Config
    from sphinx.domains.python import PythonDomain
    from sphinx.environment import BuildEnvironment

__all__ = ["defined_at", "find_object", "resolve_reference", "setup"]

_NUMBER = re.compile(r"[-+]?(\d[\d_]*\.?\d*|\.\d+)([eE][-+]?\d+)?")


def find_object(domain: PythonDomain, name: str, allowed: set[str], here: str) -> Any:
    """The one documented ``(full name, entry)`` called ``name`` or ending in ``.name``, or
    ``None``.

    Several matches: the one in (or under) module ``here``, where the reference was written.
    """
    objects = domain.objects
    if getattr(domain, "_by_last_name", (None, -1))[1] != len(objects):
        by_last: dict[str, list[str]] = {}
        for full in objects:
            by_last.setdefault(full.rpartition(".")[2], []).append(full)
        domain._by_last_name = by_last, len(objects)  # built once per build, not per reference
    matches = [
        (full, objects[full])
        for full in domain._by_last_name[0].get(name.rpartition(".")[2], [])
        if (full == name or full.endswith("." + name))
        and (not allowed or objects[full].objtype in allowed)
        and not objects[full].aliased
    ]
    exact = [m for m in matches if m[0] == name]
    if exact:
        return exact[0]
    if len(matches) > 1:
        matches = [m for m in matches if here and m[0].startswith(here + ".")]
    return matches[0] if len(matches) == 1 else None


def defined_at(dotted: str, packages: tuple[str, ...]) -> str | None:
    """Where the object that ``dotted`` names (a re-export, ``pkg.Name``) is defined.

    The modules of ``packages`` are imported for this; other dotted names are returned as
    they are. ``None``: nothing by that name. ``""``: a type variable, which has no page.
    """
    if not dotted.startswith(tuple(f"{p}." for p in packages)) and dotted not in packages:
        return dotted
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for part in parts[cut:]:
                obj = getattr(obj, part)
        except AttributeError:
            return None
        break
    else:
        return None
    if inspect.ismodule(obj):
        return obj.__name__
    if isinstance(obj, typing.TypeVar):
        return ""
    if inspect.isclass(obj) or inspect.isroutine(obj):
        qualname = getattr(obj, "__qualname__", "")
        if "<locals>" not in qualname:
            return f"{obj.__module__}.{qualname}"
        return None
    # A constant or alias: the module whose source assigns that very object under its name.
    for module in module_names(packages):
        assigned = parts[-1] in read_source(module).assigned
        if assigned and getattr(sys.modules.get(module), parts[-1], None) is obj:
            return f"{module}.{parts[-1]}"
    return dotted


def _ignored(name: str, role: str, config: Config) -> bool:
    """Whether ``nitpick_ignore_regex`` ignores a ``role`` reference to ``name``."""
    return any(
        re.fullmatch(kind, f"py:{role}") and re.fullmatch(target, name)
        for kind, target in config.nitpick_ignore_regex
    )


def resolve_reference(
    app: Sphinx, env: BuildEnvironment, node: pending_xref, contnode: nodes.Element
) -> nodes.Element | None:
    """Resolve a Python reference that names an object the way the code does.

    The plain lookup wants the full name of the module that defines the object; docstrings
    and signatures also write

    - the last components, ``:class:`DuplicationDataset``` in a module that only imports it:
      linked when exactly one documented object (of a kind the role allows) has that name,
      preferring the module the reference was written in;
    - a re-export, ``pkg.Name`` for ``pkg.module.Name`` (what ``pkg/__init__.py`` imports);
    - a name the module imports, ``nn.Module``, ``Path``: followed to what it stands for;
      outside this project, it is ignored as its full name would be (``nitpick_ignore_regex``);
    - in a signature, the type aliases (documented as data), the arguments of ``Annotated``
      (``bounded(minimum=0.0)``: a function and a number) and type variables (plain text).

    Anything else stays unresolved, and the nitpicky build reports it.
    """
    if node.get("refdomain") != "py":
        return None
    from sphinx.util.nodes import make_refnode

    packages = tuple(app.config.api_packages)
    target = node["reftarget"].lstrip(".~")
    role = node["reftype"]
    in_signature = "refexplicit" not in node  # a role always sets it; an annotation never
    if _NUMBER.fullmatch(target):
        return contnode
    domain = env.get_domain("py")
    allowed = set(domain.objtypes_for_role(role) or [])
    if role == "class":
        allowed |= {"data", "function"} if in_signature else {"data"}
    here = node.get("py:module") or ""

    found = find_object(domain, target, allowed, here)
    if found is None:
        head, _, rest = target.partition(".")
        imported = read_source(here).imports.get(head) if here else None
        candidates = [target] + ([imported + (f".{rest}" if rest else "")] if imported else [])
        for candidate in candidates:
            defined = defined_at(candidate, packages)
            if defined == "" or defined and _ignored(defined, role, app.config):
                return contnode
            if defined and defined in domain.objects:
                found = defined, domain.objects[defined]
                break
    if found is None:
        return None
    name, entry = found
    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, name)


def setup(app: Sphinx) -> dict[str, Any]:
    """Resolve the references the plain lookup misses (see the module docstring)."""
    app.setup_extension("api_modules")
    app.connect("missing-reference", resolve_reference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
