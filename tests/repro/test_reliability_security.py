"""No secret is ever written to the repository, and the W&B key comes only from the environment.

A scanner looks for token-like strings (W&B keys, AWS access key ids, GitHub and Slack tokens,
private keys, ``"api_key": "..."`` assignments) and for exact planted values, in text and
binary files alike. It is first run on bad examples, so a scanner that stops detecting
anything fails the suite; then on every file git tracks (or would track). The pipeline tests
(``test_reliability_determinism.py``, ``test_reliability_tracking.py``) plant a fake
``WANDB_API_KEY`` in the environment of real runs and scan what those runs leave behind with
:func:`find_secrets`.
"""

from __future__ import annotations

import ast
import re
import secrets
import subprocess
import warnings
from collections.abc import Iterable
from pathlib import Path

import pytest
import yaml

from repro.config import default_paper

ROOT = Path(__file__).resolve().parents[2]

# Bytes patterns, so binary outputs (checkpoints, .wandb record files) are scanned as well.
TOKEN_PATTERNS: dict[str, re.Pattern[bytes]] = {
    "W&B API key assignment": re.compile(
        rb"(?i)wandb[_-]?api[_-]?key['\"]?\s*[:=]\s*['\"]?[0-9a-f]{40}(?![0-9a-f])"
    ),
    "W&B server key": re.compile(rb"\blocal-[0-9a-f]{40}(?![0-9a-f])"),
    "netrc password": re.compile(rb"(?i)\bpassword\s+[0-9a-f]{40}(?![0-9a-f])"),
    "AWS access key id": re.compile(rb"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(rb"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})"),
    "Slack token": re.compile(rb"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "Hugging Face token": re.compile(rb"\bhf_[A-Za-z0-9]{34,}\b"),
    "private key": re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"),
    "secret assignment": re.compile(
        rb"(?i)['\"]?\b(?:api[_-]?key|secret[_-]?key|client[_-]?secret|access[_-]?token|"
        rb"auth[_-]?token|password)['\"]?\s*[:=]\s*['\"][A-Za-z0-9+/_.\-]{20,}['\"]"
    ),
}


def _files(paths: Iterable[Path]) -> Iterable[Path]:
    for path in paths:
        if path.is_symlink():
            continue  # e.g. the .venv link of a copied repository
        if path.is_dir():
            yield from _files(sorted(path.iterdir()))
        elif path.is_file():
            yield path


def find_secrets(
    paths: Iterable[Path],
    planted: Iterable[str] = (),
    texts: dict[str, str] | None = None,
    skip_dirs: tuple[str, ...] = (".git",),
) -> list[str]:
    """Files (and named texts, e.g. a run's captured log) holding a token-like string.

    Args:
        paths: files or directories (walked; symlinks are not followed).
        planted: exact values that must appear nowhere (a fake key put in the environment).
        texts: extra ``{name: text}`` to scan (stdout/stderr of a run).
        skip_dirs: directory names not to enter.

    Returns:
        One ``"<where>: <kind>"`` line per finding (the secret itself is never repeated).
    """
    blobs: list[tuple[str, bytes]] = [(n, t.encode()) for n, t in (texts or {}).items()]
    for path in _files(paths):
        if any(part in skip_dirs for part in path.parts):
            continue
        blobs.append((str(path), path.read_bytes()))
    exact = [p.encode() for p in planted if p]
    found = []
    for where, data in blobs:
        for kind, pattern in TOKEN_PATTERNS.items():
            if pattern.search(data):
                found.append(f"{where}: {kind}")
        for value in exact:
            if value in data or value.upper() in data:
                found.append(f"{where}: the planted secret")
    return found


def fake_wandb_key() -> str:
    """A random 40-hex-digit value shaped like a W&B API key."""
    return secrets.token_hex(20)


def tracked_files() -> list[Path]:
    """Files git tracks, and new files it would track (not ignored)."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    return [ROOT / name for name in out.split("\0") if name and (ROOT / name).is_file()]


# --- the scanner detects what it must ----------------------------------------------------


def _bad_examples() -> dict[str, str]:
    """One file body per pattern; built at run time so this file itself stays clean."""
    hex40 = fake_wandb_key()
    alnum = "Ab3" * 14
    return {
        "W&B API key assignment": f"export WANDB_API_KEY={hex40}\n",
        "W&B server key": f"key = local-{hex40}\n",
        "netrc password": f"machine api.wandb.ai\n  login user\n  password {hex40}\n",
        "AWS access key id": "aws_access_key_id = " + "AKIA" + "Q" * 16 + "\n",
        "GitHub token": "token: " + "ghp" + "_" + alnum[:36] + "\n",
        "Slack token": "xox" + "b-" + "1234567890-abcdef\n",
        "Hugging Face token": "hf" + "_" + alnum[:34] + "\n",
        "private key": "-----BEGIN " + "RSA PRIVATE" + " KEY-----\nMIIB\n",
        "secret assignment": '{"api' + '_key": "' + alnum[:24] + '"}\n',
    }


@pytest.mark.parametrize("kind", list(TOKEN_PATTERNS))
def test_scanner_finds_each_kind_of_token(tmp_path, kind):
    path = tmp_path / "leak.txt"
    path.write_text("harmless line\n" + _bad_examples()[kind])
    assert f"{path}: {kind}" in find_secrets([tmp_path])


def test_scanner_finds_a_planted_value_in_binary_files_and_logs(tmp_path):
    key = fake_wandb_key()
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "deep" / "er" / "run.wandb").write_bytes(b"\x00\xff" + key.encode() + b"\x01")
    found = find_secrets([tmp_path], planted=[key], texts={"stderr": f"key={key}"})
    assert sorted(found) == sorted(
        [
            f"{tmp_path / 'deep' / 'er' / 'run.wandb'}: the planted secret",
            "stderr: the planted secret",
        ]
    )
    assert all(key not in line for line in found)  # never repeated in a report


def test_scanner_ignores_what_is_not_a_secret(tmp_path):
    sha = fake_wandb_key()  # a commit sha has the same shape as a W&B key
    (tmp_path / "ok.txt").write_text(
        f'git_commit: "{sha}"\n'
        "export WANDB_API_KEY=your-key\n"
        "WANDB_API_KEY: ${{ secrets.WANDB_API_KEY }}\n"
        "api_key: str | None = None\n"
        '"sha256": "' + "0" * 64 + '"\n'
    )
    assert find_secrets([tmp_path], planted=["not-there-" + sha]) == []


# --- the repository holds no secret --------------------------------------------------------


def test_no_token_in_any_tracked_file():
    files = tracked_files()
    assert len(files) > 50  # the listing worked
    assert find_secrets(files) == []


# --- the key is read from the environment only ---------------------------------------------

#: the kit's code and the paper package's (this project's default paper, pyproject.toml)
CODE_DIRS = ("repro", "pipelines", "scripts", (default_paper(ROOT) or ("",))[0])


def _python_sources() -> list[Path]:
    return [
        p for p in tracked_files() if p.suffix == ".py" and p.parts[len(ROOT.parts)] in CODE_DIRS
    ]


def _is_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ"


def key_handling_problems(source: str, name: str) -> list[str]:
    """Ways a module could take a W&B key from somewhere other than the environment.

    Flags: writing ``WANDB_API_KEY`` into ``os.environ``; ``wandb.login(key=...)`` or
    ``wandb.login(<value>)``; an ``api_key=`` argument that is a literal string; and any use of
    the name ``WANDB_API_KEY`` other than reading ``os.environ`` / ``os.getenv``.
    """
    problems = []
    with warnings.catch_warnings():  # an invalid escape elsewhere is not this test's concern
        warnings.simplefilter("ignore", (DeprecationWarning, SyntaxWarning))
        tree = ast.parse(source)
    reads: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if fname in ("get", "getenv") and node.args:
                reads.add(id(node.args[0]))
            if fname == "login" and (node.args or any(k.arg == "key" for k in node.keywords)):
                problems.append(f"{name}:{node.lineno}: wandb.login with a key argument")
            for kw in node.keywords:
                literal = isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str)
                if kw.arg in ("api_key", "key") and literal and kw.value.value:
                    problems.append(f"{name}:{node.lineno}: literal {kw.arg}= argument")
        if isinstance(node, ast.Compare) and any(_is_environ(c) for c in node.comparators):
            reads.add(id(node.left))  # "WANDB_API_KEY" in os.environ
        if isinstance(node, ast.Subscript) and _is_environ(node.value):
            if isinstance(node.ctx, ast.Load):
                reads.add(id(node.slice))
            elif getattr(node.slice, "value", None) == "WANDB_API_KEY":
                problems.append(f"{name}:{node.lineno}: writes WANDB_API_KEY into os.environ")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and _is_environ(node.func.value)
            and node.func.attr in ("update", "setdefault")
            and "WANDB_API_KEY" in ast.unparse(node)
        ):
            problems.append(f"{name}:{node.lineno}: writes WANDB_API_KEY into os.environ")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and node.value == "WANDB_API_KEY"
            and id(node) not in reads
        ):
            problems.append(f"{name}:{node.lineno}: WANDB_API_KEY used other than as a read")
    return problems


def test_code_reads_the_wandb_key_only_from_the_environment():
    sources = _python_sources()
    assert any(p.name == "run.py" for p in sources)
    problems = [
        line
        for p in sources
        for line in key_handling_problems(p.read_text(), str(p.relative_to(ROOT)))
    ]
    assert problems == []


@pytest.mark.parametrize(
    "code",
    [
        "import wandb\nwandb.login(key='abc')\n",
        "import wandb\nwandb.login(token)\n",
        "import os\nos.environ['WANDB_API_KEY'] = value\n",
        "import os\nos.environ.update(WANDB_API_KEY=value)\n",
        "import wandb\napi = wandb.Api(api_key='0123')\n",
        "KEY_NAME = 'WANDB_API_KEY'\n",
    ],
)
def test_key_handling_rules_reject_bad_code(code):
    assert key_handling_problems(code, "bad.py")


def test_key_handling_rules_accept_environment_reads():
    code = (
        "import os\n"
        "a = os.environ.get('WANDB_API_KEY')\n"
        "b = os.getenv('WANDB_API_KEY', '')\n"
        "c = 'WANDB_API_KEY' in os.environ and os.environ['WANDB_API_KEY']\n"
    )
    assert key_handling_problems(code, "ok.py") == []


SECRET_NAME = re.compile(r"(?i)(api[_-]?key|token|password|secret|credential)")


def workflow_secret_problems(name: str, data: object, where: str = "") -> list[str]:
    """Keys named like a secret whose value is not a ``${{ ... }}`` expression."""
    problems = []
    if isinstance(data, dict):
        for key, value in data.items():
            path = f"{where}.{key}" if where else str(key)
            if key == "permissions":
                continue  # "id-token: write" is a scope, not a value
            expression = isinstance(value, str) and value.strip().startswith("${{")
            if (
                SECRET_NAME.search(str(key))
                and not isinstance(value, (dict, list))
                and not expression
            ):
                problems.append(f"{name}: {path} is not taken from secrets or vars")
            problems += workflow_secret_problems(name, value, path)
    elif isinstance(data, list):
        for i, item in enumerate(data):
            problems += workflow_secret_problems(name, item, f"{where}[{i}]")
    return problems


def test_workflows_take_secrets_only_from_the_secrets_context():
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
    assert workflows
    problems = []
    for path in workflows:
        problems += workflow_secret_problems(path.name, yaml.safe_load(path.read_text()))
    assert problems == []


def test_workflow_secret_rule_rejects_a_literal_key():
    bad = {"jobs": {"j": {"steps": [{"env": {"WANDB_API_KEY": "0123abcd"}}]}}}
    assert workflow_secret_problems("bad.yml", bad) == [
        "bad.yml: jobs.j.steps[0].env.WANDB_API_KEY is not taken from secrets or vars"
    ]
    good = {"permissions": {"id-token": "write"}, "env": {"WANDB_API_KEY": "${{ secrets.K }}"}}
    assert workflow_secret_problems("good.yml", good) == []
