"""A bounded, thread-safe LRU cache of query results, keyed by the store's data version.

Why: at 100k publications the dashboard's queries take a tenth of a second or more on the store and are asked
again and again between loads. A result is cached under (what was asked, ``store.data_version()`` read before the
query ran); every write through the store bumps that version, so an entry made before a write is never served
after it: no invalidation messages, no time to live. Entries of older versions are dropped as soon as a result of
a newer version is stored; the LRU bounds (entries and bytes) do the rest.

Only successful results are cached: an exception (syntax error, time limit, store failure) propagates and stores
nothing. Concurrent misses of one key wait for the first caller's result instead of all running the query
(a dashboard full of clients right after a load). One cache per store (``cache_for``), since only one store's
versions are comparable with each other.
"""

from __future__ import annotations

import functools
import re
import threading
import weakref
from collections import OrderedDict
from typing import Callable, Hashable, Mapping

from mfmkg import sparql_text
from mfmkg.errors import MfmkgError
from mfmkg.store.base import AskResult, GraphResult, QueryResult, RawResult, SelectResult, Store, Term

DEFAULT_ENTRIES = 256
DEFAULT_BYTES = 64 * 1024 * 1024
#: A result bigger than this share of the byte bound is not cached (it would evict everything else).
MAX_ENTRY_SHARE = 4

# Queries whose answer is not a function of the data: SPARQL's non-deterministic functions, and SERVICE calls
# (found by mfmkg.sparql_text's lexer, which knows comments, strings and pyoxigraph's keyword rules; only run when
# the word occurs at all). A false positive only means the query is not cached.
_SERVICE = re.compile("service", re.IGNORECASE)
_RANDOM = re.compile(r"\b(RAND|NOW|UUID|STRUUID|BNODE)\s*\(", re.IGNORECASE)


def cacheable(sparql: str) -> bool:
    """True when the query's result depends only on the data (no SERVICE, RAND, NOW, UUID, STRUUID, BNODE)."""
    return _cacheable_short(sparql) if len(sparql) <= 65536 else _cacheable(sparql)


@functools.lru_cache(maxsize=512)
def _cacheable_short(sparql: str) -> bool:  # the same texts come again and again (dashboards)
    return _cacheable(sparql)


def _cacheable(sparql: str) -> bool:
    if _RANDOM.search(sparql):
        return False
    if not _SERVICE.search(sparql):
        return True
    try:
        return not sparql_text.service_calls(sparql)
    except MfmkgError:  # not even lexable: it fails anyway, and failures are not cached
        return False


class _Flight:
    """One computation in progress; callers that miss the same key meanwhile wait for it."""

    __slots__ = ("done", "ok", "value")

    def __init__(self):
        self.done, self.ok, self.value = threading.Event(), False, None


class ResultCache:
    """LRU map from (version, key) to a result, bounded by entry count and (estimated) bytes."""

    def __init__(self, max_entries: int = DEFAULT_ENTRIES, max_bytes: int = DEFAULT_BYTES):
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple, tuple[object, int]] = OrderedDict()  # (version, key) -> (value, size)
        self._inflight: dict[tuple, _Flight] = {}
        self._bytes = 0
        self._newest: int | None = None
        self.max_entries, self.max_bytes = int(max_entries), int(max_bytes)
        self.hits = self.misses = self.evictions = self.uncacheable = 0

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0 and self.max_bytes > 0

    def configure(self, max_entries: int | None = None, max_bytes: int | None = None) -> None:
        with self._lock:
            if max_entries is not None:
                self.max_entries = int(max_entries)
            if max_bytes is not None:
                self.max_bytes = int(max_bytes)
            self._evict()

    def get(self, key: Hashable, version: int, default=None):
        """The value stored for ``key`` at ``version`` (counted as a hit), or ``default`` (a miss)."""
        with self._lock:
            entry = self._entries.get((version, key))
            if entry is None:
                self.misses += 1
                return default
            self._entries.move_to_end((version, key))
            self.hits += 1
            return entry[0]

    def put(self, key: Hashable, version: int, value: object, size: int) -> bool:
        """Store ``value``; False when it is not kept (cache off, too big, or made from a superseded version)."""
        with self._lock:
            if not self.enabled or size > self.max_bytes // MAX_ENTRY_SHARE:
                return False
            if self._newest is not None and version < self._newest:
                return False  # the store was written since this result was computed: nobody asks for it again
            if self._newest is None or version > self._newest:
                self._newest = version
                for k in [k for k in self._entries if k[0] < version]:
                    self._drop(k)
            old = self._entries.pop((version, key), None)
            if old is not None:
                self._bytes -= old[1]
            self._entries[(version, key)] = (value, size)
            self._bytes += size
            self._evict()
            return True

    def get_or_compute(self, key: Hashable, version: int, compute: Callable[[], object],
                       size_of: Callable[[object], int]) -> object:
        """The cached value, or ``compute()`` stored under ``version``. Concurrent misses of one key share the
        first caller's computation; if it fails, the next waiting caller computes it in turn."""
        k = (version, key)
        with self._lock:
            entry = self._entries.get(k)
            if entry is not None:
                self._entries.move_to_end(k)
                self.hits += 1
                return entry[0]
            self.misses += 1
        while True:
            with self._lock:
                entry = self._entries.get(k)
                if entry is not None:
                    return entry[0]
                flight = self._inflight.get(k)
                if flight is None:
                    flight = self._inflight[k] = _Flight()
                    break
            flight.done.wait()
            if flight.ok:
                return flight.value
        try:
            flight.value = compute()
            flight.ok = True
            self.put(key, version, flight.value, size_of(flight.value))
            return flight.value
        finally:
            with self._lock:
                self._inflight.pop(k, None)
            flight.done.set()

    def note_uncacheable(self) -> None:
        with self._lock:
            self.uncacheable += 1

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def stats(self) -> dict:
        with self._lock:
            lookups = self.hits + self.misses
            return {"enabled": self.enabled, "entries": len(self._entries), "bytes": self._bytes,
                    "max_entries": self.max_entries, "max_bytes": self.max_bytes, "hits": self.hits,
                    "misses": self.misses, "hit_ratio": round(self.hits / lookups, 4) if lookups else None,
                    "evictions": self.evictions, "uncacheable": self.uncacheable}

    # -- under the lock ----------------------------------------------------------------------------
    def _drop(self, k: tuple) -> None:
        _, size = self._entries.pop(k)
        self._bytes -= size

    def _evict(self) -> None:
        while self._entries and (len(self._entries) > self.max_entries or self._bytes > self.max_bytes):
            self._drop(next(iter(self._entries)))
            self.evictions += 1


_caches: "weakref.WeakKeyDictionary[Store, ResultCache]" = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def cache_for(store: Store) -> ResultCache:
    """The result cache of ``store`` (made with the default bounds on first use; ``configure`` changes them)."""
    with _caches_lock:
        cache = _caches.get(store)
        if cache is None:
            cache = _caches[store] = ResultCache()
        return cache


# -- sizes (estimates: the bound is about memory, not exact accounting) ---------------------------------------
_TERM_OVERHEAD = 80


def result_size(result: QueryResult | RawResult) -> int:
    """Approximate bytes a result holds in memory."""
    if isinstance(result, RawResult):
        return len(result.body) + 200
    if isinstance(result, SelectResult):
        return 200 + sum(64 + sum(_TERM_OVERHEAD + len(t) for t in row if t is not None) for row in result.rows)
    if isinstance(result, GraphResult):
        return 200 + sum(64 + sum(_TERM_OVERHEAD + len(t) for t in triple) for triple in result.triples)
    if isinstance(result, AskResult):
        return 200
    return 1 << 20  # unknown kind: count it as large


def bindings_key(bindings: Mapping[str, Term] | None) -> tuple:
    """Bindings as a hashable key: variable names with the N3 form of their terms (type and datatype included)."""
    return tuple(sorted((k, v.n3()) for k, v in (bindings or {}).items()))


# -- the cached calls ------------------------------------------------------------------------------------------
def cached_query(store: Store, sparql: str, bindings: Mapping[str, Term] | None = None) -> QueryResult:
    """``store.query`` through the store's cache. Callers must not modify the result (it is shared)."""
    cache = cache_for(store)
    if not cache.enabled:
        return store.query(sparql, bindings=bindings)
    if not cacheable(sparql):
        cache.note_uncacheable()
        return store.query(sparql, bindings=bindings)
    key = ("query", sparql, bindings_key(bindings))
    return cache.get_or_compute(key, store.data_version(), lambda: store.query(sparql, bindings=bindings),
                                result_size)


def cached_run_named(store: Store, query, args: dict[str, str]) -> QueryResult:
    """``named_queries.run_named`` through the store's cache, keyed by the query text and the typed bindings
    (so ``mfm:Image``, ``Image`` and the full IRI share one entry)."""
    from mfmkg.named_queries import bind_params

    return cached_query(store, query.sparql, bind_params(store, query, args))


def cached_raw(store: Store, key: Hashable, sparql: str, compute: Callable[[], RawResult]) -> RawResult:
    """A serialised result (``/sparql``) through the store's cache; ``key`` names everything but the version
    that the result depends on (query text, media type, dataset, row cap)."""
    cache = cache_for(store)
    if not cache.enabled:
        return compute()
    if not cacheable(sparql):
        cache.note_uncacheable()
        return compute()
    return cache.get_or_compute(("raw", key), store.data_version(), compute, result_size)
