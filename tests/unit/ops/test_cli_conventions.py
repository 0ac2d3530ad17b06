"""The command line's conventions, for every command: its --help names only options it has, a mistyped cog or
view is one line with the choices and exit 2 (never a traceback), and tables fit 80 columns with names whole."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from fivecogs_ops.cli import app
from fivecogs_ops.partners import PartnerListing
from fivecogs_ops.partners_cli import partners_table

# An option named in prose, e.g. "--limit for more" or "`replay --kind`".
NAMED_OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command and group under `group` (typer's own click: its classes are not `click`'s)."""
    yield path, group
    for name, command in getattr(group, "commands", {}).items():
        yield from commands(command, (*path, name))


COMMANDS = [
    pytest.param(path, command, id=" ".join(path) or "fivecogs")
    for path, command in commands(typer.main.get_command(app))
]


@pytest.mark.parametrize(("path", "command"), COMMANDS)
def test_help_names_only_options_the_command_has(path: tuple[str, ...], command: Any) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    has = {name for param in command.params for name in param.opts + param.secondary_opts} | {"--help"}
    prose = " ".join([command.help or "", *(getattr(p, "help", None) or "" for p in command.params)])
    named = set(NAMED_OPTION.findall(prose))
    assert named <= has, f"`fivecogs {' '.join(path)} --help` names {sorted(named - has)}, which it does not take"
    for option in has - {"--help"}:
        assert option in result.output, option  # and lists every option it takes


@pytest.mark.parametrize(
    "args",
    [
        ["dlq", "list", "input"],
        ["dlq", "replay", "markting"],
        ["serve", "input"],
        ["replay", "managment"],
        ["held", "list", "input"],
    ],
)
def test_a_mistyped_cog_is_one_line_with_a_did_you_mean(args: list[str]) -> None:
    result = CliRunner().invoke(app, args, env={"COLUMNS": "80"})  # no box folding it at a narrow width
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    [line] = [line for line in result.output.splitlines() if "unknown cog" in line]
    assert "did you mean" in line
    assert "(choices: inputs, knowledge, marketing, communication, management)" in line


def test_a_mistyped_report_view_says_which_it_meant() -> None:
    result = CliRunner().invoke(app, ["report", "--by", "provnce"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "unknown view 'provnce': did you mean 'province'? (choices: province, region)" in result.output


def test_a_partner_id_that_cannot_be_one_is_refused() -> None:
    result = CliRunner().invoke(app, ["dlq", "list", "--partner", "Bad.Partner"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "'Bad.Partner' is not a partner id" in result.output


def test_partners_list_fits_80_columns_with_ids_whole() -> None:
    long = "community-development-dept-nakhon-si"
    found = [
        PartnerListing(long, ("inputs", "knowledge", "marketing", "communication", "management"), True),
        PartnerListing("cdd-nan", ("inputs",), False),
    ]
    out = Console(record=True, width=80, color_system=None, file=io.StringIO())
    out.print(partners_table(found))
    text = out.export_text()
    assert all(len(line) <= 80 for line in text.splitlines())
    for whole in (long, "cdd-nan", "communication", "management", "revoked"):
        assert whole in text.split() or f"{whole}," in text.split(), whole
