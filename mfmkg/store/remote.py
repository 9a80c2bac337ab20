"""A store on a SPARQL 1.1 server reached over HTTP (Oxigraph server, Jena Fuseki, GraphDB, ...): docs/remote-store.md.

Configured by ``STORE = "sparql+http://HOST:PORT/PATH?update=...&gsp=...&union=..."`` (see ``parse_store_url``).

* Queries go through SPARQLWrapper (POST, form-encoded, content negotiation only). Results are parsed by pyoxigraph's
  parsers (Rust, fast) and converted to rdflib terms exactly as the embedded store converts its own.
  ``query_raw`` asks the server for the wanted media type and passes its bytes through; it still parses them, to cap
  rows at ``max_rows`` and because a server may fail *after* its 200 status line (Oxigraph, on its own timeout,
  appends "The SPARQL operation has been cancelled" to a half-written body). CSV is fetched as TSV and written
  here: CSV is lossy, so neither pyoxigraph nor anyone else can check a CSV body.
* Updates are plain ``POST application/sparql-update``; loads use the Graph Store Protocol (``POST`` N-Triples to
  ``?graph=G``) in batches of ``STORE_BATCH`` triples. A write of more than one batch goes to a fresh staging graph
  first and reaches its graph in one final update (``ADD``, or ``DROP`` + ``MOVE`` for a replacement), so a failed
  batch leaves nothing in the target graph; the staging graph is dropped on failure (again on the next write if
  the server was unreachable then, or by any process once its lease in the meta graph has run out).
  ``graph_writer`` streams a literature source the same way, batch by batch while it is produced. Triples that
  share a blank node always travel in the same batch: a blank node label means one node only within one request.
* Every request opens a new connection (urllib, no pool): after a server restart the next request simply works.
  Transport failures, timeouts and 5xx answers become ``StoreError`` (503) naming the server and the operation;
  a query that runs past its time becomes ``QueryTimeout`` (503).
* Time limit: ``forkable`` is False, so the public endpoint cannot fork a child to kill a query. Each query request
  carries an HTTP timeout of ``QUERY_TIMEOUT`` + ``STORE_TIMEOUT_MARGIN``; the server must enforce its own limit
  too (``oxigraph serve --timeout-s``), since a client that gives up does not stop the server's work.
* Data version (result cache): other processes may write to the same server, so writes through any RemoteStore
  also replace a token in the meta graph, and ``data_version`` reads it (one small query) before each cached read.
"""

from __future__ import annotations

import ast
import base64
import http.client
import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Iterable, Mapping

import pyoxigraph as ox
from rdflib.term import BNode, Literal, URIRef
from SPARQLWrapper import POST, URLENCODED, SPARQLWrapper
from SPARQLWrapper.SPARQLExceptions import SPARQLWrapperException

from mfmkg.binding import bind_values
from mfmkg.errors import QuerySyntaxError, QueryTimeout, StoreError
from mfmkg.results import CSV, JSON, RDF_FORMATS, RESULT_FORMATS, TSV, serialize
from mfmkg.store.base import (REMOTE_STAGING_PREFIX, STAGING_MAX_AGE, AskResult, GraphResult, GraphWriter,
                              QueryResult, RawResult, SelectResult, Store, Triple)
from mfmkg.store.terms import to_rdflib

SCHEMES = ("sparql+http", "sparql+https")
#: Staging graphs of batched writes: ``<prefix><time_ns>-<uuid>``, each with a lease in the meta graph; once the
#: lease has run out (its writer died) they are dropped before the next batched write (``drop_staging_graphs``).
STAGING_PREFIX = REMOTE_STAGING_PREFIX
#: A staging graph's lease lives in the graph named like it with this suffix (see ``_Staging``).
LEASE_SUFFIX = "-lease"
DEFAULT_BATCH = 50_000
DEFAULT_MARGIN = 2.0
DEFAULT_WRITE_TIMEOUT = 300.0
#: HTTP timeout of a query when QUERY_TIMEOUT is 0 (no limit): never wait forever on a dead peer.
NO_LIMIT_TIMEOUT = 3600.0
VERSION_KEY = "data-version"
_CANCELLED = "operation has been cancelled"  # Oxigraph's words when its --timeout-s stops a query
_AGENT = "mfmkg (SPARQLWrapper)"
_QUERY_ACCEPT = f"{JSON}, application/n-triples;q=0.9"


# -- configuration ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Endpoints:
    """Where the server's three services live, the credentials, and how its default graph becomes the union."""

    query: str
    update: str
    gsp: str | None  # None: no Graph Store Protocol, loads are sent as INSERT DATA updates
    user: str | None = None
    password: str | None = None
    union: str = "server"  # "server": the server's default graph is the union; "oxigraph": ask per request

    @property
    def shown(self) -> str:
        """The query URL for messages (credentials are never part of it)."""
        return self.query


def parse_store_url(url: str, config: Mapping | None = None) -> Endpoints:
    """The endpoints named by ``sparql+http[s]://[user[:password]@]host[:port][/path][?options]``.

    * the path is the query endpoint (default ``/query``, Oxigraph's);
    * ``update=`` and ``gsp=`` give the update and Graph Store Protocol endpoints, as absolute URLs or relative to
      the query URL (``/update``, ``update``); by default the query path's last segment is replaced by ``update``
      and ``store`` (Oxigraph's layout); ``gsp=none`` loads data through SPARQL Update instead;
    * ``union=server`` (default) trusts the server to query the union of all graphs by default (``oxigraph serve
      --union-default-graph``); ``union=oxigraph`` asks for it on each query (Oxigraph's ``union-default-graph``
      request parameter), for an Oxigraph server started without that flag.

    Configuration keys ``STORE_UPDATE_URL``, ``STORE_GSP_URL``, ``STORE_USER`` and ``STORE_PASSWORD`` override the
    URL's parts (keep passwords out of the URL: it ends up in shell history and process lists).
    """
    config = config or {}
    parts = urllib.parse.urlsplit(str(url))
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise StoreError(f"STORE must be a sparql+http:// or sparql+https:// URL, not {_redact(url)!r}")
    if not parts.hostname:
        raise StoreError(f"STORE URL {_redact(url)!r} names no host")
    options = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    unknown = set(options) - {"update", "gsp", "union"}
    if unknown:
        raise StoreError(f"unknown STORE URL option(s) {', '.join(sorted(unknown))}: use update=, gsp=, union=")
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if parts.port:
        netloc += f":{parts.port}"
    query = urllib.parse.urlunsplit((scheme.removeprefix("sparql+"), netloc, parts.path or "/query", "", ""))

    def resolve(key: str, option: str, sibling: str) -> str | None:
        value = config.get(key) or options.get(option)
        if value is None:
            return urllib.parse.urljoin(query, sibling)
        if str(value).lower() == "none":
            return None
        return urllib.parse.urljoin(query, str(value))

    update = resolve("STORE_UPDATE_URL", "update", "update")
    if update is None:
        raise StoreError("the store needs an update endpoint (update=none is not possible)")
    union = options.get("union", "server")
    if union not in ("server", "oxigraph"):
        raise StoreError(f"STORE URL option union={union!r}: use union=server or union=oxigraph")
    user = _setting(config, "STORE_USER") or (urllib.parse.unquote(parts.username) if parts.username else None)
    password = _setting(config, "STORE_PASSWORD") or (
        urllib.parse.unquote(parts.password) if parts.password else None)
    return Endpoints(query, update, resolve("STORE_GSP_URL", "gsp", "store"), user, password, union)


def _setting(config: Mapping, key: str) -> str | None:
    """A string setting. ``MFMKG_*`` variables are read as JSON when they parse (so a password ``1e3`` would
    become the number 1000.0): for those, the raw environment text is what the user wrote."""
    value = config.get(key)
    if value is None or isinstance(value, str):
        return value
    raw = os.environ.get("MFMKG_" + key)
    return raw if raw is not None else str(value)


def _redact(url: str) -> str:
    parts = urllib.parse.urlsplit(str(url))
    if parts.password is None:
        return str(url)
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit((parts.scheme, f"{parts.username}:***@{host}", parts.path, parts.query, ""))


# -- SPARQLWrapper, for queries only -------------------------------------------------------------------------------

class _QueryClient(SPARQLWrapper):
    """SPARQLWrapper that only ever sends queries to the query endpoint.

    SPARQLWrapper guesses the operation from the first keyword it finds *anywhere* in the text and sends what looks
    like an update to the update endpoint. A store query must never become a write, whatever the text says, so the
    guess is pinned to SELECT: the request always goes out as ``query=`` to the query URL (the Accept header is set
    explicitly, so the form does not matter for content negotiation either).
    """

    def _parseQueryType(self, query: str) -> str:  # noqa: N802 (SPARQLWrapper's name)
        return "SELECT"

    def isSparqlUpdateRequest(self) -> bool:  # noqa: N802
        return False


def _server_text(exc: SPARQLWrapperException) -> str:
    """The response body SPARQLWrapper folded into its exception message (as a bytes repr)."""
    text = str(exc)
    marker = "\n\nResponse:\n"
    if marker not in text:
        return text
    raw = text.split(marker, 1)[1]
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


# -- the store ------------------------------------------------------------------------------------------------

class RemoteStore(Store):
    """A quad store on a SPARQL 1.1 server. Queries see the union of all graphs as their default graph."""

    forkable = False
    shared = True  # other processes may write to the same server

    def __init__(self, url: str, config: Mapping | None = None):
        config = dict(config or {})
        self.endpoints = parse_store_url(url, config)
        self.batch_size = max(1, int(config.get("STORE_BATCH") or DEFAULT_BATCH))
        self.query_limit = limit = float(config.get("QUERY_TIMEOUT") or 0)
        margin = float(config.get("STORE_TIMEOUT_MARGIN") if config.get("STORE_TIMEOUT_MARGIN") is not None
                       else DEFAULT_MARGIN)
        self.query_timeout = float(config.get("STORE_TIMEOUT") or (limit + margin if limit > 0 else NO_LIMIT_TIMEOUT))
        self.write_timeout = float(config.get("STORE_WRITE_TIMEOUT") or DEFAULT_WRITE_TIMEOUT)
        #: How long a staging graph's lease lasts (``STORE_LEASE``): a writer renews it before each batch, so it runs
        #: out only when the writer has not sent a batch for this long (default: the longest a batch request may
        #: take, and a minute).
        self.lease_seconds = float(config.get("STORE_LEASE") or self.write_timeout + 60)
        self._lock = threading.Lock()
        self._pending_drops: set[str] = set()  # staging graphs a failed write could not drop
        self._seen_stamp: object = _UNSEEN
        self._union_checked = False

    def __repr__(self) -> str:
        return f"RemoteStore({self.endpoints.shown!r})"

    # -- HTTP ------------------------------------------------------------------------------------------------
    def _auth_header(self) -> dict[str, str]:
        if not self.endpoints.user:
            return {}
        token = base64.b64encode(f"{self.endpoints.user}:{self.endpoints.password or ''}".encode()).decode()
        return {"Authorization": "Basic " + token}

    def _post(self, url: str, body: bytes, content_type: str, what: str, timeout: float | None = None) -> bytes:
        """POST ``body``; the response body, or the typed error for whatever went wrong."""
        headers = {"Content-Type": content_type, "User-Agent": _AGENT, **self._auth_header()}
        request = urllib.request.Request(url, data=body, method="POST", headers=headers)
        timeout = timeout or self.write_timeout
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc.code, _read_error(exc), what, url) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise self._transport_error(exc, what, url, timeout, query=False) from None

    def _http_error(self, status: int, text: str, what: str, url: str) -> Exception:
        text, url = " ".join(text.split())[:500], _redact(url)
        if status == 400:
            return QuerySyntaxError(text or f"the SPARQL server rejected the {what} (HTTP 400)")
        if what == "query" and status >= 500 and any(w in text.lower() for w in (_CANCELLED, "timeout", "timed out")):
            return QueryTimeout(f"the SPARQL server at {self.endpoints.shown} stopped the query at its own time "
                                f"limit ({text})")
        if status in (401, 403):
            return StoreError(f"the SPARQL server at {url} refused the {what} (HTTP {status}): check STORE_USER "
                              f"and STORE_PASSWORD ({text})")
        if status == 404:
            return StoreError(f"no SPARQL service at {url} for the {what} (HTTP 404): check the STORE URL ({text})")
        if status == 413:
            return StoreError(f"the SPARQL server at {url} refused a {what} as too large (HTTP 413): lower "
                              f"STORE_BATCH")
        return StoreError(f"the SPARQL server at {url} failed the {what} (HTTP {status}): {text}")

    def _transport_error(self, exc: BaseException, what: str, url: str, timeout: float, query: bool) -> Exception:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        url = _redact(url)
        if isinstance(reason, (TimeoutError, socket.timeout)):
            if query:
                return self._too_slow()
            return StoreError(f"the SPARQL server at {url} did not answer the {what} within {timeout:g} s")
        return StoreError(f"cannot reach the SPARQL server at {url} for the {what}: {reason}")

    def _query_http(self, sparql: str, accept: str, default_graphs, named_graphs) -> tuple[bytes, str]:
        """Run a query (no bindings left to apply); the body and the media type of the answer."""
        default_graphs, named_graphs = self._dataset(default_graphs, named_graphs)
        client = _QueryClient(self.endpoints.query, agent=_AGENT)
        client.setMethod(POST)
        client.setRequestMethod(URLENCODED)
        client.setOnlyConneg(True)  # no format=/output= parameters: some servers prefer them to the Accept header
        client.setQuery(sparql)
        client.timeout = self.query_timeout  # set directly: setTimeout() truncates to whole seconds
        for g in default_graphs:
            client.addDefaultGraph(g)
        for g in named_graphs:
            client.addNamedGraph(g)
        if self.endpoints.union == "oxigraph" and not (default_graphs or named_graphs):
            client.addParameter("union-default-graph", "")
        client.addCustomHttpHeader("Accept", accept)
        if self.endpoints.user:
            client.setCredentials(self.endpoints.user, self.endpoints.password or "")
        url = self.endpoints.query
        deadline = time.monotonic() + self.query_timeout
        try:
            result = client.query()
            with result.response as response:
                body = self._read_until(response, deadline)
                media_type = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        except SPARQLWrapperException as exc:
            status = {"QueryBadFormed": 400, "Unauthorized": 401, "EndPointNotFound": 404, "URITooLong": 414,
                      "EndPointInternalError": 500}.get(type(exc).__name__, 500)
            raise self._http_error(status, _server_text(exc), "query", url) from None
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc.code, _read_error(exc), "query", url) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise self._transport_error(exc, "query", url, self.query_timeout, query=True) from None
        self._check_union()
        return body, media_type

    def _read_until(self, response, deadline: float) -> bytes:
        """The whole body, or QueryTimeout at ``deadline``: the socket timeout alone bounds each read, not the
        total, and a server may stream a long result slowly."""
        chunks = []
        sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._too_slow()
            if sock is not None:
                try:
                    sock.settimeout(remaining)
                except OSError:
                    sock = None
            chunk = response.read(1 << 16)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    def _too_slow(self) -> QueryTimeout:
        limit = self.query_limit
        said = f"{limit:g} s" if limit else f"{self.query_timeout:g} s"
        return QueryTimeout(f"the query ran longer than {said} and was stopped; make it more selective or add a "
                            f"LIMIT (the SPARQL server at {self.endpoints.shown} did not answer within "
                            f"{self.query_timeout:g} s)")

    def _dataset(self, default_graphs, named_graphs) -> tuple[list[str], list[str]]:
        """The protocol dataset for the embedded store's semantics: naming only the default graphs keeps every
        named graph available, naming only named graphs keeps the union as default graph. (The SPARQL Protocol
        leaves the other half empty, so it is spelled out with the list of graphs.)"""
        default_graphs, named_graphs = list(default_graphs or []), list(named_graphs or [])
        if default_graphs and not named_graphs:
            named_graphs = self.graphs()
        elif named_graphs and not default_graphs:
            default_graphs = self.graphs() or ["urn:x-mfmkg:no-graph"]
        return default_graphs, named_graphs

    def _check_union(self) -> None:
        """Once, when the store holds data: make sure queries see the union of the graphs as default graph, the
        semantics every mfmkg query relies on. A server without it would answer most queries with nothing."""
        if self._union_checked:
            return
        self._union_checked = True  # set first: the probe's own queries come back here
        try:
            probe = self.query("SELECT ?s ?p ?o WHERE { GRAPH ?g { ?s ?p ?o } FILTER(isIRI(?s) && !isBlank(?o)) } "
                               "LIMIT 1")
            if not isinstance(probe, SelectResult) or not probe.rows:
                self._union_checked = False  # nothing stored yet: ask again later
                return
            s, p, o = probe.rows[0]
            seen = self.query("ASK { ?s ?p ?o }", bindings={"s": s, "p": p, "o": o})
        except BaseException:
            self._union_checked = False
            raise
        if not (isinstance(seen, AskResult) and seen.value):
            self._union_checked = False
            raise StoreError(f"the SPARQL server at {self.endpoints.shown} does not query the union of its named "
                             "graphs by default: start Oxigraph with --union-default-graph (or add union=oxigraph "
                             "to the STORE URL), or see docs/remote-store.md for other servers")

    # -- queries ---------------------------------------------------------------------------------------------
    def query(self, sparql, *, bindings=None, default_graphs=None, named_graphs=None) -> QueryResult:
        body, got = self._query_http(bind_values(sparql, bindings), _QUERY_ACCEPT, default_graphs, named_graphs)
        parsed = self._parse(body, got, None)
        if isinstance(parsed, ox.QueryBoolean):
            return AskResult(bool(parsed))
        rows, _total = self._collect(parsed, body, None)
        if isinstance(parsed, ox.QuerySolutions):
            variables = [v.value for v in parsed.variables]
            return SelectResult(variables, [tuple(to_rdflib(sol[v]) for v in variables) for sol in rows])
        return GraphResult([_triple(t) for t in rows])

    def query_raw(self, sparql, media_type, *, bindings=None, default_graphs=None, named_graphs=None,
                  max_rows=None) -> RawResult:
        if media_type in RESULT_FORMATS:
            family = "results"
        elif media_type in RDF_FORMATS:
            family = "rdf"
        else:
            raise ValueError(f"unsupported media type {media_type!r}")
        fetch = TSV if media_type == CSV else media_type
        body, got = self._query_http(bind_values(sparql, bindings), fetch, default_graphs, named_graphs)
        parsed = self._parse(body, got or fetch, family)
        same = got == media_type  # the server's bytes can go out as they are (unless cut)
        if isinstance(parsed, ox.QueryBoolean):
            if media_type in (CSV, TSV) or not same:  # CSV/TSV have no standard boolean: written as embedded does
                return serialize(AskResult(bool(parsed)), media_type)
            return RawResult(body, media_type, "ask")
        rows, total = self._collect(parsed, body, max_rows)
        truncated = max_rows is not None and total > max_rows
        if same and not truncated:
            return RawResult(body, media_type, "select" if family == "results" else "graph")
        if family == "results":
            variables = [v.value for v in parsed.variables]
            rows = [tuple(to_rdflib(sol[v]) for v in variables) for sol in rows]
            return serialize(SelectResult(variables, rows, truncated), media_type)
        return serialize(GraphResult([_triple(t) for t in rows], truncated), media_type)

    def _parse(self, body: bytes, media_type: str, family: str | None):
        """pyoxigraph's lazy parser of a body of ``media_type``: solutions, a boolean, or triples. ``family``
        ("results" or "rdf") is what was asked for; None: whichever ``media_type`` names."""
        results_format = ox.QueryResultsFormat.from_media_type(media_type)
        rdf_format = ox.RdfFormat.from_media_type(media_type)
        if family is None:
            family = "rdf" if rdf_format is not None and results_format is None else "results"
        try:
            if family == "results" and results_format not in (None, ox.QueryResultsFormat.CSV):
                return ox.parse_query_results(body, format=results_format)
            if family == "rdf" and rdf_format is not None:
                return ox.parse(body, format=rdf_format)
        except SyntaxError as exc:
            raise self._bad_body(body, exc) from None
        if _CANCELLED.encode() in body[-200:]:
            raise self._bad_body(body, None)
        raise StoreError(f"the SPARQL server at {self.endpoints.shown} answered with {media_type or 'no media type'}"
                         f", which mfmkg cannot read as SPARQL {'results' if family == 'results' else 'RDF'}")

    def _collect(self, parsed, body: bytes, max_rows: int | None) -> tuple[list, int]:
        """The first ``max_rows`` items (all when None) and the total count; parses to the end, so that a body
        broken after its start is an error and not a silently short result."""
        rows, total = [], 0
        try:
            for item in parsed:
                if max_rows is None or total < max_rows:
                    rows.append(item)
                total += 1
        except SyntaxError as exc:
            raise self._bad_body(body, exc) from None
        return rows, total

    def _bad_body(self, body: bytes, exc: Exception | None) -> Exception:
        if _CANCELLED.encode() in body[-200:]:
            return QueryTimeout(f"the SPARQL server at {self.endpoints.shown} stopped the query at its own time "
                                "limit")
        return StoreError(f"the SPARQL server at {self.endpoints.shown} sent a result mfmkg cannot read: {exc}")

    # -- writes ----------------------------------------------------------------------------------------------
    def update(self, sparql: str) -> None:
        self._drop_pending()
        touched = False
        try:
            self._post(self.endpoints.update, sparql.encode("utf-8"), "application/sparql-update", "update")
            self._touch()
            touched = True
        except QuerySyntaxError:
            touched = True  # the server refused it whole: nothing changed
            raise
        finally:
            if not touched:
                self._touch_quietly()  # a timeout or a lost answer: the update may have been applied
            self._bump()

    def load(self, data: bytes | str, media_type: str, graph: str) -> None:
        fmt = ox.RdfFormat.from_media_type(media_type)
        if fmt is None:
            raise ValueError(f"unsupported RDF media type {media_type!r}")
        try:
            triples = [ox.Triple(q.subject, q.predicate, q.object)
                       for q in ox.parse(data.encode() if isinstance(data, str) else data, format=fmt)]
        except SyntaxError as exc:
            raise QuerySyntaxError(str(exc)) from exc
        self._write(triples, graph, replace=False)

    def add(self, triples: Iterable[Triple], graph: str) -> int:
        converted = _to_oxigraph(triples)
        self._write(converted, graph, replace=False)
        return len(converted)

    def replace_graph(self, graph: str, triples: Iterable[Triple]) -> int:
        converted = _to_oxigraph(triples)
        self._write(converted, graph, replace=True)
        return len(converted)

    def drop_graph(self, graph: str) -> None:
        self.update(f"DROP SILENT GRAPH {_iri(graph)}")

    def graph_writer(self, graph: str) -> GraphWriter:
        """Batches of STORE_BATCH lines to a staging graph, then one update (``DROP`` + ``MOVE``): see
        ``_RemoteGraphWriter``."""
        return _RemoteGraphWriter(self, graph)

    def _write(self, triples: list[ox.Triple], graph: str, replace: bool) -> None:
        """Add ``triples`` to ``graph`` (or replace it by them) so that a failure leaves ``graph`` as it was."""
        target = _iri(graph)
        self._drop_pending()
        try:
            batches = _batches(triples, self.batch_size)
            if not batches and replace:
                self._update_stamped(f"DROP SILENT GRAPH {target}")
            elif len(batches) == 1 and not replace:
                self._send_batch(batches[0], graph)  # one request: the server applies it whole or not at all
                self._touch()
            elif batches:
                staging = self._new_staging()
                try:
                    for batch in batches:
                        staging.send(ox.serialize(batch, format=ox.RdfFormat.N_TRIPLES), len(batch))
                    staging.swap_in(graph, replace)
                except BaseException:
                    staging.drop()
                    raise
        finally:
            self._bump()

    def _send_batch(self, batch: list[ox.Triple], graph: str) -> None:
        self._send_ntriples(ox.serialize(batch, format=ox.RdfFormat.N_TRIPLES), graph, len(batch))

    def _new_staging(self) -> "_Staging":
        self._sweep_staging()
        return _Staging(self)

    def _send_ntriples(self, body: bytes, graph: str, n: int) -> None:
        """One request adding the N-Triples ``body`` (``n`` triples) to ``graph``: applied whole or not at all."""
        if self.endpoints.gsp is None:
            text = f"INSERT DATA {{ GRAPH {_iri(graph)} {{\n{body.decode('utf-8')}}} }}"
            self._post(self.endpoints.update, text.encode("utf-8"), "application/sparql-update", "load")
            return
        url = self.endpoints.gsp + ("&" if "?" in self.endpoints.gsp else "?") + urllib.parse.urlencode(
            {"graph": graph})
        self._post(url, body, "application/n-triples", f"load of {n} triples")

    def _drop_staging(self, staging: str) -> None:
        text = f"DROP SILENT GRAPH <{staging}> ;\nDROP SILENT GRAPH <{staging}{LEASE_SUFFIX}>"
        try:
            self._post(self.endpoints.update, text.encode(), "application/sparql-update", "drop of a staging graph")
        except Exception:  # the server is unreachable: the next write tries again
            with self._lock:
                self._pending_drops.add(staging)

    def _drop_pending(self) -> None:
        with self._lock:
            pending, self._pending_drops = self._pending_drops, set()
        if not pending:
            return
        text = " ;\n".join(f"DROP SILENT GRAPH <{g}> ;\nDROP SILENT GRAPH <{g}{LEASE_SUFFIX}>"
                            for g in sorted(pending))
        try:
            self._post(self.endpoints.update, text.encode(), "application/sparql-update", "drop of staging graphs")
        except Exception:
            with self._lock:
                self._pending_drops |= pending

    def _sweep_staging(self) -> None:
        """Before a batched write: drop staging graphs whose writer died (``drop_staging_graphs``)."""
        self.drop_staging_graphs()

    def drop_staging_graphs(self, max_age: float | None = None) -> list[str]:
        """Drop the staging graphs of writers that died. Several processes may write to the server, so a staging
        graph is abandoned only when its lease has run out (its writer renews it before each batch:
        ``lease_seconds``), or, without a lease, once it is older than STAGING_MAX_AGE. ``max_age`` (seconds since
        the graph was created) overrides both: ``max_age=0`` drops every staging graph of mfmkg, for an operator
        who knows that no load is running. Returns the staging graphs dropped."""
        from mfmkg.namespaces import MFM
        from mfmkg.store.base import OLD_STAGING_PREFIXES, STAGING_PREFIX as LOAD_PREFIX

        prefixes = (STAGING_PREFIX, LOAD_PREFIX) + OLD_STAGING_PREFIXES
        names = {g.removesuffix(LEASE_SUFFIX) for g in self.graphs() if g.startswith(prefixes)}
        res = self.query(f"SELECT ?s ?v WHERE {{ GRAPH ?g {{ ?s <{MFM.leaseUntil}> ?v }} "
                         f"FILTER(STRSTARTS(STR(?g), \"{STAGING_PREFIX}\")) }}")
        leases = {str(s): _seconds(v) for s, v in (res.rows if isinstance(res, SelectResult) else [])}
        now = time.time()
        stale = []
        for g in sorted(names):
            created = _created(g)
            if max_age is not None:
                dead = created is None or now - created >= max_age
            elif g in leases:
                dead = leases[g] < now
            else:
                dead = created is None or now - created > STAGING_MAX_AGE
            if dead:
                stale.append(g)
        if stale:
            with self._lock:
                self._pending_drops.update(stale)
            self._drop_pending()
        return stale

    # -- data version ----------------------------------------------------------------------------------------
    def _stamp_update(self) -> tuple[str, str]:
        from mfmkg.namespaces import META_GRAPH, MFM

        token = uuid.uuid4().hex
        key = f"<{META_GRAPH}#{VERSION_KEY}>"
        return token, (f"DELETE WHERE {{ GRAPH <{META_GRAPH}> {{ {key} <{MFM.metaValue}> ?v }} }} ;\n"
                       f"INSERT DATA {{ GRAPH <{META_GRAPH}> {{ {key} <{MFM.metaValue}> \"{token}\" }} }}")

    def _update_stamped(self, sparql: str) -> None:
        """An update of ours together with a new data-version token, in one request (one transaction)."""
        token, stamp = self._stamp_update()
        self._post(self.endpoints.update, f"{sparql} ;\n{stamp}".encode("utf-8"), "application/sparql-update",
                   "update")
        with self._lock:
            self._seen_stamp = token

    def _touch(self) -> None:
        token, stamp = self._stamp_update()
        self._post(self.endpoints.update, stamp.encode("utf-8"), "application/sparql-update",
                   "data version update")
        with self._lock:
            self._seen_stamp = token

    def _touch_quietly(self) -> None:
        try:
            self._touch()
        except Exception:  # the server is gone; this process bumps its own version anyway
            pass

    def data_version(self) -> int:
        """This process's version, moved on whenever the server's token changed since the last look (a write by
        another process). One small query per call; raises StoreError when the server is unreachable."""
        stamp = self.get_meta(VERSION_KEY)
        with self._lock:
            changed = self._seen_stamp is not _UNSEEN and stamp != self._seen_stamp
            self._seen_stamp = stamp
        if changed:
            self._bump()
        return super().data_version()

    # -- inspection ------------------------------------------------------------------------------------------
    def graphs(self) -> list[str]:
        res = self.query("SELECT DISTINCT ?g WHERE { GRAPH ?g { } FILTER(isIRI(?g)) }", default_graphs=None)
        rows = res.rows if isinstance(res, SelectResult) else []
        return sorted(str(r[0]) for r in rows if r[0] is not None)

    def stats(self) -> dict[str, int]:
        """Triples per named graph, and under ``"default"`` the triples of the query's default graph (on a server
        that queries the union by default, all of them: a triple in two graphs counts twice)."""
        res = self.query("SELECT ?g (COUNT(*) AS ?n) WHERE { { GRAPH ?g { ?s ?p ?o } } UNION { ?s ?p ?o } } "
                         "GROUP BY ?g")
        counts = {"default": 0}
        for g, n in res.rows if isinstance(res, SelectResult) else []:
            counts["default" if g is None else str(g)] = int(n)
        return counts

    def close(self) -> None:
        """Nothing to release: every request has its own connection."""


_UNSEEN = object()


class _RemoteGraphWriter(GraphWriter):
    """``RemoteStore.graph_writer``: the written N-Triples go out in batches of ``batch_size`` lines (GSP ``POST``,
    or ``INSERT DATA`` without GSP) to a fresh staging graph, and one final update swaps it in (``DROP`` + ``MOVE``,
    with the data-version token). Data that fits one batch, for a graph that is empty, goes straight to the graph
    in one request. A failed batch, an abort or a lost server leave the graph as it was; the staging graph is
    dropped (again by the next write of this process, or by any process once its lease has run out, if the
    server was unreachable: ``RemoteStore.drop_staging_graphs``). Chunks holding blank nodes are kept until the
    end and sent in batches that keep each blank node's triples together (a blank node label means one node only
    within one request)."""

    def __init__(self, store: RemoteStore, graph: str):
        super().__init__(store, graph)
        self.store: RemoteStore = store
        store._drop_pending()
        self.empty = store.graph_is_empty(graph)
        self.staging: str | None = None
        self.direct = False
        self._pending: list[bytes] = []
        self._lines = 0
        self._bnodes = False
        self._finished = False

    def write(self, data: bytes) -> None:
        if self.done or self._finished:
            raise RuntimeError("write after the end of a graph write")
        if not data:
            return
        self._pending.append(bytes(data))
        if self._bnodes or b"_:" in data:
            self._bnodes = True
            return
        self._lines += data.count(b"\n")
        size = self.store.batch_size
        while self._lines >= size:
            blob = b"".join(self._pending)
            cut = -1
            for _ in range(size):
                cut = blob.index(b"\n", cut + 1)
            self._send(blob[:cut + 1], size)
            rest = blob[cut + 1:]
            self._pending, self._lines = ([rest] if rest else []), self._lines - size

    def _send(self, body: bytes, n: int) -> None:
        if self.staging is None:
            self.staging = self.store._new_staging()
            self._claim(self.staging.graph)
        self.staging.send(body, n)

    def finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        try:
            blob, self._pending = b"".join(self._pending), []
            if self._bnodes:
                try:
                    triples = [ox.Triple(q.subject, q.predicate, q.object)
                               for q in ox.parse(blob, format=ox.RdfFormat.N_TRIPLES)]
                except SyntaxError as exc:
                    raise QuerySyntaxError(str(exc)) from exc
                batches = [(ox.serialize(b, format=ox.RdfFormat.N_TRIPLES), len(b))
                           for b in _batches(triples, self.store.batch_size)]
            else:
                batches = [(blob, self._lines)] if blob else []
            if len(batches) == 1 and self.staging is None and self.empty:  # one request: applied whole or not
                body, n = batches[0]
                self.store._send_ntriples(body, self.graph, n)
                self.direct = True
                return
            for body, n in batches:
                self._send(body, n)
        except BaseException:
            self.abort()
            raise

    def commit(self) -> None:
        self.finish()
        try:
            if self.staging is not None:
                self.staging.swap_in(self.graph, replace=True)
            elif self.direct:
                self.store._touch()
            elif not self.empty:  # nothing written: the graph is to be empty
                self.store._update_stamped(f"DROP SILENT GRAPH {_iri(self.graph)}")
        except BaseException:
            self.abort()
            raise
        finally:
            self.store._bump()
        self.done = True
        self._release(self.staging and self.staging.graph)

    def abort(self) -> None:
        if self.done:
            return
        self.done = True
        if self.staging is not None:
            self.staging.drop()
        self._release(self.staging and self.staging.graph)
        self.store._bump()


class _Staging:
    """A staging graph on the server, ``<STAGING_PREFIX><time_ns>-<uuid>``, and its lease: the graph
    ``<staging>-lease`` holding ``<staging> mfm:leaseUntil "<unix time>"``, renewed before a batch once a third of
    it has passed, so that another process's ``drop_staging_graphs`` knows the writer is alive.

    The final update ends with ``DROP GRAPH <lease>`` (not SILENT): should another process have taken the staging
    graph for abandoned and dropped it with its lease (a writer stalled past its lease), the update fails as a
    whole and the target keeps its old content, even if later batches re-created the staging graph. A renewal
    only updates a lease that still exists."""

    def __init__(self, store: RemoteStore):
        self.store = store
        self.graph = f"{STAGING_PREFIX}{time.time_ns()}-{uuid.uuid4().hex}"
        self.lease = self.graph + LEASE_SUFFIX
        self.renewed: float | None = None

    def send(self, body: bytes, n: int) -> None:
        now = time.monotonic()
        if self.renewed is None or now - self.renewed > self.store.lease_seconds / 3:
            from mfmkg.namespaces import MFM

            until = f'"{time.time() + self.store.lease_seconds:.0f}"'
            s, p, g = f"<{self.graph}>", f"<{MFM.leaseUntil}>", f"<{self.lease}>"
            text = (f"INSERT DATA {{ GRAPH {g} {{ {s} {p} {until} }} }}" if self.renewed is None else
                    f"DELETE {{ GRAPH {g} {{ {s} {p} ?v }} }} INSERT {{ GRAPH {g} {{ {s} {p} {until} }} }} "
                    f"WHERE {{ GRAPH {g} {{ {s} {p} ?v }} }}")
            self.store._post(self.store.endpoints.update, text.encode(), "application/sparql-update",
                             "lease of a staging graph")
            self.renewed = now
        self.store._send_ntriples(body, self.graph, n)

    def swap_in(self, graph: str, replace: bool) -> None:
        """One update: the staging graph becomes ``graph`` (replace) or is added to it, and the lease goes."""
        target = _iri(graph)
        if replace:
            move = f"DROP SILENT GRAPH {target} ;\nMOVE GRAPH <{self.graph}> TO GRAPH {target}"
        else:
            move = f"ADD GRAPH <{self.graph}> TO GRAPH {target} ;\nDROP SILENT GRAPH <{self.graph}>"
        try:
            self.store._update_stamped(f"{move} ;\nDROP GRAPH <{self.lease}>")
        except (QuerySyntaxError, StoreError) as exc:  # Oxigraph: HTTP 500 "The graph <...-lease> does not exist"
            if self.lease not in exc.detail:
                raise
            raise StoreError(f"the staging graph of this write was dropped by another process (which took it for "
                             f"abandoned) before the write ended: nothing was changed, load again ({exc.detail})"
                             ) from None

    def drop(self) -> None:
        self.store._drop_staging(self.graph)


def _seconds(value) -> float:
    try:
        return float(str(value))
    except ValueError:
        return 0.0


def _created(staging: str) -> float | None:
    """The creation time (unix seconds) in a staging graph's name, None for names without one."""
    parts = staging.rsplit("/", 1)[-1].split("-")
    return int(parts[1]) / 1e9 if len(parts) > 2 and parts[1].isdigit() else None


# -- helpers ----------------------------------------------------------------------------------------------------

def _read_error(exc: urllib.error.HTTPError) -> str:
    try:
        return exc.read().decode("utf-8", "replace")
    except Exception:
        return exc.reason or ""


def _iri(graph: str) -> str:
    from mfmkg.binding import term_sparql

    return term_sparql(URIRef(graph))


def _triple(t) -> Triple:
    return to_rdflib(t.subject), to_rdflib(t.predicate), to_rdflib(t.object)


def _to_oxigraph(triples: Iterable[Triple]) -> list[ox.Triple]:
    """rdflib triples as pyoxigraph triples; blank nodes get fresh labels (one per rdflib blank node), so that any
    rdflib label, valid in N-Triples or not, travels safely."""
    bnodes: dict[BNode, ox.BlankNode] = {}

    def term(t):
        if isinstance(t, URIRef):
            return ox.NamedNode(str(t))
        if isinstance(t, BNode):
            node = bnodes.get(t)
            if node is None:
                node = bnodes[t] = ox.BlankNode()
            return node
        if isinstance(t, Literal):
            if t.language:
                return ox.Literal(str(t), language=t.language)
            if t.datatype is not None:
                return ox.Literal(str(t), datatype=ox.NamedNode(str(t.datatype)))
            return ox.Literal(str(t))
        raise TypeError(f"not an RDF term: {t!r}")

    return [ox.Triple(term(s), term(p), term(o)) for s, p, o in triples]


def _batches(triples: list[ox.Triple], size: int) -> list[list[ox.Triple]]:
    """Split into batches of about ``size`` triples, keeping every triple that shares a blank node (directly or
    through other blank nodes) in one batch. A group larger than ``size`` becomes one oversized batch."""
    parent: dict[ox.BlankNode, ox.BlankNode] = {}

    def find(x):
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while x != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    plain, linked = [], []
    for t in triples:
        nodes = [n for n in (t.subject, t.object) if isinstance(n, ox.BlankNode)]
        if not nodes:
            plain.append(t)
            continue
        linked.append((t, nodes[0]))
        roots = [find(n) for n in nodes]
        for r in roots[1:]:
            if r != roots[0]:
                parent[r] = roots[0]
    groups: dict[ox.BlankNode, list[ox.Triple]] = {}
    for t, node in linked:
        groups.setdefault(find(node), []).append(t)
    batches, current = [], []
    for group in groups.values():
        if current and len(current) + len(group) > size:
            batches.append(current)
            current = []
        current.extend(group)
    for t in plain:
        if len(current) >= size:
            batches.append(current)
            current = []
        current.append(t)
    if current:
        batches.append(current)
    return batches
