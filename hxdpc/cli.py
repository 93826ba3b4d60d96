"""The hxdpc command line.  Thin: each command lives in hxdpc/commands/NAME.py as a
click command named `command`, parses arguments, calls the library and prints.

Every bad input ends the same way: one line `error: WHERE: REASON` on stderr and exit 2,
whether the library raised InputError or click refused an argument (click's own four-line
usage text is kept for --help)."""
from __future__ import annotations

import importlib
import importlib.util
import sys

import click

from hxdpc import __version__
from isa.errors import InputError

COMMANDS = ["compile", "disasm", "asm", "emulate", "verify", "conformance"]
CONTEXT = {"help_option_names": ["-h", "--help"]}


class OneLineUsageError(click.ClickException):
    """A click usage error shown as the contract's one line (exit 2)."""
    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def one_line(e: click.UsageError) -> OneLineUsageError:
    msg = " ".join(line.strip() for line in e.format_message().splitlines() if line.strip())
    cmd = e.ctx.command_path if e.ctx is not None else "hxdpc"
    return OneLineUsageError(f"{msg} (see '{cmd} --help')")


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return [c for c in COMMANDS if importlib.util.find_spec(f"hxdpc.commands.{c}")]

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        return importlib.import_module(f"hxdpc.commands.{name}").command

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as e:
            raise one_line(e) from None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as e:
            raise one_line(e) from None
        except InputError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)


@click.group(cls=LazyGroup, context_settings=CONTEXT, invoke_without_command=True,
             epilog="\b\nExamples:\n  hxdpc compile sample_programs/xdp1.o -o xdp1.rom\n"
                    "  hxdpc emulate sample_programs/xdp1.o --pcap sample_programs/pcaps/xdp1-normal.pcap\n"
                    "  hxdpc COMMAND -h    (each command's options)")
@click.version_option(__version__, "-V", "--version", prog_name="hxdpc")
@click.pass_context
def main(ctx):
    """Compile, run and check XDP programs for the hXDP soft processor."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
        ctx.exit(0)


if __name__ == "__main__":
    main()
