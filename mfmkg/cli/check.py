"""``mfmkg check`` and ``mfmkg fmt``: validate and canonically format the ontology's Turtle files."""

from __future__ import annotations

from pathlib import Path

import click

from mfmkg.cli.common import fail_on_error
from mfmkg.config import load_config


def register(group: click.Group) -> None:
    group.add_command(check)
    group.add_command(fmt)


@click.command()
@click.option("--ontology-dir", type=click.Path(file_okay=False), default=None,
              help="Check this copy of the ontology directory (its shapes.ttl too) instead of the shipped one.")
@click.option("--extensions-dir", type=click.Path(file_okay=False), default=None,
              help="Your own Turtle files, checked on top of the ontology (default: $MFMKG_EXTENSIONS_DIR).")
@click.option("--no-reasoner", is_flag=True, help="Skip the HermiT consistency check (it needs java).")
@fail_on_error
def check(ontology_dir, extensions_dir, no_reasoner):
    """Check the ontology: every file parses, owlready2 loads it and HermiT finds it consistent, the SHACL
    shapes hold, and the quality queries (queries/checks/*-violation.rq) return nothing.

    Prints one line per finding (file:line: message, or IRI: message), then a summary. Exits 1 on any error.
    """
    from mfmkg.checks import check_paths, run_checks

    ext = extensions_dir or load_config().get("EXTENSIONS_DIR")
    paths, shapes = check_paths(ontology_dir, ext)
    report = run_checks(paths, reasoner="none" if no_reasoner else "auto", shapes=shapes)
    for finding in report.findings:
        click.echo(finding.render())
    for line in report.summary():
        click.echo(line)
    if not report.ok:
        raise SystemExit(1)


@click.command()
@click.option("--check", "check_only", is_flag=True,
              help="Change nothing; list the files that are not in canonical form and exit 1 if there are any.")
@click.argument("files", nargs=-1, type=click.Path(exists=True, path_type=Path))
@fail_on_error
def fmt(check_only, files):
    """Rewrite Turtle files in one canonical form, so that one change is one diff line.

    FILES are .ttl files or directories of them (default: the shipped ontology files). The layout is rdflib's
    longturtle with subjects in IRI order and a fixed prefix block. RDF keeps no comments: the comment block
    at the top of a file is kept, any other comment is LOST (use skos:note / skos:editorialNote instead). A
    file that does not parse is reported as file:line and no file is changed. Files are replaced atomically.
    """
    from mfmkg.fmt import format_files
    from mfmkg.onto import ontology_files

    paths = _expand(files) if files else ontology_files()
    results = format_files(paths, check=check_only)
    for r in results:
        if r.dropped_comments:
            click.echo(f"warning: {r.path}: {r.dropped_comments} comment line(s) below the header "
                       f"{'would be' if check_only else 'were'} dropped", err=True)
    changed = [r.path for r in results if r.changed]
    for path in changed:
        click.echo(f"{path}: {'not in canonical form' if check_only else 'reformatted'}")
    click.echo(f"{len(results)} files, {len(changed)} {'to reformat' if check_only else 'reformatted'}")
    if check_only and changed:
        raise SystemExit(1)


def _expand(items) -> list[Path]:
    """Files as given; a directory stands for its *.ttl files in name order."""
    paths: list[Path] = []
    for item in items:
        paths += sorted(item.glob("*.ttl")) if item.is_dir() else [item]
    return paths
