"""``/-/cache.json``: the result cache's counters (hits, misses, entries, bytes) and the store's data version.

The cache itself is ``mfmkg.cache`` (one per store). Its bounds come from the ``CACHE_ENTRIES`` (default 256) and
``CACHE_BYTES`` (default 64 MiB) settings, e.g. ``MFMKG_CACHE_ENTRIES=0`` to switch it off.
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from mfmkg.cache import DEFAULT_BYTES, DEFAULT_ENTRIES, cache_for
from mfmkg.service.context import ctx

bp = Blueprint("cachestats", __name__)


@bp.record_once
def _configure(state) -> None:
    context = state.app.extensions["mfmkg"]
    cache_for(context.store).configure(int(context.config.get("CACHE_ENTRIES", DEFAULT_ENTRIES)),
                                       int(context.config.get("CACHE_BYTES", DEFAULT_BYTES)))


@bp.get("/-/cache.json")
def cache_stats():
    """Result cache counters and the data version results are keyed by (JSON)."""
    store = ctx().store
    return jsonify({**cache_for(store).stats(), "data_version": store.data_version()})
