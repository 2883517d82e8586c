"""The ``edgeprune`` command line: parse, call a stage, print. Nothing else lives here.

Sub-commands are discovered lazily from the ``cmd_*.py`` modules of this package (each defines a
``click`` command named ``command``), so ``edgeprune --help`` stays fast and adding a command touches
no shared file. Every :class:`~edgeprune.errors.EdgepruneError` becomes one line on stderr and its exit
code; a traceback only ever means a bug in edgeprune.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import click

from edgeprune import __version__
from edgeprune.errors import EdgepruneError

_PREFIX = "cmd_"


def _command_modules() -> dict[str, str]:
    """Map command name (``cmd_foo_bar`` -> ``foo-bar``) to module path."""
    names: dict[str, str] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith(_PREFIX):
            names[info.name[len(_PREFIX) :].replace("_", "-")] = f"{__name__}.{info.name}"
    return names


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported only when they run (or when help lists them)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_command_modules())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_path = _command_modules().get(cmd_name)
        if module_path is None:
            return None
        command = importlib.import_module(module_path).command
        if not isinstance(command, click.Command):
            raise TypeError(f"{module_path}.command is not a click command")
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgeprune")
def cli() -> None:
    """edgeprune: compress a trained CNN for an edge target, with latency measured on that target."""


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the CLI and map edgeprune errors to one line + exit code."""
    try:
        cli.main(args=argv, prog_name="edgeprune", standalone_mode=False)
    except EdgepruneError as err:
        click.echo(f"edgeprune: error: {err}", err=True)
        return err.exit_code
    except click.exceptions.Abort:
        click.echo("edgeprune: aborted", err=True)
        return 130
    except click.UsageError as err:  # a mistyped flag or value: one line, like every other error
        where = f" (see `{err.ctx.command_path} --help`)" if err.ctx is not None else ""
        click.echo(f"edgeprune: error: {' '.join(err.format_message().split())}{where}", err=True)
        return err.exit_code
    except click.ClickException as err:
        click.echo(f"edgeprune: error: {' '.join(err.format_message().split())}", err=True)
        return err.exit_code
    except KeyboardInterrupt:
        click.echo("edgeprune: interrupted", err=True)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
