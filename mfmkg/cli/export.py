"""``mfmkg atlas load``, ``mfmkg export csv|stix|navigator|release`` and ``mfmkg plot heatmap|flow|dci``."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import click

from mfmkg.cli.common import fail_on_error, open_ready_store, store_options
from mfmkg.errors import BadRequest


def register(group: click.Group) -> None:
    group.add_command(atlas)
    group.add_command(export)
    group.add_command(plot)


def atlas_option(fn):
    """``--atlas FILE``: load an ATLAS.yaml into the store before exporting (handy with ``--memory``)."""

    @click.option("--atlas", "atlas_file", type=click.Path(exists=True, dir_okay=False), default=None,
                  help="Load this ATLAS.yaml into the store first (e.g. data/atlas/ATLAS.yaml).")
    @functools.wraps(fn)
    def wrapper(*args, atlas_file=None, config=None, **kwargs):
        store = open_ready_store(config)
        if atlas_file:
            from mfmkg.loaders.atlas import load_atlas

            load_atlas(store, atlas_file)
        try:
            return fn(*args, store=store, **kwargs)
        finally:
            store.close()

    return wrapper


def _write(text: str | bytes, output: str | None) -> None:
    if output in (None, "-"):
        click.echo(text if isinstance(text, str) else text.decode("utf-8"))
        return
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {path}", err=True)


# -- atlas ---------------------------------------------------------------------------------------------------

@click.group()
def atlas() -> None:
    """MITRE ATLAS: load it into its own graph (the crosswalk in ontology/crosswalk.ttl maps to it)."""


@atlas.command("load")
@store_options
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@fail_on_error
def atlas_load(config: dict, path: str | None) -> None:
    """Load ATLAS.yaml (default: data/atlas/ATLAS.yaml of a source checkout) into graph .../source/atlas."""
    from mfmkg.loaders.atlas import load_atlas, shipped_atlas_file

    if path is None:
        shipped = shipped_atlas_file()
        if shipped is None:
            raise BadRequest("this installation ships no ATLAS.yaml; give its path "
                             "(dist/ATLAS.yaml of https://github.com/mitre-atlas/atlas-data)")
        path = str(shipped)
    store = open_ready_store(config)
    try:
        summary = load_atlas(store, path)
    finally:
        store.close()
    c = summary.counts
    for w in summary.warnings:
        click.echo(f"warning: {w}", err=True)
    click.echo(f"loaded ATLAS {summary.version or '(no version)'} from {path} into {summary.graph}: "
               f"{c['tactics']} tactics, {c['techniques']} techniques ({c['subtechniques']} sub-techniques), "
               f"{c['mitigations']} mitigations, {c['case_studies']} case studies; {summary.triples} triples")


# -- export --------------------------------------------------------------------------------------------------

@click.group()
def export() -> None:
    """Export the graph: CSV tables, STIX 2.1, an ATLAS Navigator layer, a versioned release dump."""


@export.command("csv")
@store_options
@fail_on_error
@atlas_option
@click.argument("directory", type=click.Path(file_okay=False))
def export_csv_cmd(store, directory: str) -> None:
    """Every named query (queries/*.rq) with default parameters as DIRECTORY/<name>.csv."""
    from mfmkg.exports.tables import export_csv

    for f in export_csv(store, directory):
        if f.path is None:
            click.echo(f"skipped {f.query}: {f.skipped}", err=True)
        else:
            click.echo(f"{f.path}  ({f.rows} rows)")


@export.command("stix")
@store_options
@fail_on_error
@atlas_option
@click.option("-o", "--output", default=None, help="File to write (default: standard output).")
def export_stix(store, output: str | None) -> None:
    """A STIX 2.1 bundle: attack patterns, courses of action, 'mitigates' relationships."""
    from mfmkg.exports.stix import stix_bundle

    _write(json.dumps(stix_bundle(store), indent=1, ensure_ascii=False) + "\n", output)


@export.command("navigator")
@store_options
@fail_on_error
@atlas_option
@click.option("-o", "--output", default=None, help="File to write (default: standard output).")
@click.option("--inferred", is_flag=True, help="Count inferred coverage links too.")
def export_navigator(store, output: str | None, inferred: bool) -> None:
    """An ATLAS Navigator layer scoring mfmkg coverage per ATLAS technique."""
    from mfmkg.exports.navigator import navigator_layer

    _write(json.dumps(navigator_layer(store, inferred), indent=1, ensure_ascii=False) + "\n", output)


@export.command("release")
@store_options
@fail_on_error
@atlas_option
@click.argument("directory", type=click.Path(file_okay=False))
def export_release(store, directory: str) -> None:
    """mfmkg-<version>.ttl, mfmkg-<version>.jsonld and SHA256SUMS of the whole graph into DIRECTORY."""
    from mfmkg.exports.release import write_release

    info = write_release(store, directory)
    for name, meta in info["files"].items():
        click.echo(f"{meta['sha256']}  {Path(directory) / name}  ({meta['bytes']} bytes)")
    click.echo(f"release {info['version']}: {info['triples']} triples from {len(info['graphs'])} graphs", err=True)


# -- plot ----------------------------------------------------------------------------------------------------

@click.group()
def plot() -> None:
    """Figures as SVG or PNG (chosen by the -o file name)."""


_OUTPUT = click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
                       help="FILE.svg or FILE.png")


@plot.command("heatmap")
@store_options
@fail_on_error
@atlas_option
@_OUTPUT
@click.option("--by", "kind", type=click.Choice(["modality-family", "flow-axis"]), default="modality-family",
              show_default=True, help="The two dimensions of the matrix.")
@click.option("--inferred", is_flag=True, help="Count inferred coverage links too.")
def plot_heatmap(store, output: str, kind: str, inferred: bool) -> None:
    """Covered and uncovered threat classes: modality x family, or flow x axis."""
    from mfmkg.exports.plots import heatmap_figure, save

    _check_suffix(output)
    click.echo(f"wrote {save(heatmap_figure(store, kind, inferred), output)}")


@plot.command("flow")
@store_options
@fail_on_error
@atlas_option
@_OUTPUT
@click.option("--deployment", "deployment_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A deployment file (YAML or JSON, see docs/analysis.md); default: the shipped example.")
@click.option("--deployed", is_flag=True, help="Apply every defense of the deployment before the cut.")
def plot_flow(store, output: str, deployment_file: str | None, deployed: bool) -> None:
    """The deployment flow network with its minimum cut highlighted."""
    from mfmkg.exports.plots import flow_figure, save

    _check_suffix(output)
    dep = None
    if deployment_file:
        from mfmkg.analysis.deployment import load_deployment

        path = Path(deployment_file)
        dep = load_deployment(path.read_bytes(), "json" if path.suffix == ".json" else None, str(path))
    click.echo(f"wrote {save(flow_figure(store, deployment=dep, deployed=deployed), output)}")


@plot.command("dci")
@store_options
@fail_on_error
@atlas_option
@_OUTPUT
@click.option("--inferred", is_flag=True, help="Count inferred coverage links too.")
def plot_dci(store, output: str, inferred: bool) -> None:
    """Defense Coverage Index per defense class."""
    from mfmkg.exports.plots import dci_figure, save

    _check_suffix(output)
    click.echo(f"wrote {save(dci_figure(store, inferred), output)}")


def _check_suffix(output: str) -> None:
    if Path(output).suffix.lower() not in (".svg", ".png"):
        raise click.BadParameter("the file name must end in .svg or .png", param_hint="-o/--output")
