"""Options shared by the commands that open a store, and the one place that opens it."""

from __future__ import annotations

import functools

import click

from mfmkg.config import load_config
from mfmkg.errors import MfmkgError


def store_options(fn):
    """--data-dir, --memory, --store, --extensions-dir: where the store lives and which extra Turtle files apply."""

    @click.option("--data-dir", type=click.Path(file_okay=False), default=None,
                  help="Persistent store directory (default: $MFMKG_DATA_DIR or ~/.local/share/mfmkg).")
    @click.option("--memory", is_flag=True, default=None, help="Use an ephemeral in-memory store.")
    @click.option("--store", "store_url", default=None, metavar="URL",
                  help="A SPARQL 1.1 server instead of the embedded store, e.g. "
                       "sparql+http://127.0.0.1:7878/query (default: $MFMKG_STORE; docs/remote-store.md).")
    @click.option("--extensions-dir", type=click.Path(file_okay=False), default=None,
                  help="Directory of your own Turtle files, loaded on top of the shipped ontology.")
    @functools.wraps(fn)
    def wrapper(*args, data_dir=None, memory=None, store_url=None, extensions_dir=None, **kwargs):
        cfg = load_config({"DATA_DIR": data_dir, "MEMORY": memory, "STORE": store_url,
                           "EXTENSIONS_DIR": extensions_dir})
        return fn(*args, config=cfg, **kwargs)

    return wrapper


def open_ready_store(config: dict):
    """Open the configured store and make sure it holds the current ontology."""
    from mfmkg.onto import ensure_loaded, ontology_files
    from mfmkg.store import open_store

    store = open_store(config)
    ensure_loaded(store, ontology_files(config.get("EXTENSIONS_DIR")))
    return store


def fail_on_error(fn):
    """Typed errors end the command with their message and exit code 1, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MfmkgError as exc:
            click.echo(f"error: {exc.detail}", err=True)
            raise SystemExit(1) from None

    return wrapper
