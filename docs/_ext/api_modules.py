"""The documented modules, and what each one defines and imports, read from its source.

The other helpers of this site work from this index: the generated pages list the modules
(:func:`module_names`), the cross-reference resolver follows the names a module imports
(:func:`read_source`), and the module template documents each module's constants and type
aliases (:func:`module_data`, handed to autosummary as ``autosummary_context``).

As a Sphinx extension it declares ``api_packages``, the packages this site documents (the
paper's, then the kit), which ``conf.py`` sets.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import pkgutil
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sphinx.application import Sphinx

__all__ = ["Source", "is_type_alias", "module_data", "module_names", "read_source", "setup"]


@functools.cache
def module_names(packages: tuple[str, ...]) -> tuple[str, ...]:
    """Every public module of ``packages``, each package before its modules."""
    names = []
    for name in packages:
        pkg = importlib.import_module(name)
        names.append(name)
        names += [
            info.name
            for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{name}.")
            if not any(part.startswith("_") for part in info.name.split("."))
        ]
    return tuple(names)


class Source(typing.NamedTuple):
    """The top level of one module's source.

    Attributes:
        assigned: the names assigned at the top level, with the statement's value and the
            ``#:`` comment above it.
        imports: each name an ``import`` binds (``TYPE_CHECKING`` blocks included) -> the
            dotted name it stands for (``nn`` -> ``torch.nn``).
    """

    assigned: dict[str, tuple[ast.expr, str]]
    imports: dict[str, str]


@functools.cache
def read_source(module: str) -> Source:
    """Read ``module``'s source with :mod:`ast` (empty when it has none or does not parse)."""
    try:
        spec = importlib.util.find_spec(module)
        text = Path(spec.origin).read_text()
        tree = ast.parse(text)
    except (AttributeError, ImportError, OSError, SyntaxError, TypeError, ValueError):
        return Source({}, {})
    lines = text.splitlines()
    package = module if spec.submodule_search_locations else module.rpartition(".")[0]
    assigned: dict[str, tuple[ast.expr, str]] = {}
    imports: dict[str, str] = {}
    statements = list(tree.body)
    while statements:
        node = statements.pop(0)
        if isinstance(node, ast.If):  # `if TYPE_CHECKING:` imports name annotation types
            statements[:0] = node.body + node.orelse
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    imports[alias.asname] = alias.name
                else:
                    head = alias.name.partition(".")[0]
                    imports[head] = head
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            for alias in node.names:
                imports[alias.asname or alias.name] = f"{base}.{alias.name}"
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            comment = []
            for line in reversed(lines[: node.lineno - 1]):
                if not line.startswith("#:"):
                    break
                comment.insert(0, line[2:].strip())
            for target in targets:
                # Unpack tuple assignments (``PAD_ID, BOS_ID = 0, 2``) into their names.
                for name in target.elts if isinstance(target, ast.Tuple) else [target]:
                    if isinstance(name, ast.Name) and name.id not in assigned:
                        assigned[name.id] = (node.value, "\n".join(comment))
    return Source(assigned, imports)


def is_type_alias(value: object) -> bool:
    """Whether ``value`` is a type alias: ``Annotated[int, ...]``, ``Mapping[str, Any]``."""
    return typing.get_origin(value) is not None


def module_data(
    packages: tuple[str, ...],
) -> tuple[dict[str, list[str]], dict[str, list[dict[str, str]]]]:
    """Each module's public constants (UPPER_CASE names) and type aliases, where assigned.

    Read from the source, so a name imported from another module is listed only where it is
    defined. The module template documents them, which lets docstrings refer to a constant
    with ``:data:`` and lets signatures link the aliases they use (``steps: Positive``). An
    alias is shown as written in the source (``Annotated[Int, bounded(minimum=1)]``): its
    value at run time holds validator functions, whose repr is neither readable nor stable.
    """
    constants: dict[str, list[str]] = {}
    aliases: dict[str, list[dict[str, str]]] = {}
    for module_name in module_names(packages):
        try:
            module = importlib.import_module(module_name)
        except Exception:  # noqa: BLE001  (autodoc reports the module's import error itself)
            continue
        for name, (node, comment) in read_source(module_name).assigned.items():
            if name.startswith("_") or not hasattr(module, name):
                continue
            value = getattr(module, name)
            if isinstance(value, typing.TypeVar):
                continue  # a signature's type variable, not an object of its own
            if is_type_alias(value):
                entry = {"name": name, "value": ast.unparse(node), "doc": comment}
                aliases.setdefault(module_name, []).append(entry)
            elif name.isupper():
                constants.setdefault(module_name, []).append(name)
    return constants, aliases


def setup(app: Sphinx) -> dict[str, Any]:
    """Declare ``api_packages``: the documented packages, set in ``conf.py``."""
    app.add_config_value("api_packages", (), "env", types=frozenset({tuple, list}))
    return {"parallel_read_safe": True, "parallel_write_safe": True}
