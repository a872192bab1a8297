"""The judge stays the project's: the files that decide whether the checks pass (tests, their
configuration, the scripts a check's command names) are put back as they are in the workspace
before a patch is judged, as SWE-bench applies its own test patch over a model's. A patch that
changed them is flagged `touches_tests`; `verify.allow_test_changes` keeps its changes (and the
report says the judge changed). pyproject.toml is the judge's only in its test-runner sections:
a patch that changes those gets the whole original file back."""

from __future__ import annotations

import shlex
import shutil
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from orchestrator.workspace import glob_match

DEFAULT_PROTECT = (
    "tests/**",
    "test/**",
    "testing/**",
    "**/tests/**",
    "**/test/**",
    "**/testing/**",
    "**/test_*.py",
    "**/*_test.py",
    "**/conftest.py",
    "pytest.ini",
    "tox.ini",
    "setup.cfg",
    "noxfile.py",
    # imported by every Python that has their folder on its path, before any test runs
    "**/sitecustomize.py",
    "**/usercustomize.py",
)
PYPROJECT = "pyproject.toml"
# the sections of pyproject.toml that configure a test run or register a pytest plugin
PYPROJECT_SECTIONS = (
    ("tool", "pytest"),
    ("tool", "tox"),
    ("tool", "nox"),
    ("tool", "coverage"),
    ("tool", "hatch", "envs"),
    ("project", "entry-points", "pytest11"),
)


@dataclass(frozen=True)
class Protection:
    """The judge's files: globs (verify.protect, or DEFAULT_PROTECT), the files checks' commands
    name, and whether a patch may change them (verify.allow_test_changes)."""

    patterns: tuple[str, ...] = DEFAULT_PROTECT
    named: frozenset[str] = frozenset()
    allow_changes: bool = False

    def covers(self, path: str) -> bool:
        return path in self.named or any(glob_match(path, pattern) for pattern in self.patterns)

    def touched(self, files: Iterable[str], original: Path, patched: Path) -> list[str]:
        """The judge's files among those a patch touched (pyproject.toml when its test-runner
        sections differ)."""
        found = []
        for path in sorted(set(files)):
            if path == PYPROJECT and path not in self.named:
                if _sections(original / path) != _sections(patched / path):
                    found.append(path)
            elif self.covers(path):
                found.append(path)
        return found


def put_back(paths: Sequence[str], original: Path, copy: Path) -> None:
    """The workspace's own version of each path in the copy (removed when it had none)."""
    for path in paths:
        source, target = original / path, copy / path
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.is_dir():
            shutil.rmtree(target)
        if source.is_symlink() or source.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target, follow_symlinks=False)


def command_files(commands: Iterable[str | list[str]], workspace: Path) -> frozenset[str]:
    """The workspace files a command line names (`sh run_tests.sh`, `python scripts/check.py`)."""
    found = set()
    base = workspace.resolve()
    for command in commands:
        try:
            words = shlex.split(command) if isinstance(command, str) else list(command)
        except ValueError:
            words = str(command).split()
        for word in words:
            for part in word.split("=")[-1:]:
                pure = PurePosixPath(part)
                if not part or pure.is_absolute() or ".." in pure.parts:
                    continue
                candidate = base / pure
                try:
                    if candidate.is_file() and candidate.resolve().is_relative_to(base):
                        found.add(pure.as_posix())
                except OSError:
                    continue
    return frozenset(found)


def _sections(path: Path) -> Any:
    """pyproject.toml's test-runner sections; a file that does not parse counts as all changed."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return object()
    found = []
    for keys in PYPROJECT_SECTIONS:
        value: Any = data
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        found.append(value)
    return found
