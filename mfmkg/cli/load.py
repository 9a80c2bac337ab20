"""``mfmkg load``, ``mfmkg unload``, ``mfmkg sources``: literature sources in the store (docs/loading.md)."""

from __future__ import annotations

import contextlib
import json
import sys

import click

from mfmkg.cli.common import fail_on_error, open_ready_store, store_options


def register(group: click.Group) -> None:
    group.add_command(load)
    group.add_command(unload)
    group.add_command(sources)


def _formats() -> list[str]:
    from mfmkg.loaders.registry import FORMATS

    return list(FORMATS)


@click.command()
@store_options
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(_formats()), default=None,
              help="Input format (default: from each file's extension and content).")
@click.option("--source", default=None,
              help="Source name for everything given (default: one source per path, named after it).")
@click.option("--skip-invalid", is_flag=True, help="Store the valid entries and report the invalid ones.")
@click.option("--dry-run", is_flag=True, help="Report what would be loaded; store nothing.")
@click.option("--sample", is_flag=True, help="Also load the bundled sample collection (source 'sample').")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@fail_on_error
def load(config: dict, paths, fmt, source, skip_invalid, dry_run, sample, as_json) -> None:
    """Load literature files or directories (BibTeX, CSV, JSON/JSONL, CSL-JSON, arXiv Atom, Markdown lists).

    Each source lands in its own named graph and replaces what that source held before. By default one
    invalid entry stores nothing of its source; every problem is reported as file:line: field: reason and the
    exit code is 1.
    """
    from mfmkg.loaders.pipeline import load_paths, plan, sample_path
    from mfmkg.loaders.report import LoadReport

    if not paths and not sample:
        raise click.UsageError("give at least one PATH (or --sample)")
    jobs = plan(paths, source) if paths else []
    if sample:
        jobs.append(("sample", None))
    total = sum(_lines(i.path) for _, inputs in jobs if inputs for i in inputs) + (
        _lines(str(sample_path())) if sample else 0)
    store = open_ready_store(config)
    report = LoadReport(dry_run=dry_run, skip_invalid=skip_invalid)
    try:
        with _progress(total) as advance:
            for name, inputs in jobs:
                files = [i.path for i in inputs] if inputs is not None else [str(sample_path())]
                part = load_paths(store, files, source=name, fmt=fmt, skip_invalid=skip_invalid,
                                  dry_run=dry_run, progress=advance)
                report.sources.extend(part.sources)
    finally:
        store.close()
    for line in report.render_problems():
        click.echo(line, err=True)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo("\n".join(report.render_summary()))
    raise SystemExit(report.exit_code)


def _lines(path: str) -> int:
    try:
        with open(path, "rb") as fh:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b"")) + 1
    except OSError:
        return 0


@contextlib.contextmanager
def _progress(total: int):
    """A progress bar over input lines on a terminal; silent (a no-op callback) otherwise."""
    if not sys.stderr.isatty() or total <= 0:
        yield None
        return
    with click.progressbar(length=total, label="loading", file=sys.stderr) as bar:
        yield bar.update


@click.command()
@store_options
@click.argument("source")
@fail_on_error
def unload(config: dict, source: str) -> None:
    """Remove a literature source: exactly the triples it added."""
    from mfmkg.loaders.pipeline import unload as unload_source

    store = open_ready_store(config)
    try:
        removed = unload_source(store, source)
    finally:
        store.close()
    click.echo(f"unloaded {source}: {removed} triples removed")


@click.command()
@store_options
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@fail_on_error
def sources(config: dict, fmt: str) -> None:
    """List loaded literature sources with their counts and load time."""
    from mfmkg.loaders.pipeline import sources as list_sources

    store = open_ready_store(config)
    try:
        rows = list_sources(store)
    finally:
        store.close()
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no literature sources loaded (see `mfmkg load --help`)")
        return
    cols = [("source", "name"), ("papers", "publications"), ("entries", "entries"), ("asserted", "asserted"),
            ("inferred", "inferred"), ("triples", "triples"), ("loaded at", "loadedAt")]
    table = [[h for h, _ in cols]] + [[str(r[k]) for _, k in cols] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    for row in table:
        click.echo("  ".join(v.ljust(w) if i in (0, 6) else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths)))
                   .rstrip())
