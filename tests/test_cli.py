"""The command line as documented: every step a subcommand, every option with its help.

In-process through click's test runner (no step runs); the CLI as a subprocess is
exercised by the steps' own tests.
"""

from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner, Result

from pipeline import __version__
from pipeline.cli import cli

STEPS = ["download", "generate", "make-dataset", "train", "evaluate", "predict",
         "cross-validate", "run"]
#: Steps that need no cluster, so take no --scheduler.
NO_DASK = ("download", "generate")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), prog_name="wine-pipeline")


def words(text: str) -> str:
    return " ".join(text.split())


def option_entries(help_text: str) -> dict[str, str]:
    """Each option's entry of a help page, by its long name, whitespace squashed."""
    section = help_text.split("\nOptions:\n", 1)[1].split("\n\n", 1)[0]
    entries: dict[str, str] = {}
    for line in section.splitlines():
        if match := re.match(r"  (?:-\w, )?(--[\w-]+)", line):
            name = match[1]
            entries[name] = line
        else:
            entries[name] += " " + line
    return {name: words(entry) for name, entry in entries.items()}


def extras(entry: str) -> list[str]:
    """What click appends in brackets: ``required``, ``default: X``, a range, an env var."""
    found = re.search(r"\[([^\[\]]*)\]$", entry)
    return found[1].split("; ") if found else []


def test_every_step_is_a_subcommand_listed_with_its_summary():
    result = invoke("--help")
    assert result.exit_code == 0, result.output
    listed = dict(re.findall(r"^  ([\w-]+)\s+(.+)$",
                             result.output.split("\nCommands:\n", 1)[1], re.MULTILINE))
    assert sorted(listed) == sorted(STEPS) == sorted(cli.commands)
    for step, summary in listed.items():
        first_line = cli.commands[step].help.strip().splitlines()[0]
        assert first_line.startswith(summary.removesuffix("...")), step


@pytest.mark.parametrize("step", STEPS)
def test_step_help_documents_every_option(step):
    command = cli.commands[step]
    result = invoke(step, "--help")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: wine-pipeline {step} [OPTIONS]")
    assert words(command.help.split("\n\n")[0]) in words(result.output)
    entries = option_entries(result.output)
    options = [p for p in command.params if isinstance(p, click.Option)]
    assert sorted(entries) == sorted([o.opts[-1] for o in options] + ["--help"])
    for option in options:
        name = option.opts[-1]
        assert option.help, f"{step} {name} has no help"
        entry = entries[name]
        assert words(option.help) in entry, name
        assert ("required" in extras(entry)) == option.required, name
        if option.show_default:
            # A --flag/--no-flag pair shows the name of the one that is the default.
            shown = (option.opts[0].lstrip("-") if option.default else
                     option.secondary_opts[0].lstrip("-")) if option.secondary_opts \
                else option.default
            assert f"default: {shown}" in extras(entry), name
    assert ("--scheduler" in entries) == (step not in NO_DASK)


def test_the_log_level_and_version_of_the_whole_command():
    entries = option_entries(invoke("--help").output)
    assert extras(entries["--log-level"]) == ["env var: WINE_LOG_LEVEL", "default: INFO"]
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"wine-pipeline, version {__version__}"


def test_unknown_runner_is_refused():
    result = invoke("run", "--runner", "kubernetes")
    assert result.exit_code == 2
    assert "'kubernetes' is not one of 'local', 'docker'" in result.output
