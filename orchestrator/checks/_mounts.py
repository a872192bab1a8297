"""What the sandbox's file system holds: only what a check needs, so that nothing else on the
host can be read or connected to.

The root is an empty tmpfs, read-only once set up. Bound read-only into it: the system's folders
(/usr and the /bin, /lib links, /etc, /opt, /nix, /sys), and the toolchains a check may run: the
folder of each PATH entry outside them (`~/.pyenv` for `~/.pyenv/shims`, `X` for `X/bin`), what
their executables link to (`~/.local/share/pipx/venvs/ruff` for `~/.local/bin/ruff`), the base
interpreter of every Python environment among them (`home` in its pyvenv.cfg), this interpreter's
own prefixes, and the workspace's shared environments (`.venv`, `node_modules`). Fresh and empty:
/dev (null, zero, random, tty), /proc (the sandbox's own processes), /run and /var/run (where
host sockets live: docker's, the ssh agent's, D-Bus'), and a home and a /tmp of a bounded size.
The rest of the host (/home, /root, /srv, /mnt, /var, other workspaces) is not there at all;
neither are the orchestrator's own folders (its state, keys, caches: `hidden`), which are
covered with an empty tmpfs should they lie inside something bound.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/nix", "/sys")
BIN_FOLDERS = frozenset({"bin", "sbin", "shims"})
XDG = frozenset({".local", ".config", ".cache"})  # hold every application's data: never bound whole
COMPANIONS = {".cargo": (".rustup",), ".local/bin": (".local/lib",)}  # rustup's toolchains; pip --user's packages
MAX_LINKS = 2000  # executables of one PATH folder looked at for links elsewhere


def system_mounts() -> list[str]:
    """The system's folders read-only (a merged-/usr link as the same link), fresh /dev and
    /proc, and empty /run and /var with /var/run and /var/tmp pointing where they should."""
    args: list[str] = []
    for folder in SYSTEM:
        path = Path(folder)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), folder]
        elif path.is_dir():
            args += ["--ro-bind", folder, folder]
    args += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/run", "--dir", "/var"]
    return [*args, "--symlink", "../run", "/var/run", "--symlink", "../tmp", "/var/tmp"]


def private_mounts(home: Path, size_bytes: int | None) -> list[str]:
    """A /tmp and a home of their own, empty, of at most `size_bytes` each (None: bubblewrap too
    old to bound them)."""
    sized = ["--size", str(size_bytes)] if size_bytes is not None else []
    args = ["--perms", "1777", *sized, "--tmpfs", "/tmp"]
    if home != Path("/") and not any(home == Path(s) or home.is_relative_to(s) for s in SYSTEM):
        args += [*sized, "--tmpfs", str(home)]
    return args


def toolchain_mounts(read_only: Sequence[Path], hidden: Sequence[Path]) -> list[str]:
    """The toolchains bound read-only (parents before children), then the orchestrator's own
    folders covered wherever they fall inside something bound."""
    args: list[str] = []
    for path in sorted(set(read_only)):
        args += ["--ro-bind-try", str(path), str(path)]
    bound = [*map(Path, SYSTEM), *read_only]
    for path in sorted({p.resolve() for p in hidden}):
        if any(path.is_relative_to(b) for b in bound if path != b) and path.is_dir():
            args += ["--tmpfs", str(path)]
    return args


def toolchains(home: Path, shared: Sequence[Path], path_env: str | None = None) -> list[Path]:
    """The folders a check's tools live in, outside the system's: see the module's docstring."""
    path_env = os.environ.get("PATH", "") if path_env is None else path_env
    entries = [Path(p) for p in path_env.split(os.pathsep) if p and Path(p).is_absolute()]
    own = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent]
    home = home.resolve()
    found: set[Path] = set()
    for entry in [*entries, *own]:
        root = _root(entry, home)
        if root is not None:
            found.add(root)
            found |= _companions(root, home)
    for entry in entries:
        if _root(entry, home) is not None:
            found |= {root for target in _link_targets(entry) if (root := _root(target, home)) is not None}
    found |= {p.resolve() for p in shared if p.exists()}
    found |= {root for env in list(found) if (root := _root(_venv_home(env), home)) is not None}
    return sorted(p for p in found if p.exists() and not any(p != q and p.is_relative_to(q) for q in found))


def _root(path: Path | None, home: Path) -> Path | None:
    """The folder to bind for a tool at `path`: None when the system's folders hold it."""
    if path is None:
        return None
    try:
        path = path.resolve()
    except (OSError, RuntimeError):
        return None
    if path.is_file():
        path = path.parent
    if any(path == Path(s) or path.is_relative_to(s) for s in SYSTEM) or path == Path("/"):
        return None
    if path.is_relative_to(home):
        parts = path.relative_to(home).parts
        if not parts:
            return None
        if parts[0] not in XDG:
            return home / parts[0]  # the toolchain's own folder: ~/.pyenv, ~/.cargo, ~/.nvm
        return _above_bin(path, floor=len(home.parts) + 2)
    return _above_bin(path, floor=2)


def _above_bin(path: Path, floor: int) -> Path:
    """X for X/bin, unless X is shallower than `floor` parts (/work for /work/bin, ~/.local)."""
    if path.name in BIN_FOLDERS and len(path.parent.parts) > floor:
        return path.parent
    return path


def _companions(root: Path, home: Path) -> set[Path]:
    if not root.is_relative_to(home):
        return set()
    return {home / other for other in COMPANIONS.get(root.relative_to(home).as_posix(), ())}


def _link_targets(folder: Path) -> list[Path]:
    """Where the symbolic links among a PATH folder's executables point (pipx, uv tools)."""
    try:
        with os.scandir(folder) as entries:
            links = [Path(e.path) for _, e in zip(range(MAX_LINKS), entries, strict=False) if e.is_symlink()]
    except OSError:
        return []
    return [link.resolve() for link in links]


def _venv_home(env: Path) -> Path | None:
    """The base interpreter's folder of a Python environment (`home` in pyvenv.cfg), or None."""
    try:
        lines = (env / "pyvenv.cfg").read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() == "home" and value.strip():
            return Path(value.strip())
    return None
