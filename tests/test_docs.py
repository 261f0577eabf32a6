"""The documentation says what the code does."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from ledger import rules

ROOT = Path(__file__).resolve().parent.parent


def quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_quick_start_has_exactly_two_commands():
    assert len(quick_start_commands()) == 2


def test_ci_runs_the_readme_test_command():
    test_command = quick_start_commands()[1]
    assert "pytest" in test_command
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci.splitlines()


def test_every_rule_function_is_documented():
    public = [name for name, obj in inspect.getmembers(rules, inspect.isfunction)
              if obj.__module__ == rules.__name__ and not name.startswith("_")]
    text = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    missing = [name for name in public if f"`{name}(" not in text]
    assert missing == []


def test_every_rule_function_has_a_docstring():
    for name, obj in inspect.getmembers(rules, inspect.isfunction):
        if obj.__module__ == rules.__name__:
            assert obj.__doc__, name
