"""The repository map: what each file defines, as a compact outline, ranked by how much the files
a task is about use it (aider's repository map, without its tree-sitter dependency).

- **Symbols** of a Python file come from Python's own `ast` (classes, functions, methods and
  module-level names, with their signatures), with the names it uses and the modules it imports.
  Other files (and Python that does not parse) give the identifiers they use and no definitions.
  Reading a file is cached by its content (`symbols_of`), so a file is parsed once per process
  however many runs, calls and models see it.
- **Ranking** is a personalized PageRank over the files: a file that uses a name another file
  defines links to it, weighted as aider does (names the task mentions and long specific names
  count more, private names and names defined everywhere less), and the walk restarts at the
  files the task is about.
- **Visibility** is decided by the caller for each model: a file it may not see is not in the
  graph at all, so it adds nothing to that model's map, not even a symbol name, and no rank.
"""

from __future__ import annotations

import ast
import hashlib
import math
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from orchestrator.workspace import SourceFile

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
CACHE_FILES = 50_000  # files whose symbols are kept (by content) before the cache starts over
DAMPING = 0.85
ITERATIONS = 30
METHODS_SHOWN = 12  # methods of one class in the outline
ARGUMENTS_SHOWN = 6  # parameters of one signature in the outline
FILE_LINES = 24  # lines of one file's outline (its most used names when they do not all fit)
COMMON_NAME = 20  # a name defined in more files than this (`run`, `__init__`) links nothing


@dataclass(frozen=True)
class Symbol:
    name: str
    kind: str  # class | def | var
    line: int
    signature: str  # how the outline shows it: "def order_total(items, tax=...)"
    depth: int = 0  # 1: a method of the class above


@dataclass(frozen=True)
class FileSymbols:
    defines: tuple[Symbol, ...] = ()
    uses: dict[str, int] = field(default_factory=dict)  # name -> times used
    imports: tuple[str, ...] = ()  # dotted module names, relative ones resolved against the file

    def defined(self) -> set[str]:
        return {symbol.name for symbol in self.defines}


_cache: dict[tuple[str, str], FileSymbols] = {}
_cache_lock = threading.Lock()


def symbols_of(path: str, text: str) -> FileSymbols:
    """The symbols of one file, parsed once per content (and per package, for relative imports)."""
    package = _package(path)
    key = (package if path.endswith(".py") else path.rsplit(".", 1)[-1], hashlib.sha1(text.encode()).hexdigest())
    with _cache_lock:
        found = _cache.get(key)
    if found is not None:
        return found
    symbols = _python(text, package) if path.endswith(".py") else None
    if symbols is None:
        symbols = FileSymbols(uses=dict(Counter(IDENTIFIER.findall(text))))
    with _cache_lock:
        if len(_cache) >= CACHE_FILES:
            _cache.clear()
        _cache[key] = symbols
    return symbols


def _package(path: str) -> str:
    parts = path.removesuffix(".py").split("/")
    return ".".join(parts[:-1])


def _python(text: str, package: str) -> FileSymbols | None:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError):
        return None
    defines: list[Symbol] = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            defines.append(Symbol(node.name, "class", node.lineno, _class_line(node)))
            methods = [n for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
            for method in methods:
                defines.append(Symbol(method.name, "def", method.lineno, _def_line(method), depth=1))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            defines.append(Symbol(node.name, "def", node.lineno, _def_line(node)))
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    defines.append(Symbol(target.id, "var", node.lineno, target.id))
    # names used: every identifier of the text (a regex is ten times faster than walking the tree,
    # and a name in a docstring or a comment says something about the file too)
    uses = Counter(IDENTIFIER.findall(text))
    imports = _imports(tree.body, package)
    return FileSymbols(tuple(defines), dict(uses), tuple(dict.fromkeys(i for i in imports if i)))


def _imports(body: list[ast.stmt], package: str) -> list[str]:
    """The modules imported by these statements, and by the blocks of `if` and `try` among them
    (an import under TYPE_CHECKING, or a fallback import); imports inside functions are not read."""
    found: list[str] = []
    for node in body:
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module or "", node.level, package)
            found.append(base)
            found += [f"{base}.{alias.name}" if base else alias.name for alias in node.names]
        elif isinstance(node, ast.If):
            found += _imports(node.body + node.orelse, package)
        elif isinstance(node, ast.Try):
            found += _imports(node.body + node.orelse + node.finalbody, package)
            found += [i for handler in node.handlers for i in _imports(handler.body, package)]
    return found


def _absolute(module: str, level: int, package: str) -> str:
    if level == 0:
        return module
    parts = package.split(".") if package else []
    parts = parts[: len(parts) - (level - 1)] if level > 1 else parts
    return ".".join([*parts, module] if module else parts)


def _def_line(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    names = [a.arg for a in [*node.args.posonlyargs, *node.args.args]]
    defaults = len(node.args.defaults)
    shown = [f"{n}=..." if i >= len(names) - defaults else n for i, n in enumerate(names)]
    if node.args.vararg:
        shown.append(f"*{node.args.vararg.arg}")
    elif node.args.kwonlyargs:
        shown.append("*")
    shown += [a.arg for a in node.args.kwonlyargs]
    if node.args.kwarg:
        shown.append(f"**{node.args.kwarg.arg}")
    if len(shown) > ARGUMENTS_SHOWN:
        shown = [*shown[:ARGUMENTS_SHOWN], "..."]
    return f"{prefix} {node.name}({', '.join(shown)})"


def _class_line(node: ast.ClassDef) -> str:
    bases = [ast.unparse(base) for base in node.bases][:3]
    return f"class {node.name}({', '.join(bases)})" if bases else f"class {node.name}"


class RepoIndex:
    """The symbols of every file of a run's selection, and who defines each name."""

    def __init__(self, files: Sequence[SourceFile]) -> None:
        self.paths = [f.path for f in files]
        self.symbols = {f.path: symbols_of(f.path, f.text) for f in files}
        self.definers: dict[str, list[str]] = defaultdict(list)
        for path, symbols in self.symbols.items():
            for name in symbols.defined():
                self.definers[name].append(path)
        # per file, the names it uses that some file defines (the only ones that link files)
        # how many files use each name: what the outline of a large file keeps
        self.used_by = Counter(name for symbols in self.symbols.values() for name in symbols.uses)
        linking = {name for name, paths in self.definers.items() if len(paths) <= COMMON_NAME}
        self.links = {
            path: [(name, count) for name, count in symbols.uses.items() if name in linking]
            for path, symbols in self.symbols.items()
        }
        self.modules: dict[str, str] = {}
        for path in self.paths:
            if path.endswith(".py"):
                for name in _module_names(path):
                    self.modules.setdefault(name, path)

    def imported_by(self, path: str) -> list[str]:
        """The files of the selection a file imports (in the order it imports them)."""
        found = [self.modules.get(name) for name in self.symbols[path].imports]
        return list(dict.fromkeys(p for p in found if p is not None and p != path))

    def imported_lines(self, path: str, module: str) -> list[tuple[int, int]]:
        """The lines of `module` defining what `path` imports from it by name (`from m import x`)."""
        names = set(_module_names(module))
        wanted = {i.rsplit(".", 1)[1] for i in self.symbols[path].imports if "." in i and i.rsplit(".", 1)[0] in names}
        return [(s.line, s.line) for s in self.symbols[module].defines if s.depth == 0 and s.name in wanted]

    def rank(self, visible: Iterable[str], seeds: dict[str, float], mentioned: set[str]) -> list[tuple[str, float]]:
        """The visible files, best first: a PageRank that restarts at `seeds` (path -> weight;
        uniform without any) over the links of uses to definitions, only among visible files."""
        nodes = [p for p in visible if p in self.symbols]
        shown = set(nodes)
        links: dict[str, dict[str, float]] = {}
        for path in nodes:
            out: dict[str, float] = defaultdict(float)
            for name, count in self.links[path]:
                definers = [d for d in self.definers[name] if d in shown and d != path]
                if not definers:
                    continue
                weight = _weight(name, len(self.definers[name]), mentioned) * math.sqrt(count) / len(definers)
                for definer in definers:
                    out[definer] += weight
            links[path] = out
        restart = {p: w for p, w in seeds.items() if p in shown and w > 0} or dict.fromkeys(nodes, 1.0)
        total = sum(restart.values())
        restart = {p: w / total for p, w in restart.items()}
        rank = dict.fromkeys(nodes, 1.0 / max(1, len(nodes)))
        sums = {p: sum(out.values()) for p, out in links.items()}
        for _ in range(ITERATIONS):
            spread = dict.fromkeys(nodes, 0.0)
            dangling = 0.0
            for path, out in links.items():
                if not sums[path]:
                    dangling += rank[path]
                    continue
                share = rank[path] / sums[path]
                for target, weight in out.items():
                    spread[target] += share * weight
            rank = {
                p: (1 - DAMPING) * restart.get(p, 0.0) + DAMPING * (spread[p] + dangling * restart.get(p, 0.0))
                for p in nodes
            }
        return sorted(rank.items(), key=lambda item: (-item[1], item[0]))

    def outline(self, paths: Sequence[str], budget: int, count: Callable[[str], int]) -> tuple[str, list[str]]:
        """The outline of as many of `paths` (in order) as fit in `budget` tokens, and those paths."""
        blocks = [self._block(path) for path in paths]
        low, high = 0, len(blocks)
        while low < high:  # the most leading files whose outline fits
            mid = (low + high + 1) // 2
            if count("\n".join(blocks[:mid])) <= budget:
                low = mid
            else:
                high = mid - 1
        return "\n".join(blocks[:low]), list(paths[:low])

    def _block(self, path: str) -> str:
        """A file's outline: its classes (with their first methods), functions and public names,
        those the repository uses most when they do not all fit in `FILE_LINES`; a private
        module-level name, a dunder method and a property's setter are left out."""
        entries: list[tuple[Symbol, list[Symbol]]] = []
        for symbol in self.symbols[path].defines:
            if symbol.depth == 0:
                if not (symbol.kind == "var" and symbol.name.startswith("_")):
                    entries.append((symbol, []))
                continue
            if not entries or entries[-1][0].kind != "class":
                continue
            methods = entries[-1][1]
            dunder = symbol.name.startswith("__") and symbol.name != "__init__"
            if not dunder and symbol.name not in {m.name for m in methods} and len(methods) < METHODS_SHOWN:
                methods.append(symbol)
        kept = set(range(len(entries)))
        if sum(1 + len(methods) for _, methods in entries) > FILE_LINES:
            by_use = sorted(range(len(entries)), key=lambda i: -self.used_by.get(entries[i][0].name, 0))
            kept, lines = set(), 0
            for i in by_use:
                size = 1 + len(entries[i][1])
                if lines + size <= FILE_LINES:
                    kept.add(i)
                    lines += size
        shown = [f"{path}:"]
        for i, (symbol, methods) in enumerate(entries):
            if i in kept:
                shown.append(f"  {symbol.signature}")
                shown += [f"    {method.signature}" for method in methods]
        if len(kept) < len(entries):
            shown.append(f"  ... ({len(entries) - len(kept)} more)")
        return "\n".join(shown)


def _module_names(path: str) -> list[str]:
    """The dotted names a file may be imported by: from the root, and below each leading folder
    (a src/ layout, a project in a subfolder)."""
    parts = path.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return [".".join(parts[i:]) for i in range(len(parts)) if parts[i:]]


def _weight(name: str, definers: int, mentioned: set[str]) -> float:
    """How much a use of `name` says about the file that defines it (aider's multipliers)."""
    weight = 1.0
    if name in mentioned:
        weight *= 10
    if len(name) >= 8 and ("_" in name or any(c.isupper() for c in name[1:])):
        weight *= 10
    if name.startswith("_"):
        weight *= 0.1
    if definers > 5:  # up to COMMON_NAME: beyond, no link at all
        weight *= 0.1
    return weight
