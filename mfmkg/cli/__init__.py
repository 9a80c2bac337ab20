"""The ``mfmkg`` command. Each concern registers its commands from its own module."""

from __future__ import annotations

import importlib

import click

from mfmkg import __version__

#: Modules that each define ``register(group)``; a module not yet written is skipped.
COMMAND_MODULES = ("mfmkg.cli.serve", "mfmkg.cli.query", "mfmkg.cli.check", "mfmkg.cli.load", "mfmkg.cli.export",
                   "mfmkg.cli.analyze")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mfmkg")
def main() -> None:
    """mfmkg: the knowledge graph of multimodal foundation model threats and defenses."""


for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as exc:
        if exc.name != _name:
            raise
        continue
    _module.register(main)
