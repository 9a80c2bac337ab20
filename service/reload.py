"""Live ontology edits: notice changed Turtle files, check them, and swap the new graph in atomically.

A poll thread compares the files' content hash every few seconds (``RELOAD_INTERVAL``; 0 disables it);
``POST /-/reload`` (write token) and SIGHUP to ``mfmkg serve`` force a check. A broken edit never reaches the
store: the last good graph keeps being served and ``/-/health`` reports the error with file and line until a
later edit fixes it.
"""

from __future__ import annotations

import hmac
import logging
import threading
from pathlib import Path

from flask import Blueprint, jsonify, request

from mfmkg.errors import MfmkgError, OntologyError
from mfmkg.onto import HASH_KEY, content_hash, ensure_loaded, ontology_files
from mfmkg.service.context import ctx

log = logging.getLogger("mfmkg.reload")
bp = Blueprint("reload", __name__)


class Unauthorized(MfmkgError):
    status = 401
    title = "Unauthorized"


class OntologyWatcher:
    """Owns the ontology's lifecycle in a running service; ``health`` is what ``/-/health`` reports."""

    def __init__(self, store, extensions_dir: str | None):
        self.store, self.extensions_dir = store, extensions_dir
        self.health: dict = {"status": "ok"}
        self._lock = threading.Lock()
        self._last_hash: str | None = None
        self._stop = threading.Event()

    def files(self) -> list[Path]:
        return ontology_files(self.extensions_dir)

    def poll(self, force: bool = False) -> str:
        """Check and load the files if their hash changed: returns unchanged, reloaded or error."""
        with self._lock:
            try:
                files = self.files()
                digest = content_hash(files)
            except (OSError, OntologyError) as exc:
                return self._fail(OntologyError(getattr(exc, "path", "?"), None, str(exc)), [])
            if not force and digest in (self._last_hash, self.store.get_meta(HASH_KEY)):
                self._last_hash = digest  # already checked and loaded (this run, or by an earlier one)
                return "unchanged"
            errors = _check(files)
            if errors:
                self._last_hash = digest
                return self._fail(None, errors)
            ensure_loaded(self.store, files)  # replace_graph: readers see the old or the new graph
            self._last_hash = digest
            if self.health.get("status") != "ok":
                log.info("ontology fixed; serving the new version")
            self.health = {"status": "ok"}
            return "reloaded"

    def _fail(self, exc: OntologyError | None, errors: list[dict]) -> str:
        if exc is not None:
            errors = [{"file": exc.path, "line": exc.line, "message": exc.message}]
        self.health = {"status": "degraded", "detail": "ontology edit rejected; serving the last good version",
                       "ontology_errors": errors}
        log.warning("ontology edit rejected: %s", errors[0] if errors else "?")
        return "error"

    def start(self, interval: float) -> None:
        if interval <= 0:
            return

        def loop():
            while not self._stop.wait(interval):
                try:
                    self.poll()
                except Exception:  # a poll must never kill the thread; the next one retries
                    log.exception("ontology poll failed")

        threading.Thread(target=loop, name="ontology-watcher", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()


def _check(files: list[Path]) -> list[dict]:
    """Errors of ``mfmkg check`` without the reasoner (seconds of java on every edit would be too slow)."""
    from mfmkg.checks import run_checks

    report = run_checks(files, reasoner="none")
    return [{"file": f.file, "line": f.line, "iri": f.iri, "stage": f.stage, "message": f.message}
            for f in report.errors]


@bp.post("/-/reload")
def reload_now():
    token = ctx().config.get("WRITE_TOKEN")
    given = request.headers.get("Authorization", "")
    if not token or not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        raise Unauthorized("a valid bearer token is required to reload the ontology")
    outcome = ctx().watcher.poll(force=True)
    return jsonify({"outcome": outcome, **ctx().watcher.health}), (200 if outcome != "error" else 422)
