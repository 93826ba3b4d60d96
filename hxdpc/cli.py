"""The hxdpc command line.  Thin: each command lives in hxdpc/commands/NAME.py as a
click command named `command`, parses arguments, calls the library and prints."""
from __future__ import annotations

import importlib
import importlib.util
import sys

import click

from hxdpc import __version__
from isa.errors import InputError

COMMANDS = ["compile", "disasm", "asm", "emulate", "verify", "conformance"]


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return [c for c in COMMANDS if importlib.util.find_spec(f"hxdpc.commands.{c}")]

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        return importlib.import_module(f"hxdpc.commands.{name}").command

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except InputError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="hxdpc")
def main():
    """Compile, run and check XDP programs for the hXDP soft processor."""


if __name__ == "__main__":
    main()
