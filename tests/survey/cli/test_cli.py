"""The ``sipas`` command's shape: every command module is registered, the entry point works, startup stays light."""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator

import click

import survey.cli
from survey.cli import main
from tests.servers import ROOT

# The top-level commands and groups `sipas --help` lists; a new one is added here on purpose.
TOP_LEVEL = {
    "apikey",
    "db",
    "demo",
    "frame",
    "integrity",
    "plan",
    "qr",
    "questionnaire",
    "quota",
    "score",
    "serve",
    "simulate",
    "user",
}


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter on this checkout, as the console script would start."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("SIPAS_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60, check=False
    )


def _reachable(group: click.Group) -> Iterator[click.Command]:
    for command in group.commands.values():
        yield command
        if isinstance(command, click.Group):
            yield from _reachable(command)


def test_the_entry_point_lists_every_command_group() -> None:
    entry = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]["sipas"]
    module, _, attribute = entry.partition(":")
    proc = _run(f"from {module} import {attribute}; {attribute}(prog_name='sipas')", "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: sipas [OPTIONS] COMMAND [ARGS]...")
    listed = proc.stdout.split("\nCommands:\n", 1)[1].splitlines()
    assert {line.split()[0] for line in listed if line.strip()} == TOP_LEVEL


def test_each_command_module_registers_every_command_it_defines() -> None:
    registered = {id(command) for command in _reachable(main)}
    modules = [info.name for info in pkgutil.iter_modules(survey.cli.__path__) if info.name != "common"]
    assert {"db", "results", "fieldwork", "integrity"} <= set(modules)
    for name in modules:
        module = importlib.import_module(f"survey.cli.{name}")
        defined = {attr: value for attr, value in vars(module).items() if isinstance(value, click.Command)}
        assert defined, f"survey.cli.{name} defines no command"
        orphans = sorted(attr for attr, command in defined.items() if id(command) not in registered)
        assert not orphans, f"survey.cli.{name} defines commands nobody registered: {orphans}"
    assert set(main.commands) == TOP_LEVEL


def test_sub_commands_keep_their_names() -> None:
    def names(group: str) -> set[str]:
        command = main.commands[group]
        assert isinstance(command, click.Group)
        return set(command.commands)

    assert names("apikey") == {"create", "list", "revoke"}
    assert names("db") == {"upgrade"}
    assert names("frame") == {"import"}
    assert names("integrity") == {"scan"}
    assert names("qr") == {"counter", "receipts"}
    assert names("questionnaire") == {"check"}
    assert names("user") == {"create", "set-password", "list", "two-step-off"}


def test_starting_the_command_imports_no_web_or_statistics_stack() -> None:
    proc = _run("import sys, survey.cli; print('\\n'.join(sys.modules))")
    assert proc.returncode == 0, proc.stderr
    loaded = set(proc.stdout.split())
    assert "survey.cli.results" in loaded
    heavy = {
        "numpy",
        "scipy",
        "litestar",
        "uvicorn",
        "jinja2",
        "openpyxl",
        "scoring",
        "sampling",
        "survey.results.scores",
    }
    assert not heavy & loaded, "import these inside the commands that need them"
