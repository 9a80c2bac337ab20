"""``mfmkg serve``: the HTTP service on waitress."""

from __future__ import annotations

import logging
import signal

import click

from mfmkg.cli.common import fail_on_error, store_options


def register(group: click.Group) -> None:
    group.add_command(serve)
    group.add_command(reload)


@click.command()
@store_options
@click.option("--host", default=None, help="Interface to bind (default 127.0.0.1: loopback only).")
@click.option("--port", type=int, default=None, help="Port (default 8787).")
@click.option("--load", "load_paths", multiple=True, type=click.Path(exists=True),
              help="Literature file or directory to load before serving (repeatable).")
@click.option("--sample", is_flag=True, help="Load the bundled sample paper collection before serving.")
@click.option("--threads", type=int, default=8, show_default=True, help="Worker threads.")
@fail_on_error
def serve(config: dict, host, port, load_paths, sample, threads) -> None:
    """Serve the SPARQL endpoint, the gaps API and the web pages."""
    from waitress import serve as waitress_serve

    from mfmkg import sandbox
    from mfmkg.service import create_app
    from mfmkg.store import open_store

    if host:
        config["HOST"] = host
    if port:
        config["PORT"] = port
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    store = open_store(config)
    app = create_app(config, store=store)  # loads (or keeps) the ontology
    _preload(store, list(load_paths), sample)
    watcher = app.extensions["mfmkg"].watcher
    signal.signal(signal.SIGHUP, lambda *_: watcher.poll(force=True))
    sandbox.prestart(store)  # an in-memory store: fork the first query process now, not at the first query
    click.echo(f"mfmkg serving on http://{config['HOST']}:{config['PORT']}/ (store: "
               f"{'memory' if config.get('MEMORY') else config['DATA_DIR']})", err=True)
    waitress_serve(app, **waitress_options(config, threads))


def waitress_options(config: dict, threads: int) -> dict:
    """waitress's settings. ``max_request_body_size`` is twice ``MAX_CONTENT_LENGTH``: a body declared (or, when
    chunked, grown) beyond it is refused with a 413 as soon as waitress sees that, before it reads and spools the
    rest (its own default is 1 GiB). Bodies between one and two times the limit still reach the application,
    which answers them with its problem+json 413 (a form-encoded body is larger than the query it carries)."""
    options = {"host": config["HOST"], "port": int(config["PORT"]), "threads": threads, "ident": "mfmkg"}
    limit = config.get("MAX_CONTENT_LENGTH")
    if limit:
        options["max_request_body_size"] = 2 * int(limit)
    return options


def _preload(store, paths: list[str], sample: bool) -> None:
    """Load literature given on the command line; the bundled sample goes in its own source."""
    if not paths and not sample:
        return
    from mfmkg.loaders.pipeline import load_paths, sample_path

    if sample:
        report = load_paths(store, [str(sample_path())], source="sample")
        click.echo(f"loaded sample: {report.summary_line()}", err=True)
    if paths:
        report = load_paths(store, paths)
        click.echo(f"loaded: {report.summary_line()}", err=True)


@click.command()
@click.option("--url", default="http://127.0.0.1:8787", show_default=True, help="The running service.")
@click.option("--token", envvar="MFMKG_WRITE_TOKEN", help="Write token (default: $MFMKG_WRITE_TOKEN).")
def reload(url: str, token: str | None) -> None:
    """Ask a running service to check and reload the ontology files now (or send it SIGHUP)."""
    import json
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url.rstrip("/") + "/-/reload", method="POST",
                                 headers={"Authorization": f"Bearer {token or ''}"})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            body = json.load(resp)
    except urllib.error.HTTPError as exc:
        body = json.load(exc)
        click.echo(json.dumps(body, indent=2), err=True)
        raise SystemExit(1) from None
    except urllib.error.URLError as exc:
        click.echo(f"error: cannot reach {url}: {exc.reason}", err=True)
        raise SystemExit(1) from None
    click.echo(json.dumps(body, indent=2))
