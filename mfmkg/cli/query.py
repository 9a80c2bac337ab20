"""``mfmkg query`` (a named query or .rq file) and ``mfmkg sparql`` (query text), printed as a table, CSV or JSON."""

from __future__ import annotations

import click

from mfmkg.cli.common import fail_on_error, open_ready_store, store_options
from mfmkg.store.base import AskResult, GraphResult, SelectResult
from mfmkg.tables import render

FORMATS = click.Choice(["table", "csv", "json"])


def register(group: click.Group) -> None:
    group.add_command(query)
    group.add_command(sparql)
    group.add_command(queries)


@click.command()
@store_options
@click.argument("name_or_file")
@click.option("--param", "-p", "params", multiple=True, metavar="NAME=VALUE", help="A query parameter.")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@fail_on_error
def query(config: dict, name_or_file: str, params, fmt: str) -> None:
    """Run a named query (see `mfmkg queries`) or a .rq file."""
    from mfmkg.named_queries import get_query, run_named

    args = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="--param")
        args[name] = value
    nq = get_query(name_or_file)
    _print(run_named(open_ready_store(config), nq, args), fmt)


@click.command()
@store_options
@click.argument("text")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@fail_on_error
def sparql(config: dict, text: str, fmt: str) -> None:
    """Run a SPARQL query given as text (use - to read it from standard input)."""
    if text == "-":
        text = click.get_text_stream("stdin").read()
    _print(open_ready_store(config).query(text), fmt)


@click.command()
def queries() -> None:
    """List the shipped named queries with their parameters."""
    from mfmkg.named_queries import load_queries

    for q in load_queries().values():
        params = " ".join(f"{p.name}:{p.type}" for p in q.params)
        click.echo(f"{q.name:24} {q.title}" + (f"  [{params}]" if params else ""))


def _print(result, fmt: str) -> None:
    if isinstance(result, SelectResult):
        click.echo(render(result, fmt))
    elif isinstance(result, AskResult):
        click.echo("true" if result.value else "false")
    elif isinstance(result, GraphResult):
        from mfmkg.results import serialize

        click.echo(serialize(result, "text/turtle").body.decode())
