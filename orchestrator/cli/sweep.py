"""placeholder: filled by issue 19"""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
