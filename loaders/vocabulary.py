"""The classification vocabulary, read from the store's ontology graph with one SPARQL query.

Topics are every threat class and defense class (below mfm:Threat / mfm:Defense), every mfm:Modality and every
mfm:PaperKind. Their words are rdfs:label, skos:prefLabel, skos:altLabel and skos:hiddenLabel: users tune the
classifier by editing those in the Turtle files (or an extensions directory), never in Python.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field

from mfmkg.namespaces import MFM, ONTOLOGY_GRAPH
from mfmkg.store.base import SelectResult, Store

THREAT, DEFENSE, MODALITY, KIND = "threat", "defense", "modality", "kind"

_QUERY = f"""
PREFIX mfm: <{MFM}>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
SELECT DISTINCT ?topic ?group ?p ?value WHERE {{
  GRAPH <{ONTOLOGY_GRAPH}> {{
    {{ ?topic rdfs:subClassOf+ mfm:Threat . BIND("{THREAT}" AS ?group) }}
    UNION {{ ?topic rdfs:subClassOf+ mfm:Defense . BIND("{DEFENSE}" AS ?group) }}
    UNION {{ ?topic a mfm:Modality . BIND("{MODALITY}" AS ?group) }}
    UNION {{ ?topic a mfm:PaperKind . BIND("{KIND}" AS ?group) }}
    ?topic ?p ?value .
    VALUES ?p {{ rdfs:label skos:prefLabel skos:altLabel skos:hiddenLabel rdfs:subClassOf }}
  }}
}}
"""
_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
_SUBCLASS = "http://www.w3.org/2000/01/rdf-schema#subClassOf"
_SPACES = re.compile(r"\s+")
#: Characters that may not touch a keyword match on either side (a "word boundary" for keywords that start or
#: end with letters or digits; keywords like "c++" or "f-secure" still match where they stand).
_WORD = "a-z0-9"


def normalise(text: str) -> str:
    """The form keywords and tags are compared in: lower case, ``_`` as space, single spaces."""
    return _SPACES.sub(" ", text.replace("_", " ").lower()).strip()


@dataclass
class Topic:
    iri: str
    group: str                                  # threat | defense | modality | kind
    label: str
    parents: set[str] = field(default_factory=set)
    ancestors: frozenset[str] = frozenset()     # topics above it (transitively), within the vocabulary
    family: str | None = None                   # for threats: the direct subclass of mfm:Threat it is under


class Vocabulary:
    """Topics and their keywords, with one compiled pattern that finds every keyword in a text."""

    def __init__(self, topics: dict[str, Topic], keywords: dict[str, tuple[str, ...]]):
        self.topics = topics
        self.keywords = keywords              # normalised keyword -> topic IRIs it names
        self.pattern = compile_keywords(keywords)
        h = hashlib.sha256()
        for kw in sorted(keywords):
            h.update(kw.encode() + b"\0" + "\0".join(sorted(keywords[kw])).encode() + b"\n")
        for iri in sorted(topics):
            h.update(iri.encode() + b"<" + " ".join(sorted(topics[iri].parents)).encode() + b"\n")
        self.digest = h.hexdigest()

    def families(self) -> list[str]:
        """The threat families (direct subclasses of mfm:Threat), sorted."""
        return sorted({t.family for t in self.topics.values() if t.group == THREAT and t.family})

    @classmethod
    def from_rows(cls, rows) -> "Vocabulary":
        """Build from (topic, group, property, value) rows, as the query returns them."""
        topics: dict[str, Topic] = {}
        words: dict[str, set[str]] = {}
        for topic, group, prop, value in rows:
            t = topics.get(topic)
            if t is None:
                t = topics[topic] = Topic(topic, group, topic.rsplit("#", 1)[-1].rsplit("/", 1)[-1])
            if prop == _SUBCLASS:
                t.parents.add(value)
                continue
            if prop == _LABEL:
                t.label = value
            kw = normalise(value)
            if kw:
                words.setdefault(kw, set()).add(topic)
        threat_root = str(MFM.Threat)
        for t in topics.values():
            t.ancestors = frozenset(_ancestors(t.iri, topics))
            if t.group == THREAT:
                chain = [t.iri, *t.ancestors]
                t.family = next((c for c in chain if threat_root in topics[c].parents), None)
        return cls(topics, {kw: tuple(sorted(ts)) for kw, ts in words.items()})


def _ancestors(iri: str, topics: dict[str, Topic]) -> set[str]:
    seen: set[str] = set()
    stack = list(topics[iri].parents)
    while stack:
        p = stack.pop()
        if p in topics and p not in seen and p != iri:
            seen.add(p)
            stack.extend(topics[p].parents)
    return seen


def compile_keywords(keywords) -> re.Pattern:
    """One regex finding keywords in lower-cased text: a trie of alternatives, longest match first, on word
    boundaries; a space in a keyword matches any run of whitespace."""
    trie: dict = {}
    for kw in keywords:
        node = trie
        for ch in kw:
            node = node.setdefault(ch, {})
        node[""] = True
    if not trie:
        return re.compile(r"(?!x)x")
    body = _trie_regex(trie)
    return re.compile(rf"(?<![{_WORD}])(?:{body})(?![{_WORD}])")


def _trie_regex(node: dict) -> str:
    alts = []
    for ch in sorted(k for k in node if k):
        piece = r"\s+" if ch == " " else re.escape(ch)
        alts.append(piece + _trie_regex(node[ch]) if node[ch].keys() - {""} else piece)
    if not alts:
        return ""
    group = alts[0] if len(alts) == 1 and len(alts[0]) <= 2 else "(?:" + "|".join(alts) + ")"
    # A keyword ending here: the longer continuations are tried first (greedy "?"), then this one.
    return f"{group}?" if "" in node else group


_cache: dict[int, tuple[str | None, Vocabulary]] = {}
_cache_lock = threading.Lock()


def load_vocabulary(store: Store) -> Vocabulary:
    """The store's vocabulary, cached per store until the ontology graph changes (its content hash)."""
    from mfmkg.onto import HASH_KEY

    stamp = store.get_meta(HASH_KEY)
    with _cache_lock:
        hit = _cache.get(id(store))
        if hit and hit[0] == stamp and stamp is not None:
            return hit[1]
    res = store.query(_QUERY)
    rows = res.rows if isinstance(res, SelectResult) else []
    vocab = Vocabulary.from_rows((str(t), str(g), str(p), str(v)) for t, g, p, v in rows)
    with _cache_lock:
        _cache[id(store)] = (stamp, vocab)
    return vocab
