"""The output formats a run can write: their names, stated once. A leaf module (it imports nothing),
so the CLI's `--format` choices and their help cost nothing at start; the spec validates
`output.formats` against them and `outputs.WRITERS` gives each its file and writer."""

from typing import Literal, get_args

OutputFormat = Literal["markdown", "html", "json", "sarif", "junit", "github-review", "gitlab-review"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = get_args(OutputFormat)
