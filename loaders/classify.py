"""Link an entry to threat classes, defense classes, modalities and paper kinds, with evidence (docs/loading.md).

- A tag or category that *is* a vocabulary word (label, altLabel or hiddenLabel, compared case-insensitively,
  ``_`` as space, a leading list number like ``A1.`` ignored) gives an **asserted** link (confidence 1.0).
- Author keywords that are a vocabulary word are asserted too.
- Otherwise keywords are searched for in the text of the title, abstract, keywords, tags and categories
  (word boundaries, longest match first): **inferred** links with the confidence of the field (``CONFIDENCE``).
- A tag or category that neither is nor contains a vocabulary word is returned as unknown, for the report.
- A link keeps one evidence: the tag or category for an asserted link, else the match in the field with the
  highest confidence (title before category, tag and keyword, before abstract).
- When a topic is linked, inferred links to its ancestors are dropped (the more specific link implies them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from .vocabulary import Vocabulary, normalise

ASSERTED, INFERRED = "asserted", "inferred"

#: Confidence of an inferred link by the field its keyword was found in (documented in docs/loading.md).
CONFIDENCE = {"title": 0.9, "category": 0.8, "tag": 0.8, "keyword": 0.8, "abstract": 0.6}
ASSERTED_CONFIDENCE = 1.0

_ENUMERATOR = re.compile(r"^\s*(?:[A-Za-z]?\d+(?:\.\d+)*[.)]|[IVXivx]+\.)\s+")


class Evidence(NamedTuple):
    topic: str
    kind: str            # asserted | inferred
    field: str           # tag | category | keyword | title | abstract
    text: str            # the tag as written, or the keyword matched
    confidence: float

    @property
    def description(self) -> str:
        return f"{self.field}: {self.text}"


@dataclass
class Classification:
    links: dict[str, list[Evidence]] = field(default_factory=dict)   # topic IRI -> [its evidence]
    unknown: list[tuple[str, str]] = field(default_factory=list)     # (field, tag) that matched nothing

    def kind_of(self, topic: str) -> str:
        return self.links[topic][0].kind


def tag_key(tag: str) -> str:
    """How a tag is compared with vocabulary words: normalised, without a leading list number ("A1. ")."""
    return normalise(_ENUMERATOR.sub("", tag))


def classify(entry, vocab: Vocabulary) -> Classification:
    asserted: dict[str, Evidence] = {}
    inferred: dict[str, dict[str, Evidence]] = {}
    unknown: list[tuple[str, str]] = []
    keywords, find = vocab.keywords, vocab.pattern.findall

    def infer(text: str, fld: str) -> bool:
        hit = False
        conf = CONFIDENCE[fld]
        for word in find(text.lower()):
            topics = keywords.get(word)
            if topics is None:  # whitespace other than one space inside a phrase
                word = normalise(word)
                topics = keywords.get(word, ())
            for t in topics:
                hit = True
                per_field = inferred.get(t)
                if per_field is None:
                    inferred[t] = {fld: Evidence(t, INFERRED, fld, word, conf)}
                elif fld not in per_field:
                    per_field[fld] = Evidence(t, INFERRED, fld, word, conf)
        return hit

    for fld, values in (("category", entry.categories), ("tag", entry.tags), ("keyword", entry.keywords)):
        for value in values:
            topics = keywords.get(tag_key(value))
            if topics:
                for t in topics:
                    asserted.setdefault(t, Evidence(t, ASSERTED, fld, value, ASSERTED_CONFIDENCE))
            elif not infer(value, fld) and fld != "keyword":
                unknown.append((fld, value))
    if entry.title:
        infer(entry.title, "title")
    if entry.abstract:
        infer(entry.abstract, "abstract")

    result = Classification(unknown=unknown)
    links = result.links
    for t, ev in asserted.items():
        links[t] = [ev]
    topics = vocab.topics
    covered = set()
    for t in asserted:
        covered |= topics[t].ancestors
    for t in inferred:
        if t not in asserted:
            covered |= topics[t].ancestors
    for t, per_field in inferred.items():
        if t in asserted or t in covered:
            continue
        links[t] = [max(per_field.values(), key=lambda e: e.confidence)]  # the strongest evidence only
    return result
