"""Printing helpers shared by the CLI commands."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from rich.console import Console


def console(stream=None) -> Console:
    """A rich console; plain and wide enough for tables when not writing to a terminal."""
    from rich.console import Console

    stream = stream or sys.stdout
    if stream.isatty():
        return Console(file=stream, highlight=False)
    return Console(file=stream, highlight=False, width=240, color_system=None)


def print_json(value: object) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def print_json_array(items: Iterable[object]) -> None:
    """``print_json(list(items))``, byte for byte, written as the items come: a long list is
    never held whole, in memory or as text."""
    write = sys.stdout.write
    separator = "[\n  "
    for item in items:
        write(separator)
        write(orjson.dumps(item, option=orjson.OPT_INDENT_2).decode().replace("\n", "\n  "))
        separator = ",\n  "
    write("[]\n" if separator == "[\n  " else "\n]\n")


class progress:
    """A progress bar on standard error when it is a terminal (and not ``quiet``); else nothing.

    Use as ``with progress("replaying", total) as advance: … advance()``.
    """

    def __init__(self, what: str, total: int | None, quiet: bool = False) -> None:
        self.what, self.total = what, total
        self.enabled = not quiet and sys.stderr.isatty()
        self._bar = None

    def __enter__(self):
        if not self.enabled:
            return lambda *_: None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeRemainingColumn(), console=Console(file=sys.stderr),
                             transient=True)
        self._bar.__enter__()
        task = self._bar.add_task(self.what, total=self.total)
        return lambda step=1: self._bar.advance(task, step)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
