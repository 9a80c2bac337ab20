"""The Flask service: ``create_app(test_config)`` builds it; one blueprint per concern."""

from __future__ import annotations

import importlib

from flask import Flask

from mfmkg.config import load_config
from mfmkg.errors import OntologyError
from mfmkg.onto import HASH_KEY
from mfmkg.service.context import ServiceContext
from mfmkg.service.errors import register_error_handlers
from mfmkg.service.reload import OntologyWatcher

#: Blueprint modules, each exposing ``bp``; a module not yet written is skipped.
BLUEPRINT_MODULES = ("mfmkg.service.meta", "mfmkg.service.sparql", "mfmkg.service.gaps", "mfmkg.service.exports",
                     "mfmkg.service.graphstore",
                     "mfmkg.service.publications", "mfmkg.service.reload", "mfmkg.service.queries",
                     "mfmkg.service.resources", "mfmkg.service.openapi", "mfmkg.service.cors",
                     "mfmkg.service.ui", "mfmkg.service.analysis", "mfmkg.service.cachestats")


def create_app(test_config: dict | None = None, store=None) -> Flask:
    """Build the app. ``test_config`` overrides configuration; ``store`` reuses an already open store."""
    app = Flask(__name__)
    cfg = load_config(test_config)
    app.config.update(cfg)
    app.config["MAX_CONTENT_LENGTH"] = cfg["MAX_CONTENT_LENGTH"]
    if store is None:
        from mfmkg.store import open_store

        store = open_store(cfg)
    _drop_abandoned_staging(app, store)
    watcher = OntologyWatcher(store, cfg.get("EXTENSIONS_DIR"))
    if watcher.poll() == "error" and not store.get_meta(HASH_KEY):
        raise OntologyError("ontology", None, "no valid ontology to serve: " + str(watcher.health))
    app.extensions["mfmkg"] = ServiceContext(cfg, store, watcher)
    watcher.start(float(cfg.get("RELOAD_INTERVAL") or 0))
    register_error_handlers(app)
    for name in BLUEPRINT_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        app.register_blueprint(module.bp)
    return app


def _drop_abandoned_staging(app: Flask, store) -> None:
    """A load killed mid-way (kill -9, power loss) can leave a staging graph: never visible as data, but it
    takes space. Starting the service is the natural moment to clear it; failing to (a read-only store, a
    remote server that refuses updates) must not stop the service from serving."""
    try:
        dropped = store.drop_staging_graphs()
    except Exception as exc:  # noqa: BLE001 - best effort, logged
        app.logger.warning("could not drop abandoned staging graphs: %s", exc)
        return
    if dropped:
        app.logger.info("dropped %d abandoned staging graph(s)", len(dropped))
