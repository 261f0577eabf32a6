"""Printing helpers shared by the CLI commands."""

from __future__ import annotations

import sys

import orjson
from rich.console import Console


def console(stream=None) -> Console:
    """A rich console; plain and wide enough for tables when not writing to a terminal."""
    stream = stream or sys.stdout
    if stream.isatty():
        return Console(file=stream, highlight=False)
    return Console(file=stream, highlight=False, width=240, color_system=None)


def print_json(value: object) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")
