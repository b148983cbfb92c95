"""params.yaml as a file, the paper it names, the profiles and ``python -m repro.config``:
every failure is one line (the sections' own checks: test_config.py, whose small params this
reuses, with its test paper ``minipaper``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_config import BASE, error_of, with_change

from repro.config import ConfigError, default_paper, load_params, parse_params, use_profile

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PY = sys.executable


# --- the file itself ---------------------------------------------------------------------


def test_bad_yaml_is_one_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  steps: [1,\n")
    with pytest.raises(ConfigError) as info:
        load_params(path)
    assert "\n" not in str(info.value) and "not valid YAML (line" in str(info.value)


@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_empty_file_is_one_line(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_params(path)
    assert str(info.value) == (
        "params.yaml: empty file; start from a profile: `python -m repro.config use default`"
    )


@pytest.mark.parametrize("text", ["- train\n- model\n", "just words\n", "42\n"])
def test_top_level_not_a_mapping_is_one_line(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_params(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith("params.yaml: (top level) = ")
    assert "must be a mapping of keys to values" in message


def test_non_utf8_file_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_bytes(b"train:\n  steps: \xff10\n")
    with pytest.raises(ConfigError) as info:
        load_params("params.yaml")
    assert str(info.value) == "params.yaml: not UTF-8 text (byte 0xff at offset 16)"
    profile = tmp_path / "smoke.yaml"  # any other file is named by its path
    profile.write_bytes(b"\xfe")
    with pytest.raises(ConfigError, match=r"smoke\.yaml: not UTF-8 text \(byte 0xfe at offset 0\)"):
        load_params(profile)


# --- which paper -------------------------------------------------------------------------


def test_paper_defaults_to_the_pyproject_of_the_params_directory(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.repro]\npaper = "no_such_paper_pkg"\n')
    (tmp_path / "configs").mkdir()
    unnamed = {k: v for k, v in BASE.items() if k != "paper"}
    for path in (tmp_path / "params.yaml", tmp_path / "configs" / "params.yaml"):
        path.write_text(yaml.safe_dump(unnamed))
        with pytest.raises(ConfigError) as info:
            load_params(path)  # the folder's pyproject.toml, or the nearest above it
        message = str(info.value)
        assert "\n" not in message and "paper 'no_such_paper_pkg'" in message
        assert f"(the default set in {tmp_path / 'pyproject.toml'})" in message
    found = default_paper(tmp_path / "configs")
    assert found == ("no_such_paper_pkg", tmp_path / "pyproject.toml")
    (tmp_path / "pyproject.toml").write_text('[tool.repro]\npaper = "minipaper"\n')
    assert load_params(tmp_path / "params.yaml").paper == "minipaper"
    # the file's own key wins over the default
    (tmp_path / "pyproject.toml").write_text('[tool.repro]\npaper = "no_such_paper_pkg"\n')
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(BASE))
    assert load_params(tmp_path / "params.yaml").paper == "minipaper"
    # without a key or a [tool.repro] table nearby: this checkout's pyproject.toml
    assert default_paper(tmp_path.parent) == default_paper(ROOT)
    assert default_paper(ROOT)[1] == ROOT / "pyproject.toml"


def test_unknown_paper_is_one_line():
    message = error_of({**BASE, "paper": "no_such_paper_pkg"})
    assert message.startswith(
        "params.yaml: paper 'no_such_paper_pkg': no module named 'no_such_paper_pkg'; "
    )
    assert "must be a Python package name" in error_of({**BASE, "paper": "not-a-package"})
    assert "paper = 5: must be a non-empty string" in error_of({**BASE, "paper": 5})


def test_paper_not_set_anywhere_is_one_line(tmp_path, monkeypatch):
    import repro.config.pyproject as pyproject

    monkeypatch.setattr(pyproject, "KIT_ROOT", tmp_path)
    unnamed = {k: v for k, v in BASE.items() if k != "paper"}
    with pytest.raises(ConfigError) as info:
        parse_params(unnamed, root=tmp_path)
    assert str(info.value) == (
        "params.yaml: paper is not set; allowed: a `paper: <package>` key, or "
        '[tool.repro] paper = "<package>" in pyproject.toml'
    )


# --- profiles and the command line -------------------------------------------------------


@pytest.mark.parametrize("profile", sorted(p.stem for p in (ROOT / "configs").glob("*.yaml")))
def test_profiles_are_valid(profile):
    params = load_params(ROOT / "configs" / f"{profile}.yaml")
    assert params.profile == profile and params.experiments


def test_use_profile_copies_the_profile_verbatim(tmp_path):
    (tmp_path / "configs").mkdir()
    source = (ROOT / "configs" / "smoke.yaml").read_text()
    (tmp_path / "configs" / "smoke.yaml").write_text(source)
    use_profile("smoke", tmp_path)
    assert (tmp_path / "params.yaml").read_text() == source
    with pytest.raises(ConfigError, match=r"profile 'smok' is unknown \(did you mean 'smoke'\?\)"):
        use_profile("smok", tmp_path)


def env_with_minipaper() -> dict[str, str]:
    """The environment of a subprocess that imports the repository and ``minipaper``."""
    path = os.pathsep.join([str(ROOT), str(HERE), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path}


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, "-m", "repro.config", *args],
        cwd=cwd,
        env=env_with_minipaper(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_check_and_show(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(with_change("model.heads", 5)))
    result = run_cli("check", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: params.yaml: ")
    assert "model.heads = 5" in lines[0]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(BASE, sort_keys=False))
    result = run_cli("check", "big", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("params.yaml: ok (profile 'test', 2 experiments: small, big)")
    result = run_cli("show", "big", cwd=tmp_path)
    assert result.returncode == 0 and '"width": 64' in result.stdout


def test_bad_params_stop_training_before_touching_outputs(tmp_path):
    """The train entry point exits 2 with one line and leaves existing outputs alone."""
    data = with_change("distributed.nproc_per_node", 1024)
    data["train"]["batch_size"] = 1024
    data["tasks"]["copy"]["n_train"] = 1024
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    model_dir = tmp_path / "models" / "small"
    model_dir.mkdir(parents=True)
    (model_dir / "model.pt").write_bytes(b"previous weights")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = subprocess.run(
        [PY, str(ROOT / "pipelines" / "train.py"), "small"],
        cwd=tmp_path,
        env=env_with_minipaper(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "distributed.nproc_per_node = 1024: more ranks than the" in lines[0]
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert (model_dir / "model.pt").read_bytes() == b"previous weights"
