"""Load literature into the store: parse, validate, identify, classify, and write each source's named graph.

One source = one named graph (``.../graph/source/<name>``) = one all-or-nothing write (docs/loading.md):

- every entry is parsed and validated first; by default one bad entry (or an unreadable file) means nothing of
  that source is stored, and every problem is reported as ``file:line: field: reason``; ``skip_invalid``
  stores the valid entries; ``dry_run`` reports and writes nothing;
- a source seen before with the same content digest (inputs, options, vocabulary) is left untouched;
- the triples are streamed, while the files are still being read, through one ``Store.graph_writer``: a single
  store transaction for a new source (nothing of it is visible before the end, and a crash or kill -9 leaves
  nothing), a staging graph swapped in by one update (DROP + MOVE) for a source loaded before, batches to a
  staging graph on a remote server. Readers see the old or the new source, never a part; the source's
  description (its counts, digest, load time) is part of the same write, so ``sources`` lists whole sources
  only. Staging graphs that a crashed load left behind are dropped when the next load starts.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from dataclasses import dataclass
from importlib.resources import files as package_files
from pathlib import Path
from typing import Callable, Iterable

from mfmkg.errors import LoadError, NotFound
from mfmkg.namespaces import GRAPH, META_GRAPH, MFM, SOURCE_GRAPH_PREFIX, source_graph
from mfmkg.store.base import GraphWriter, SelectResult, Store

from . import identity
from .classify import classify
from .graph import GraphBuilder
from .identity import normalise_title
from .registry import FORMATS, HEAD_BYTES, detect_format, iter_inputs, parse
from .report import Conflict, FileReport, LoadReport, Problem, SourceReport
from .vocabulary import load_vocabulary

#: Bump when the triples written for the same input change, so that reloading rewrites old sources.
LOADER_VERSION = "1"
#: Entries per chunk handed to the graph writer (a few MB of N-Triples; the writer holds at most a few chunks).
CHUNK_ENTRIES = 2000
#: Every staging graph (of this pipeline, of ``Store.graph_writer``, of the remote store): never source data.
STAGING_PREFIX = str(GRAPH["staging/"])
#: Meta key with which loaders before graph writers marked a source graph being written (see ``_recover``).
LOADING_KEY = "loading-graph"
#: Above this many publications already in the store, their titles and years are read with one query (about
#: 2 s with 100k publications stored) instead of one look-up each (about 0.2 ms).
BULK_LOOKUP = 5000
YEAR_MIN, YEAR_MAX = 1900, 2100
_SPACE = re.compile(r"\s")

#: One load at a time per process (the service may get concurrent uploads).
_lock = threading.RLock()

Progress = Callable[[int], None]


@dataclass
class Input:
    """One input: a name (used in reports and ``file:line`` locations) and its bytes or path."""

    name: str
    data: bytes | None = None
    path: str | None = None

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        try:
            with open(self.path or self.name, "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            raise LoadError(self.name, None, None, "no such file") from None
        except IsADirectoryError:
            raise LoadError(self.name, None, None, "is a directory, not a file") from None
        except OSError as exc:
            raise LoadError(self.name, None, None, f"cannot read: {exc.strerror or exc}") from None


def sample_path() -> Path:
    """The bundled sample collection (package data)."""
    return Path(str(package_files("mfmkg.loaders"))) / "samples" / "mfm-sample.json"


# -- planning -------------------------------------------------------------------------------------------------

def plan(paths: Iterable[str], source: str | None = None) -> list[tuple[str, list[Input]]]:
    """(source name, inputs) pairs: all paths into ``source`` when given, else one source per path argument
    (a file: its name without extension; a directory: its name, holding every literature file below it)."""
    paths = [os.fspath(p) for p in paths]
    if source is not None:
        _check_source_name(source)
        return [(source, [Input(f, path=f) for f in iter_inputs(paths)])]
    groups: dict[str, list[Input]] = {}
    for p in paths:
        name = identity.source_name_for(p)
        if name in groups:
            raise LoadError(p, None, None, f"another input is also source {name!r}: name them with --source")
        groups[name] = [Input(f, path=f) for f in iter_inputs([p])]
    return list(groups.items())


def _check_source_name(name: str) -> None:
    if not identity.valid_source_name(name):
        raise LoadError(name, None, "source", "a source name is 1-100 letters, digits, '.', '_' or '-', "
                                              "starting with a letter or digit")


# -- entry points ---------------------------------------------------------------------------------------------

def load_paths(store: Store, paths: Iterable[str], source: str | None = None, fmt: str | None = None,
               skip_invalid: bool = False, dry_run: bool = False, progress: Progress | None = None) -> LoadReport:
    """Load files and directories (see ``plan``); the report says what happened to each source."""
    report = LoadReport(dry_run=dry_run, skip_invalid=skip_invalid)
    for name, inputs in plan(paths, source):
        report.sources.append(load_source(store, name, inputs, fmt=fmt, skip_invalid=skip_invalid,
                                          dry_run=dry_run, progress=progress))
    return report


load = load_paths


def load_source(store: Store, name: str, inputs: list[Input], fmt: str | None = None, skip_invalid: bool = False,
                dry_run: bool = False, progress: Progress | None = None) -> SourceReport:
    """Load ``inputs`` as source ``name``, replacing what that source held before."""
    _check_source_name(name)
    if fmt is not None and fmt not in FORMATS:
        raise LoadError(fmt, None, "format", f"unknown format (known: {', '.join(FORMATS)})")
    with _lock:
        started = time.perf_counter()
        if not dry_run:
            _recover(store)
            store.drop_staging_graphs()  # left behind by a load that was killed before its last step
        rep = _Load(store, name, inputs, fmt, skip_invalid, dry_run, progress).run()
        rep.seconds = time.perf_counter() - started
        return rep


def unload(store: Store, name: str) -> int:
    """Remove a source's graph; returns how many triples it held. NotFound when there is no such source."""
    graph = source_graph(name)
    with _lock:
        count = store.stats().get(graph, 0)
        if not count:
            raise NotFound(f"no literature source named {name!r} (see `mfmkg sources`)")
        store.drop_graph(graph)
        return count


_SOURCES_QUERY = f"""
PREFIX mfm: <{MFM}>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
SELECT ?g ?name ?loadedAt ?entries ?publications ?asserted ?inferred
       (GROUP_CONCAT(?file; separator="\\n") AS ?files)
WHERE {{
  GRAPH ?g {{
    ?s a mfm:LiteratureSource ; rdfs:label ?name ; mfm:loadedAt ?loadedAt ; mfm:entryCount ?entries ;
       mfm:publicationCount ?publications ; mfm:assertedLinkCount ?asserted ; mfm:inferredLinkCount ?inferred .
    OPTIONAL {{ ?s mfm:inputFile ?file }}
  }}
  FILTER(STRSTARTS(STR(?g), "{SOURCE_GRAPH_PREFIX}"))
}}
GROUP BY ?g ?name ?loadedAt ?entries ?publications ?asserted ?inferred
ORDER BY ?name
"""


def sources(store: Store) -> list[dict]:
    """Every loaded source with its counts, load time and input files."""
    stats = store.stats()
    res = store.query(_SOURCES_QUERY)
    out = []
    for row in (res.values() if isinstance(res, SelectResult) else []):
        out.append({"name": row["name"], "graph": row["g"], "loadedAt": str(row["loadedAt"]),
                    "entries": int(row["entries"]), "publications": int(row["publications"]),
                    "asserted": int(row["asserted"]), "inferred": int(row["inferred"]),
                    "triples": stats.get(row["g"], 0),
                    "files": [f for f in (row["files"] or "").split("\n") if f]})
    return out


# -- validation -----------------------------------------------------------------------------------------------

def _is_notice(fld: str, reason: str) -> bool:
    """Parser problems that do not make an entry invalid: repeats the pipeline merges (a second entry with the
    same arXiv id or DOI, a repeated citation key) and a field given twice (the parser kept the first)."""
    return fld == "key" or reason.startswith("duplicate") or "given twice" in reason


def validate(entry) -> tuple[list[tuple[str, str]], list[tuple[str, str]], str | None]:
    """(errors, notices, publication IRI) of one entry; any error makes the entry invalid."""
    errors: list[tuple[str, str]] = []
    notices: list[tuple[str, str]] = []
    if entry.problems:
        for fld, reason in entry.problems:
            (notices if _is_notice(fld, reason) else errors).append((fld, reason))
    title, year, month, doi, arxiv, url = (entry.title, entry.year, entry.month, entry.doi, entry.arxiv_id,
                                           entry.url)
    if not title and not any(f in ("title", "entry") for f, _ in errors):
        errors.append(("title", "missing title"))
    if year is not None and not YEAR_MIN <= year <= YEAR_MAX:
        errors.append(("year", f"{year} is not a plausible year ({YEAR_MIN}-{YEAR_MAX})"))
    if month is not None and not 1 <= month <= 12:
        errors.append(("month", f"{month} is not a month (1-12)"))
    if doi and not identity.valid_doi(doi):
        errors.append(("doi", f"not a DOI: {doi!r}"))
    if arxiv and not identity.valid_arxiv(arxiv):
        errors.append(("arxiv_id", f"not an arXiv id: {arxiv!r}"))
    if url and ("://" not in url or _SPACE.search(url)):
        errors.append(("url", f"not a URL: {url!r}"))
    if errors:
        return errors, notices, None
    iri = identity.publication_iri(doi, arxiv, title, year)
    if iri is None:
        errors.append(("year", "missing: a paper without DOI or arXiv id is identified by title and year")
                      if year is None else ("title", "has no letters or digits to identify the paper by"))
    return errors, notices, iri


_TEXT_FIELDS = ("title", "venue", "doi", "arxiv_id", "url", "abstract")
_LIST_FIELDS = ("authors", "keywords", "tags", "categories")


def _lone_surrogate(entry) -> tuple[str, str] | None:
    """(field, reason) when a field holds a lone surrogate (JSON "\\ud800"), which cannot be written as UTF-8.
    Checked before anything of the entry is built. (``isascii`` is a flag of the str: no scan for ASCII text.)"""
    for name in _TEXT_FIELDS + _LIST_FIELDS:
        value = getattr(entry, name)
        for text in ((value,) if name in _TEXT_FIELDS else value) if value else ():
            if not text.isascii():
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError as exc:
                    return name, f"text that is not valid Unicode (a lone surrogate at character {exc.start})"
    return None


# -- the load of one source -----------------------------------------------------------------------------------

class _Seen:
    __slots__ = ("title", "year", "where", "topics")

    def __init__(self, title, year, where, topics):
        self.title, self.year, self.where, self.topics = title, year, where, topics


class _Load:
    def __init__(self, store, name, inputs, fmt, skip_invalid, dry_run, progress):
        self.store, self.name, self.inputs, self.fmt = store, name, inputs, fmt
        self.skip_invalid, self.dry_run, self.progress = skip_invalid, dry_run, progress
        self.graph = source_graph(name)
        self.rep = SourceReport(name=name, graph=self.graph)
        self.chunk: list[bytes] = []
        self.chunk_entries = 0
        self.written = 0
        self.writer: GraphWriter | None = None
        self.writing = not dry_run
        # publications the store held before: (iri, title, year, where), compared with the store once the write
        # has ended (while it streams, the store may not be waited on; see GraphWriter.finish)
        self.deferred: list[tuple[str, str | None, int | None, str]] = []

    def run(self) -> SourceReport:
        rep, store = self.rep, self.store
        vocab = load_vocabulary(store)
        datas = self._read_inputs()
        if datas is None:
            return rep
        digest = self._digest(datas, vocab.digest)
        old = _source_state(store, self.graph)
        if old and old["digest"] == digest:
            rep.status = "unchanged"  # the files were not parsed again: per-file counts stay 0
            rep.entries, rep.publications = old["entries"], old["publications"]
            rep.unchanged, rep.asserted, rep.inferred = old["publications"], old["asserted"], old["inferred"]
            rep.triples = store.count(self.graph)
            return rep
        self.existing = _existing_publications(store)  # before this load: IRI -> graphs holding it
        self.own_count = sum(1 for graphs in self.existing.values() if self.graph in graphs)
        self.own_seen = 0
        self.builder = GraphBuilder(self.name, vocab)
        self.vocab = vocab
        self.seen: dict[str, _Seen] = {}
        try:
            if self.writing:
                self.writer = store.graph_writer(self.graph)
            for (inp, data), fr in zip(datas, rep.files):
                self._read_file(inp, data, fr)
            rep.publications = len(self.seen)
            if rep.errors and not self.skip_invalid:
                self._abandon()
                self._tally_deferred()
                rep.status = "failed"
                return rep
            self._emit(self.builder.source_description(
                files=[i.name for i in self.inputs], entries=rep.entries, publications=rep.publications,
                asserted=rep.asserted, inferred=rep.inferred, digest=digest), 0)
            self._flush()
            if self.writer is not None:
                self.writer.finish()  # everything is stored, not yet visible as the source (for a reload)
            self._tally_deferred()
            rep.removed = self.own_count - self.own_seen
            if self.dry_run:
                rep.triples = self.written
                rep.status = "dry-run"
                return rep
            self.writer.commit()
            rep.status = "loaded"
            rep.triples = self.written
            return rep
        except BaseException:
            self._abandon()
            raise

    # -- reading ---------------------------------------------------------------------------------------------
    def _read_inputs(self) -> list[tuple[Input, bytes]] | None:
        out = []
        for inp in self.inputs:
            fr = FileReport(inp.name, self.fmt)
            self.rep.files.append(fr)
            try:
                try:
                    inp.name.encode("utf-8")
                except UnicodeEncodeError:
                    raise LoadError(inp.name, None, None, "the file name is not valid UTF-8: rename the file") from None
                data = inp.read()
                if fr.format is None:
                    fr.format = detect_format(inp.name, data[:HEAD_BYTES])
            except LoadError as exc:
                self.rep.errors.append(Problem(exc.path, exc.line, exc.field, exc.reason, file_level=True))
                if not self.skip_invalid:
                    self.rep.status = "failed"
                    return None
                self.rep.files.pop()
                continue
            out.append((inp, data))
        return out

    def _digest(self, datas, vocab_digest: str) -> str:
        h = hashlib.sha256()
        h.update(f"{LOADER_VERSION}\0{vocab_digest}\0{self.name}\0{self.fmt}\0{self.skip_invalid}\0".encode())
        for inp, data in datas:
            h.update(inp.name.encode() + b"\0" + hashlib.sha256(data).digest())
        return h.hexdigest()

    def _read_file(self, inp: Input, data: bytes, fr: FileReport) -> None:
        rep, progress, entry_of = self.rep, self.progress, self._entry
        last_line = 0
        try:
            if progress is None:
                for entry in parse(data, fmt=fr.format, name=inp.name):
                    fr.entries += 1
                    entry_of(entry, fr)
            else:
                for entry in parse(data, fmt=fr.format, name=inp.name):
                    fr.entries += 1
                    if entry.line > last_line:
                        progress(entry.line - last_line)
                        last_line = entry.line
                    entry_of(entry, fr)
        except LoadError as exc:
            rep.errors.append(Problem(exc.path, exc.line, exc.field, exc.reason, file_level=True))
            if not self.skip_invalid:
                self._stop_writing()
        if progress is not None:
            progress(max(0, data.count(b"\n") + 1 - last_line))

    def _invalid(self, entry, fr: FileReport, errors) -> None:
        rep = self.rep
        fr.invalid += 1
        rep.invalid += 1
        rep.errors.extend(Problem(entry.file, entry.line, fld, reason) for fld, reason in errors)
        if not self.skip_invalid:
            self._stop_writing()

    def _entry(self, entry, fr: FileReport) -> None:
        rep = self.rep
        errors, notices, iri = validate(entry)
        if notices:
            rep.notices.extend(Problem(entry.file, entry.line, fld, reason) for fld, reason in notices)
        if errors:
            self._invalid(entry, fr, errors)
            return
        where = f"{entry.file}:{entry.line}"
        builder = self.builder
        prev = self.seen.get(iri)
        text = builder.publication(iri, entry, where) if prev is None else ""
        # a lone surrogate (JSON "\ud800") cannot be written as UTF-8: checked before anything of the entry is
        # registered. ASCII metadata (``isascii`` is a flag of the str, no scan) leaves only tags and categories.
        if not text.isascii() or prev is not None or entry.tags or entry.categories:
            bad = _lone_surrogate(entry)
            if bad:
                self._invalid(entry, fr, [bad])
                return
        cls = classify(entry, self.vocab)
        for fld, tag in cls.unknown:
            rep.note_unknown(fld, tag, where)
        if prev is None:
            links, n_asserted, n_inferred = builder.links(iri, cls)
        else:
            new = [t for t in cls.links if t not in prev.topics]
            links, n_asserted, n_inferred = builder.links(iri, cls, new)
        if prev is None:
            self.seen[iri] = _Seen(entry.title, entry.year, where, set(cls.links))
            if iri in self.existing:
                self.deferred.append((iri, entry.title, entry.year, where))
            else:
                rep.added += 1
        else:
            rep.duplicates += 1
            self._compare(iri, entry.title, entry.year, where, prev.title, prev.year, prev.where)
            prev.topics.update(new)
        rep.asserted += n_asserted
        rep.inferred += n_inferred
        rep.entries += 1
        chunk = self.chunk
        chunk.append(text)
        chunk.append(links)
        self.chunk_entries += 1
        if self.chunk_entries >= CHUNK_ENTRIES:
            self._flush()

    def _tally_deferred(self) -> None:
        """Count each publication the store held before as merged, unchanged or updated, and report where its
        title or year differ from the stored ones: one indexed look-up each, or one query for all of them."""
        deferred, self.deferred = self.deferred, []
        if not deferred:
            return
        if len(deferred) > BULK_LOOKUP:
            wanted = {d[0] for d in deferred}
            records = _all_publication_records(self.store, wanted)
            found = [records.get(d[0], []) for d in deferred]
        else:
            found = [_publication_records(self.store, d[0]) for d in deferred]
        for (iri, title, year, where), recs in zip(deferred, found):
            self._tally(iri, title, year, where, recs)

    def _tally(self, iri: str, title: str, year: int | None, where: str, found) -> None:
        rep = self.rep
        # a source that held no publications before: whatever its graph holds now is this load's own writing
        own = [r for r in found if r[0] == self.graph] if self.own_count else []
        if own:
            self.own_seen += 1
            if all(_same_title(title, r[1]) and _year_of(r[2]) == year for r in own):
                rep.unchanged += 1
            else:
                rep.updated += 1
        else:
            rep.merged += 1
        for graph, other_title, issued in found:
            if graph != self.graph:
                self._compare(iri, title, year, where, other_title, _year_of(issued), _graph_label(graph))

    def _compare(self, iri, title, year, where, other_title, other_year, other_where) -> None:
        if other_title is not None and not _same_title(title, other_title):
            self.rep.conflicts.append(Conflict(iri, "title", title, other_title, where, other_where))
        if year is not None and other_year is not None and year != other_year:
            self.rep.conflicts.append(Conflict(iri, "year", str(year), str(other_year), where, other_where))

    # -- writing ---------------------------------------------------------------------------------------------
    def _emit(self, lines: list[str], entries: int) -> None:
        self.chunk.extend(lines)
        self.chunk_entries += entries

    def _flush(self) -> None:
        """Hand the chunk to the graph writer, which stores it while the next chunk is read and classified
        (pyoxigraph parses and inserts without holding the GIL). The lines are counted here: no line is written
        twice (loaders/graph.py), so they are the triples the source will hold."""
        if self.chunk:
            data = "".join(self.chunk).encode("utf-8")
            self.written += data.count(b"\n")
            if self.writing:
                self.writer.write(data)
        self.chunk, self.chunk_entries = [], 0

    def _stop_writing(self) -> None:
        """An invalid entry in the default mode: keep reading to report every problem, but store nothing."""
        self._abandon()
        self.writing = False
        self.chunk, self.chunk_entries = [], 0

    def _abandon(self) -> None:
        if self.writer is not None:
            self.writer.abort()


# -- store look-ups -------------------------------------------------------------------------------------------

_STATE_QUERY = f"""
PREFIX mfm: <{MFM}>
SELECT ?digest ?entries ?publications ?asserted ?inferred WHERE {{
  GRAPH ?g {{ ?s a mfm:LiteratureSource ; mfm:contentDigest ?digest ; mfm:entryCount ?entries ;
              mfm:publicationCount ?publications ; mfm:assertedLinkCount ?asserted ;
              mfm:inferredLinkCount ?inferred }}
}}"""

_PUBLICATION_QUERY = f"""
PREFIX mfm: <{MFM}>
PREFIX dcterms: <http://purl.org/dc/terms/>
SELECT ?p ?g ?title ?issued WHERE {{
  GRAPH ?g {{ ?p a mfm:Publication . OPTIONAL {{ ?p dcterms:title ?title }} OPTIONAL {{ ?p dcterms:issued ?issued }} }}
}}"""


def _source_state(store: Store, graph: str) -> dict | None:
    from rdflib import URIRef

    res = store.query(_STATE_QUERY, bindings={"g": URIRef(graph)})
    rows = res.values() if isinstance(res, SelectResult) else []
    if not rows:
        return None
    r = rows[0]
    return {"digest": str(r["digest"]), "entries": int(r["entries"]), "publications": int(r["publications"]),
            "asserted": int(r["asserted"]), "inferred": int(r["inferred"])}


def _existing_publications(store: Store) -> dict[str, set[str]]:
    """Every publication IRI in the store with the graphs holding it (staging graphs left out)."""
    res = store.query(f"SELECT ?g ?p WHERE {{ GRAPH ?g {{ ?p a <{MFM.Publication}> }} }}")
    out: dict[str, set[str]] = {}
    for g, p in (res.rows if isinstance(res, SelectResult) else []):
        g = str(g)
        if not g.startswith(STAGING_PREFIX):
            out.setdefault(str(p), set()).add(g)
    return out


def _all_publication_records(store: Store, wanted: set[str]) -> dict[str, list[tuple[str, str | None, str | None]]]:
    """``_publication_records`` of every IRI in ``wanted``, read with one query over all publications."""
    res = store.query(_PUBLICATION_QUERY)
    out: dict[str, list] = {}
    for p, g, t, d in (res.rows if isinstance(res, SelectResult) else []):
        p, g = str(p), str(g)
        if p in wanted and not g.startswith(STAGING_PREFIX):
            out.setdefault(p, []).append((g, None if t is None else str(t), None if d is None else str(d)))
    return out


def _publication_records(store: Store, iri: str) -> list[tuple[str, str | None, str | None]]:
    """[(graph, title, issued)] of one stored publication. The IRI is written into the query (``term_sparql``
    escapes it): bound through VALUES, pyoxigraph 0.5 evaluates this pattern by scanning every publication
    (0.25 s with 100k of them, against 0.2 ms written in)."""
    from rdflib import URIRef

    from mfmkg.binding import term_sparql

    p = term_sparql(URIRef(iri))
    res = store.query(f"""PREFIX mfm: <{MFM}>
PREFIX dcterms: <http://purl.org/dc/terms/>
SELECT ?g ?title ?issued WHERE {{
  GRAPH ?g {{ {p} a mfm:Publication . OPTIONAL {{ {p} dcterms:title ?title }} OPTIONAL {{ {p} dcterms:issued ?issued }} }}
}}""")
    return [(str(g), None if t is None else str(t), None if d is None else str(d))
            for g, t, d in (res.rows if isinstance(res, SelectResult) else [])
            if not str(g).startswith(STAGING_PREFIX)]


def _recover(store: Store) -> None:
    """Drop the graph of a load that an earlier version of this loader (chunked writes straight into the source
    graph, marked in the meta graph) left half-written when its process died. Current loads leave no such graph
    (``Store.graph_writer``); their leftover staging graphs are dropped by ``Store.drop_staging_graphs``."""
    stale = store.get_meta(LOADING_KEY)
    if stale:
        store.update(f"DROP SILENT GRAPH <{stale}> ;\n"
                     f"DELETE WHERE {{ GRAPH <{META_GRAPH}> {{ <{META_GRAPH}#{LOADING_KEY}> ?p ?v }} }}")


def _same_title(a: str | None, b: str | None) -> bool:
    return a is None or b is None or a == b or normalise_title(a) == normalise_title(b)


def _year_of(issued: str | None) -> int | None:
    if issued and len(issued) >= 4 and issued[:4].isdigit():
        return int(issued[:4])
    return None


def _graph_label(graph: str) -> str:
    if graph.startswith(SOURCE_GRAPH_PREFIX):
        return f"source {graph[len(SOURCE_GRAPH_PREFIX):]}"
    return graph.rsplit("/", 1)[-1] + " graph"
