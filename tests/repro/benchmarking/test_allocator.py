"""A measured process runs under the allocator it is started with, and its parent does not
change: real child processes, tcmalloc from the system (installed by scripts/setup.sh)."""

from __future__ import annotations

import os

import pytest

from repro.benchmarking import (
    allocator_environment,
    find_tcmalloc,
    loaded_allocator,
    run_isolated,
)

needs_tcmalloc = pytest.mark.skipif(
    find_tcmalloc() is None, reason="tcmalloc is not installed (scripts/setup.sh installs it)"
)


def _probe(name: str) -> dict:
    """What the child sees: its allocator and one environment variable."""
    return {"allocator": loaded_allocator(), "value": os.environ.get(name)}


@needs_tcmalloc
def test_a_child_started_with_tcmalloc_runs_under_it():
    child = run_isolated(
        _probe, {"name": "LD_PRELOAD"}, timeout_s=120, environment=allocator_environment("tcmalloc")
    )
    assert child["status"] == "ok", child
    assert child["allocator"] == "tcmalloc"
    assert "tcmalloc" in child["value"]


def test_a_plain_child_runs_under_the_system_allocator():
    child = run_isolated(_probe, {"name": "LD_PRELOAD"}, timeout_s=120)
    assert child["status"] == "ok", child
    assert child["allocator"] == "system"


@pytest.mark.parametrize("before", [None, "kept-value"])
def test_the_callers_environment_is_left_as_it_was(monkeypatch, before):
    name = "BENCH_ALLOCATOR_TEST_VARIABLE"
    if before is None:
        monkeypatch.delenv(name, raising=False)
    else:
        monkeypatch.setenv(name, before)
    child = run_isolated(_probe, {"name": name}, timeout_s=120, environment={name: "child"})
    assert child["status"] == "ok", child
    assert child["value"] == "child"
    assert os.environ.get(name) == before


def test_an_unknown_allocator_is_a_one_line_error_naming_the_setting():
    with pytest.raises(ValueError, match=r"^bench\.allocator='jemalloc' is not allowed") as err:
        allocator_environment("jemalloc", "bench.allocator")
    assert "\n" not in str(err.value) and "tcmalloc" in str(err.value)


def test_tcmalloc_where_it_is_missing_says_how_to_install_it(monkeypatch):
    import repro.benchmarking.allocator as allocator

    monkeypatch.setattr(allocator, "find_tcmalloc", lambda: None)
    with pytest.raises(ValueError, match="libtcmalloc-minimal4") as err:
        allocator.allocator_environment("tcmalloc", "bench.allocator")
    assert "\n" not in str(err.value)


def test_the_memory_map_names_the_allocator(tmp_path):
    maps = tmp_path / "maps"
    maps.write_text("7f00-7f01 r-xp 0 08:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n")
    assert loaded_allocator(maps) == "system"
    maps.write_text(
        maps.read_text() + "7f02-7f03 r-xp 0 08:01 2 /usr/lib/libtcmalloc_minimal.so.4\n"
    )
    assert loaded_allocator(maps) == "tcmalloc"
