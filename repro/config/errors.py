"""One-line configuration errors: :class:`ConfigError`, suggestions, and pydantic's errors
turned into the same line.

Every problem in ``params.yaml`` is reported as one line that names the key (a dotted path
such as ``experiments.big.model.width``), the value given and what is allowed::

    params.yaml: train.steps = 0: must be an integer >= 1
    params.yaml: unknown key 'trian' (did you mean 'train'?); allowed: paper, profile, ...

Pydantic's own :class:`~pydantic.ValidationError` spans several lines and lists every
problem; :func:`section_error` keeps the first one and writes it in this form.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ValidationError

__all__ = ["ConfigError", "check_keys", "fail", "field_names", "section_error", "suggest"]

SOURCE = "params.yaml"  # load_params puts the real file name in its place


class ConfigError(ValueError):
    """A bad parameter: one line naming the key, its value and what is allowed.

    Example:
        >>> str(ConfigError("params.yaml: train.steps = 0: must be an integer >= 1"))
        'params.yaml: train.steps = 0: must be an integer >= 1'
    """


def suggest(key: Any, allowed: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest allowed name, or ``""``.

    Example:
        >>> suggest("trian", ["train", "tasks"])
        " (did you mean 'train'?)"
    """
    close = difflib.get_close_matches(str(key), list(allowed), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def fail(path: str, value: Any, allowed: str) -> ConfigError:
    """``params.yaml: <path> = <value>: <allowed>`` as a :class:`ConfigError`.

    Example:
        >>> str(fail("train.lr", "x", "must be a number"))
        "params.yaml: train.lr = 'x': must be a number"
    """
    return ConfigError(f"{SOURCE}: {path} = {value!r}: {allowed}")


def field_names(cls: type) -> list[str]:
    """The field names of a pydantic model or a (pydantic) dataclass, in order."""
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        return list(cls.model_fields)
    return [f.name for f in dataclasses.fields(cls)]


def check_keys(data: Mapping, allowed: Sequence[str], where: str) -> None:
    """Refuse the first key of ``data`` not in ``allowed``, suggesting the closest.

    Example:
        >>> check_keys({"stesp": 1}, ["steps", "lr"], "train")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        repro.config.errors.ConfigError: params.yaml: unknown key 'train.stesp' (did you mean ...
    """
    for key in data:
        if key not in allowed:
            name = f"{where}.{key}" if where else str(key)
            raise ConfigError(
                f"{SOURCE}: unknown key {name!r}{suggest(key, allowed)}; "
                f"allowed: {', '.join(allowed)}"
            )


# ----------------------------------------------------------------------------- pydantic


def _strip(hint: Any) -> Any:
    """``hint`` without ``Annotated[...]`` and ``| None``."""
    while True:
        origin = typing.get_origin(hint)
        if origin is Annotated:
            hint = typing.get_args(hint)[0]
        elif origin in (Union, types.UnionType):
            inner = [a for a in typing.get_args(hint) if a is not type(None)]
            if len(inner) != 1:
                return hint
            hint = inner[0]
        else:
            return hint


def _type_at(cls: type, loc: Sequence[Any]) -> Any:
    """The (stripped) type that ``loc`` of an error points into, or None when unknown."""
    hint: Any = cls
    for part in loc:
        hint = _strip(hint)
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if isinstance(part, str) and isinstance(hint, type) and part in field_names(hint):
            hint = typing.get_type_hints(hint, include_extras=True)[part]
        elif isinstance(part, int) and origin is tuple and args:
            hint = args[0] if args[-1] is Ellipsis else args[min(part, len(args) - 1)]
        elif isinstance(part, int) and origin is list and args:
            hint = args[0]
        else:
            return None
    return _strip(hint)


def _fixed_length(hint: Any) -> int | None:
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple and args and args[-1] is not Ellipsis:
        return len(args)
    return None


_BOUNDS = {
    "greater_than_equal": (">=", "ge"),
    "greater_than": (">", "gt"),
    "less_than_equal": ("<=", "le"),
    "less_than": ("<", "lt"),
}
_MESSAGES = {
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "string_type": "must be a non-empty string",
    "string_too_short": "must be a non-empty string",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "dict_type": "must be a mapping of keys to values",
    "model_type": "must be a mapping of keys to values",
    "dataclass_type": "must be a mapping of keys to values",
}


def _dotted(where: str, loc: Sequence[Any]) -> str:
    path = where
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _rank(error: Any, cls: type) -> int:
    """Unknown keys first, then a list of the wrong length, then the rest in order."""
    if error["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
        return 0
    loc = tuple(error["loc"])
    if error["type"] == "missing" and loc and isinstance(loc[-1], int):
        loc = loc[:-1]
    if error["type"] in ("missing", "too_short", "too_long") and _fixed_length(_type_at(cls, loc)):
        return 1
    return 2


def section_error(err: ValidationError, cls: type, where: str) -> ConfigError:
    """The first problem of pydantic's ``err`` (validating ``cls`` at ``where``) as one line.

    Unknown keys come first (a typo is the likeliest cause of the rest). Errors raised by
    :mod:`repro.config.fields` carry their own message and, in ``ctx["value"]``, the value
    after conversion (``(0.9, 1.0)`` for ``betas: [0.9, 1.0]``).
    """
    errors = err.errors()
    first = min(errors, key=lambda e: _rank(e, cls))
    kind, loc, value = first["type"], tuple(first["loc"]), first["input"]
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        parent = _type_at(cls, loc[:-1])
        allowed = field_names(parent) if isinstance(parent, type) else []
        name = _dotted(where, loc)
        return ConfigError(
            f"{SOURCE}: unknown key {name!r}{suggest(loc[-1], allowed)}; "
            f"allowed: {', '.join(allowed)}"
        )
    ctx = first.get("ctx") or {}
    if kind == "missing" and loc and isinstance(loc[-1], int):  # a tuple too short
        loc = loc[:-1]
    length = _fixed_length(_type_at(cls, loc))
    if length is not None and kind in ("missing", "too_short", "too_long"):
        message = f"must be a list of {length} values"
    elif kind == "literal_error":
        hint = _type_at(cls, loc)
        allowed = typing.get_args(hint) if typing.get_origin(hint) is Literal else ()
        message = f"allowed: {', '.join(map(str, allowed)) or ctx.get('expected')}"
    elif kind in _BOUNDS:
        op, key = _BOUNDS[kind]
        number = "an integer" if isinstance(value, int) else "a number"
        message = f"must be {number} {op} {ctx.get(key)}"
    elif kind == "missing":  # a required field
        message, value = "required", None
    elif kind in _MESSAGES:
        message = _MESSAGES[kind]
    else:  # a repro.config.fields check, or a model's own validator
        message = str(first["msg"]).removeprefix("Value error, ")
        value = ctx.get("value", value)
    return fail(_dotted(where, loc), value, message)
