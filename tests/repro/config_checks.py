"""Helpers of the tests of params.yaml validation, shared by the kit's tests (on its fixture
paper, ``test_config.py``) and a paper's own (on its sections)."""

from __future__ import annotations

import copy
from collections.abc import Mapping

import pytest

from repro.config import ConfigError, parse_params


def changed(data: Mapping, path: str, value: object) -> dict:
    """A deep copy of ``data`` with the dotted key ``path`` set to ``value``."""
    data = copy.deepcopy(dict(data))
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return data


def config_error(data: object) -> str:
    """The one-line message of the :class:`ConfigError` that ``data`` raises."""
    with pytest.raises(ConfigError) as info:
        parse_params(data)
    message = str(info.value)
    assert "\n" not in message, message
    return message
