"""Field types for ``params.yaml`` sections, and the validation of one section.

A section of ``params.yaml`` (the kit's ``train:``, a paper's ``model:``) is a pydantic
dataclass (or model) whose fields use these types, so every paper's sections read YAML the
same way and fail with the same one-line messages:

- :data:`Int`: a 64-bit integer (torch takes no larger); ``2.0`` and ``"64"`` are accepted,
  ``true`` and ``2.5`` are not;
- :data:`Float`: a finite number; YAML 1.1 reads ``1e-3`` (no dot) as a string, accepted;
- :data:`Bool`: exactly ``true`` or ``false`` (``yes`` and ``1`` are refused);
- :data:`Str`: a non-empty string;
- :data:`Section`: a mapping (``null``: empty), validated later on its own;
- :data:`Seed`: an integer 0 to ``2**32 - 1`` (each rank's stream is derived from it);
- :func:`bounded`: limits on a number, or on every item of a list or tuple;
- :func:`limited`: limits on a string (length, characters it may not hold).

Example:
    >>> from typing import Annotated
    >>> from pydantic.dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Section:
    ...     steps: Annotated[Int, bounded(minimum=1)] = 10
    ...     lr: Float = 1e-3
    >>> validate_section(Section, {"steps": 2.0, "lr": "1e-2"}, "train")
    Section(steps=2, lr=0.01)
    >>> validate_section(Section, {"steps": 0}, "train")
    Traceback (most recent call last):
    ...
    repro.config.errors.ConfigError: params.yaml: train.steps = 0: must be an integer >= 1
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError

from .errors import check_keys, fail, field_names, section_error

__all__ = [
    "Bool",
    "Float",
    "Int",
    "Section",
    "Seed",
    "Str",
    "as_dict",
    "as_mapping",
    "bounded",
    "limited",
    "validate_section",
]

T = TypeVar("T")
INT64 = 2**63


def _error(message: str, value: Any = None) -> PydanticCustomError:
    """A check's failure; ``value`` (when given) is shown instead of the input."""
    return PydanticCustomError("repro", message, {} if value is None else {"value": value})


def _int(value: Any) -> int:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise _error("must be an integer") from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _error("must be an integer")
    if not -INT64 <= value < INT64:  # torch (seeds, sizes, thread counts) overflows beyond
        raise _error("must be a 64-bit integer (between -2**63 and 2**63 - 1)")
    return int(value)


def _float(value: Any) -> float:
    if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            raise _error("must be a number") from None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _error("must be a number")
    if not math.isfinite(value):
        raise _error("must be a finite number")
    return float(value)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _error("must be true or false")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _error("must be a non-empty string")
    return value


def _section(value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _error("must be a mapping of keys to values")
    return dict(value)


Int = Annotated[int, BeforeValidator(_int)]
Float = Annotated[float, BeforeValidator(_float)]
Bool = Annotated[bool, BeforeValidator(_bool)]
Str = Annotated[str, BeforeValidator(_str)]
#: A mapping validated later, on its own (``null``: empty).
Section = Annotated[dict, BeforeValidator(_section)]


def bounded(
    minimum: float | None = None, maximum: float | None = None, below: float | None = None
) -> AfterValidator:
    """Limits for ``Annotated[Int, bounded(minimum=1)]`` (``None`` values pass).

    On a list or tuple every item is checked, and the message shows the whole value.

    Args:
        minimum: smallest allowed value (``>=``).
        maximum: largest allowed value (``<=``).
        below: every value must be strictly smaller (``<``).
    """

    def check(value: Any) -> Any:
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if not isinstance(item, numbers.Real):
                continue
            kind = "an integer" if isinstance(item, int) else "a number"
            if minimum is not None and item < minimum:
                raise _error(f"must be {kind} >= {minimum}", value)
            if maximum is not None and item > maximum:
                raise _error(f"must be {kind} <= {maximum}", value)
            if below is not None and item >= below:
                raise _error(f"must be {kind} < {below}", value)
        return value

    return AfterValidator(check)


#: A seed: 0 to 2**32 - 1. Each rank's stream is ``seed * 1_000_003 + rank + 1``, which
#: must stay below 2**64 for ``torch.manual_seed``.
Seed = Annotated[Int, bounded(minimum=0, maximum=2**32 - 1)]


def limited(max_length: int | None = None, forbidden: str = "", why: str = "") -> AfterValidator:
    """Limits for ``Annotated[Str, limited(64)]``: the length, and characters not allowed.

    Args:
        max_length: the most characters allowed.
        forbidden: characters the string may not contain.
        why: appended to the message (what imposes the limit, e.g. ``" (a W&B tag)"``).

    Example:
        >>> from pydantic.dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class Section:
        ...     project: Annotated[Str, limited(8, "/")] = "p"
        >>> validate_section(Section, {"project": "a/b"}, "tracking")
        Traceback (most recent call last):
        ...
        repro.config.errors.ConfigError: params.yaml: tracking.project = 'a/b': may not contain /
    """

    def check(value: str) -> str:
        if max_length is not None and len(value) > max_length:
            raise _error(f"must be at most {max_length} characters{why}", value)
        if any(c in forbidden for c in value):
            raise _error(f"may not contain {' '.join(forbidden)}{why}", value)
        return value

    return AfterValidator(check)


def as_mapping(value: Any, where: str) -> Mapping:
    """A section's mapping (``None``: empty), or a one-line error naming ``where``."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise fail(where, value, "must be a mapping of keys to values")
    return value


def as_dict(section: Any) -> dict[str, Any]:
    """A validated section as a plain dict (a dataclass's fields, or a model's dump)."""
    if isinstance(section, BaseModel):
        return section.model_dump()
    return dataclasses.asdict(section)


_ADAPTERS: dict[type, TypeAdapter] = {}


def validate_section(cls: type[T], data: Any, where: str, base: Any = None) -> T:
    """Build section ``cls`` from ``data`` (over the values of ``base``, or the defaults).

    Args:
        cls: a pydantic dataclass or model.
        data: the section as read from YAML (``None``: nothing set).
        where: the section's dotted path, for messages (``experiments.e.model``).
        base: a validated ``cls`` whose values ``data`` overrides (an experiment's section
            over the file's).

    Raises:
        ConfigError: one line naming the first bad key, its value and what is allowed.
    """
    data = dict(as_mapping(data, where))
    check_keys(data, field_names(cls), where)
    if base is not None:
        data = {**as_dict(base), **data}
    if cls not in _ADAPTERS:
        _ADAPTERS[cls] = TypeAdapter(cls)
    try:
        return _ADAPTERS[cls].validate_python(data)
    except ValidationError as err:
        raise section_error(err, cls, where) from None
