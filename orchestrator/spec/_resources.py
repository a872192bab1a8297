"""Data shipped with the tool: built-in graphs and prompt templates.

In a wheel they live inside the package (`orchestrator/graphs`, `orchestrator/prompts`); in a
source checkout they are the top-level `graphs/` and `prompts/` folders of the design card.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal

DataDir = Literal["graphs", "prompts"]


def data_dir(name: DataDir) -> Traversable:
    packaged = resources.files("orchestrator").joinpath(name)
    if packaged.is_dir():
        return packaged
    source = Path(__file__).resolve().parents[2] / name
    if source.is_dir():
        return source
    raise FileNotFoundError(f"the {name}/ data folder is missing from this installation")


@cache
def read_data(name: DataDir, filename: str) -> str:
    return data_dir(name).joinpath(filename).read_text(encoding="utf-8")


def list_data(name: DataDir, suffix: str) -> list[str]:
    return sorted(entry.name for entry in data_dir(name).iterdir() if entry.name.endswith(suffix))
