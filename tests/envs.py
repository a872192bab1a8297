"""Real virtual environments for the projects tests verify: `python -m venv`, pytest's installed
files copied in (offline, in a second), then projects installed with pip (`pip install -e`,
no index, no build isolation)."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

# what a project's environment holds besides the project: pytest, and setuptools to build
TOOLS = ("pytest", "pluggy", "iniconfig", "packaging", "pygments", "setuptools")


def environment(root: Path) -> Path:
    """A virtual environment at `root` with pytest, as a project's own would have."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    site = root / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    for name in TOOLS:
        dist = importlib.metadata.distribution(name)
        for file in dist.files or []:
            source = Path(str(dist.locate_file(file)))
            if "__pycache__" in file.parts or file.parts[0] == ".." or not source.is_file():
                continue
            (site / file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, site / file)
    return root


def pip_install_editable(env: Path, *projects: Path) -> None:
    """`pip install -e PROJECT...` into `env`, offline."""
    args = [sys.executable, "-m", "pip", "--python", str(env / "bin" / "python"), "install", "-q"]
    args += ["--no-index", "--no-build-isolation", "--disable-pip-version-check"]
    for project in projects:
        args += ["-e", str(project)]
    subprocess.run(args, check=True, capture_output=True)
