"""The classification vocabulary, read from the store's ontology graph with one SPARQL query.

Topics are every threat class and defense class (below mfm:Threat / mfm:Defense), every mfm:Modality and every
mfm:PaperKind, and mfm:Threat itself. Their words are rdfs:label, skos:prefLabel, skos:altLabel and
skos:hiddenLabel: users tune the classifier by editing those in the Turtle files (or an extensions directory),
never in Python.

Each (word, topic) pair has a **weight** (how classify.py uses them is described there):

- ``NAMES`` (1.0): the word names the topic: its rdfs:label, skos:prefLabel or skos:altLabel (which, as in SKOS
  thesauri, also "upward-posts" narrower terms that have no class of their own, e.g. "Model stealing" on the
  inferring family), or a skos:hiddenLabel of a topic that has no subtopics (a goal class, a leaf defense, a
  modality, a paper kind). One such word links the topic.
- ``HINT`` (0.5): a skos:hiddenLabel of a topic that has subtopics (a threat family, a defense group). By the
  ontology's conventions these are the broad words ("adversarial", "privacy", "agent"): a hint alone links
  nothing.
- The words of mfm:Threat itself are *generic* threat words ("attack", "security", "vulnerability"): they never
  link anything, they only corroborate a family's hint.

Words and texts are compared as **token sequences**: accents folded, CamelCase names split ("AudioJailbreak" ->
"audio jailbreak", "VLMGuard" -> "vlm guard", but "MLLMs" and "SoK" stay whole), everything but letters and
digits a separator (so "red-teaming" = "red teaming"), every token reduced by a light stemmer (``stem``:
"jailbreaking", "jailbreaks", "jailbreaker" -> "jailbreak"; "hallucination", "hallucinate" -> "hallucinat").
A hyphenated word also matches written as one ("multi-modal" matches "multimodal"), and a mixed-case name also
matches written in lower case as one word ("DiffPure" matches "diffpure"). Matches are whole tokens only, so
"rag" never matches "leverage" nor "mia" "media"; acronyms of three letters or fewer are never stemmed.
"""

from __future__ import annotations

import hashlib
import re
import threading
import unicodedata
from bisect import bisect_left
from dataclasses import dataclass, field
from functools import lru_cache

from mfmkg.namespaces import MFM, ONTOLOGY_GRAPH
from mfmkg.store.base import SelectResult, Store

THREAT, DEFENSE, MODALITY, KIND = "threat", "defense", "modality", "kind"
GROUPS = (THREAT, DEFENSE, MODALITY, KIND)

#: Weight of a word that names its topic, and of a broad hint (see the module docstring).
NAMES, HINT = 1.0, 0.5
#: Version of the matching rules below; part of the digest, so that a source is reloaded when they change.
ALGORITHM = "tokens-stem-weights-2"

_QUERY = f"""
PREFIX mfm: <{MFM}>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
SELECT DISTINCT ?topic ?group ?p ?value WHERE {{
  GRAPH <{ONTOLOGY_GRAPH}> {{
    {{ ?topic rdfs:subClassOf* mfm:Threat . BIND("{THREAT}" AS ?group) }}
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
_HIDDEN = "http://www.w3.org/2004/02/skos/core#hiddenLabel"
_SPACES = re.compile(r"\s+")
#: CamelCase boundaries: "audioJ|ailbreak" (lower, then upper followed by lower), "VLM|Guard" (an upper-case run,
#: then upper + two lower), "Poisoned|RAG" (lower, then a run of two or more upper). "MLLMs", "SoK", "DoS" stay.
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z][a-z])|(?<=[A-Z])(?=[A-Z][a-z]{2})|(?<=[a-z]{2})(?=[A-Z]{2})")
#: A fast test whether ``_CAMEL`` can match at all (it looks at upper-case letters only).
_CAMEL_CANDIDATE = re.compile(r"[A-Z](?:(?<=[a-z][A-Z])|[A-Z][a-z])")
_TOKEN = re.compile(r"[a-z0-9]+")


def normalise(text: str) -> str:
    """The form keywords and tags are shown and keyed in: lower case, ``_`` as space, single spaces."""
    return _SPACES.sub(" ", text.replace("_", " ").lower()).strip()


def fold(text: str) -> str:
    """Accents folded to ASCII letters ("naïve" -> "naive"); other non-ASCII characters are kept."""
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


@lru_cache(maxsize=65536)
def stem(token: str) -> str:
    """A light suffix stemmer for English tokens of this field (lower case, letters only; others unchanged):
    plural -s/-ies; then -ation -> -at and -tion/-sion -> -t/-s (the noun meets its verb); else -ing/-ed/-er
    (undoubling a final double consonant; "jailbreaker" = "jailbreak") and a final -e. Tokens of three
    letters or fewer (acronyms such as "mia", "rag", "dos") are left alone."""
    if len(token) <= 3 or not token.isalpha():
        return token
    t = token
    if t.endswith("ies") and len(t) > 4:
        t = t[:-3] + "y"
    elif t.endswith("sses"):
        t = t[:-2]
    elif t.endswith("s") and not t.endswith(("ss", "us", "is", "as")):
        t = t[:-1]
    if t.endswith("ation") and len(t) > 7:          # hallucination = hallucinate, evaluation = evaluate
        return t[:-3]
    if t.endswith(("tion", "sion")) and len(t) > 6:  # injection = inject, extraction = extract
        return t[:-3]
    for suffix in ("ing", "ed", "er"):
        if t.endswith(suffix) and len(t) - len(suffix) >= (3 if suffix != "er" else 4):
            t = t[:-len(suffix)]
            if len(t) >= 4 and t[-1] == t[-2] and t[-1] not in "aeioulsz":
                t = t[:-1]
            break
    if t.endswith("e") and len(t) > 3:
        t = t[:-1]
    return t


def _skip(n: int) -> re.Pattern:
    """A pattern matching the first ``n`` tokens (``_TOKEN``) of a text and the separators before them: its match
    ends where the n-th token ends. The C regex engine counts the tokens; greedy runs never split one, because
    the pattern only has to back off when the text has fewer than ``n`` tokens."""
    pattern = _SKIPS.get(n)
    if pattern is None:
        pattern = re.compile(r"(?:[^a-z0-9]*[a-z0-9]+){%d}" % n)
        if len(_SKIPS) < 4096:
            _SKIPS[n] = pattern
    return pattern


_SKIPS: dict[int, re.Pattern] = {}
_SEPARATORS = re.compile(r"[^a-z0-9]*")


class Analysed:
    """A text as the matcher sees it: its stemmed tokens, and how to find the original words of a match (computed
    only when asked: most texts have few matches)."""

    __slots__ = ("text", "tokens", "_low", "_inserted")

    def __init__(self, text: str, tokens: list[str], low: str, inserted: list[int]):
        self.text = text                # the text, accents folded
        self.tokens = tokens            # its stemmed tokens
        self._low = low                 # the text lower-cased, with a space at each CamelCase boundary
        self._inserted = inserted       # offsets in ``_low`` of those inserted spaces, ascending

    @property
    def stems(self) -> str:
        """The stemmed tokens joined by single spaces (the form vocabulary words are compared in)."""
        return " ".join(self.tokens)

    def original(self, first: int, end: int) -> str:
        """The original words of tokens ``first`` to ``end - 1``, normalised (lower case, single spaces)."""
        low = self._low
        a = _SEPARATORS.match(low, _skip(first).match(low).end() if first else 0).end()
        b = _skip(end - first).match(low, a).end()
        if self._inserted:
            a -= bisect_left(self._inserted, a)
            b -= bisect_left(self._inserted, b)
        words = self.text[a:b].lower()
        if "  " in words or "_" in words or not words.isascii() or not words.isprintable():
            return normalise(words)
        return words


def analyse(text: str, camel: bool = True) -> Analysed:
    """Tokenise, fold, split CamelCase (``camel``), lower-case and stem ``text``."""
    text = fold(text)
    inserted: list[int] = []
    split = text
    if camel and _CAMEL_CANDIDATE.search(text):
        at = [m.start() for m in _CAMEL.finditer(text)]
        if at:
            split = _CAMEL.sub(" ", text)
            inserted = [p + k for k, p in enumerate(at)]   # where the spaces stand in ``split``
    low = split.lower()
    if len(low) != len(split):  # a few characters lower-case to two; keep offsets aligned (they are separators)
        low = "".join(c if len(c.lower()) != 1 else c.lower() for c in split)
    return Analysed(text, list(map(stem, _TOKEN.findall(low))), low, inserted)


def keyword_forms(word: str) -> set[str]:
    """The stemmed token sequences a vocabulary word matches: as written (CamelCase split), with hyphens joining
    (multi-modal = multimodal), and, for a mixed-case name, lower-cased as one word (DiffPure = diffpure)."""
    variants = {word, word.replace("-", "")}
    if any(c.isupper() for c in word):
        variants.add(word.lower())
        variants.add(word.lower().replace("-", ""))
    forms = set()
    for v in variants:
        form = analyse(v, camel=v != v.lower()).stems
        if sum(c.isalnum() for c in form) >= 2:  # a lone letter ("C++" -> "c") would match everywhere
            forms.add(form)
    return forms


@dataclass
class Topic:
    iri: str
    group: str                                  # threat | defense | modality | kind
    label: str
    parents: set[str] = field(default_factory=set)
    ancestors: frozenset[str] = frozenset()     # topics above it (transitively), within the vocabulary
    family: str | None = None                   # for threats: the direct subclass of mfm:Threat it is under
                                                # (None for mfm:Threat itself: the generic threat words)
    broad: bool = False                         # it has subtopics: its hidden labels are hints (weight HINT)


class Hit:
    """A vocabulary word found in a text: its stemmed form, {topic: weight} for the topics of the group searched,
    and (computed when asked) ``text``, the words as they stand in the text, normalised."""

    __slots__ = ("form", "topics", "_a", "_i", "_j")

    def __init__(self, form: str, topics: dict, a: "Analysed", i: int, j: int):
        self.form, self.topics, self._a, self._i, self._j = form, topics, a, i, j

    @property
    def text(self) -> str:
        return self._a.original(self._i, self._j)

    def __repr__(self) -> str:
        return f"Hit({self.form!r}, {self.text!r})"


class Vocabulary:
    """Topics, their words and weights, and a trie over the words' stemmed tokens that finds them in a text."""

    def __init__(self, topics: dict[str, Topic], words: dict[str, dict[str, float]],
                 originals: dict[str, set[str]] | None = None):
        self.topics = topics
        #: normalised word -> topic IRIs it names or hints at (as written in the ontology, unstemmed);
        #: ``originals`` maps a normalised word to the spellings it came from (their case splits CamelCase)
        self.keywords: dict[str, tuple[str, ...]] = {w: tuple(sorted(ts)) for w, ts in words.items()}
        #: stemmed form -> {topic IRI: weight} (the highest weight when several words share a form)
        self.index: dict[str, dict[str, float]] = {}
        for w, ts in words.items():
            for form in set().union(*(keyword_forms(o) for o in (originals or {}).get(w, {w}))):
                slot = self.index.setdefault(form, {})
                for t, weight in ts.items():
                    slot[t] = max(slot.get(t, 0.0), weight)
        #: threat topic -> its family ("" for mfm:Threat itself, whose words are generic)
        self.family_of = {iri: t.family or "" for iri, t in topics.items() if t.group == THREAT}
        # A trie over stemmed tokens: node = [children by token, ends], ends a tuple of (group, form,
        # {topic: weight} of the group's topics, whether all are hints) for the words that end at the node.
        self._trie: dict = {}
        for form, ts in self.index.items():
            node = None
            children = self._trie
            for tok in form.split(" "):
                node = children.get(tok)
                if node is None:
                    node = children[tok] = [{}, ()]
                children = node[0]
            ends = []
            for g in GROUPS:
                mine = {t: w for t, w in ts.items() if topics[t].group == g}
                if mine:
                    ends.append((g, form, mine, max(mine.values()) < NAMES))
            node[1] = tuple(ends)
        self._lookups: dict[str, dict[str, tuple[float, str]]] = {}
        h = hashlib.sha256(ALGORITHM.encode() + b"\n")
        for form in sorted(self.index):
            h.update(form.encode() + b"\0" + " ".join(f"{t}={w:g}" for t, w in sorted(self.index[form].items()))
                     .encode() + b"\n")
        for iri in sorted(topics):
            h.update(iri.encode() + b"<" + " ".join(sorted(topics[iri].parents)).encode() + b"\n")
        self.digest = h.hexdigest()

    def families(self) -> list[str]:
        """The threat families (direct subclasses of mfm:Threat), sorted."""
        return sorted({t.family for t in self.topics.values() if t.group == THREAT and t.family})

    def find(self, text: str, group: str) -> list[Hit]:
        """The words of ``group`` in ``text`` (see ``scan``)."""
        return self.scan(analyse(text)).get(group, [])

    def scan(self, a: Analysed) -> dict[str, list[Hit]]:
        """The vocabulary words in an analysed text, per group (groups without any left out); see ``matches``."""
        out: dict[str, list[Hit]] = {}
        for g, form, topics, i, j in self.matches(a):
            out.setdefault(g, []).append(Hit(form, topics, a, i, j))
        return out

    def matches(self, a: Analysed) -> list[tuple[str, str, dict, int, int]]:
        """(group, form, {topic: weight}, first token, end token) of every vocabulary word in an analysed text:
        leftmost-longest and non-overlapping within a group (so "rag poisoning" is one hit, not also
        "poisoning"), independently per group (so "backdoor defense" is a defense hit and "backdoor" in it a
        threat hit). A hint does not hide a naming word that starts inside it and ends after it ("private
        attribute inference": "private attribute" is a hint, "attribute inference" names a class: both)."""
        tokens, trie = a.tokens, self._trie
        starts = [k for k, tok in enumerate(tokens) if tok in trie]
        if not starts:
            return []
        out = []
        n = len(tokens)
        free: dict[str, int] = {}        # per group: the first token after its last hit
        last_hint: dict[str, bool] = {}  # per group: whether its last hit was a hint only
        for i in starts:
            children, ends = trie[tokens[i]]
            j = i + 1
            if children and j < n and tokens[j] in children:   # a longer word may start here: walk on
                found = {e[0]: (j, e) for e in ends}
                while j < n and (node := children.get(tokens[j])) is not None:
                    children, ends = node
                    j += 1
                    for e in ends:                  # later (longer) words replace shorter ones of a group
                        found[e[0]] = (j, e)
                for j, (g, form, topics, hint_only) in found.values():
                    if i >= free.get(g, 0) or (last_hint[g] and not hint_only and j > free[g]):
                        out.append((g, form, topics, i, j))
                        free[g] = j
                        last_hint[g] = hint_only
            else:                                   # the common case: a one-token word
                for g, form, topics, hint_only in ends:
                    if i >= free.get(g, 0):
                        out.append((g, form, topics, i, j))
                        free[g] = j
                        last_hint[g] = hint_only
        return out

    def lookup(self, word: str) -> dict[str, tuple[float, str]]:
        """{topic: (weight, form)} of the topics ``word`` as a whole is a vocabulary word of (a tag or category
        compared with the vocabulary: case, plural, hyphens and word endings do not matter)."""
        out = self._lookups.get(word)
        if out is None:
            out = {}
            for form in sorted(keyword_forms(word)):
                for t, w in self.index.get(form, {}).items():
                    if t not in out or out[t][0] < w:
                        out[t] = (w, form)
            if len(self._lookups) < 100_000:
                self._lookups[word] = out
        return out

    @classmethod
    def from_rows(cls, rows) -> "Vocabulary":
        """Build from (topic, group, property, value) rows, as the query returns them."""
        topics: dict[str, Topic] = {}
        found: list[tuple[str, str, str]] = []      # (topic, property, value)
        for topic, group, prop, value in rows:
            t = topics.get(topic)
            if t is None:
                t = topics[topic] = Topic(topic, group, topic.rsplit("#", 1)[-1].rsplit("/", 1)[-1])
            if prop == _SUBCLASS:
                t.parents.add(value)
                continue
            if prop == _LABEL:
                t.label = value
            found.append((topic, prop, value))
        threat_root = str(MFM.Threat)
        for t in topics.values():
            t.ancestors = frozenset(_ancestors(t.iri, topics))
            for a in t.ancestors:
                topics[a].broad = True
            if t.group == THREAT:
                chain = [t.iri, *t.ancestors]
                t.family = next((c for c in chain if threat_root in topics[c].parents), None)
        words: dict[str, dict[str, float]] = {}
        originals: dict[str, set[str]] = {}
        for topic, prop, value in found:
            kw = normalise(value)
            if not kw:
                continue
            weight = HINT if prop == _HIDDEN and topics[topic].broad else NAMES
            slot = words.setdefault(kw, {})
            slot[topic] = max(slot.get(topic, 0.0), weight)
            originals.setdefault(kw, set()).add(_SPACES.sub(" ", value.replace("_", " ")).strip())
        return cls(topics, words, originals)


def _ancestors(iri: str, topics: dict[str, Topic]) -> set[str]:
    seen: set[str] = set()
    stack = list(topics[iri].parents)
    while stack:
        p = stack.pop()
        if p in topics and p not in seen and p != iri:
            seen.add(p)
            stack.extend(topics[p].parents)
    return seen


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
