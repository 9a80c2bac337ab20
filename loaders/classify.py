"""Link an entry to threat classes, defense classes, modalities and paper kinds, with evidence (docs/loading.md).

Words and their weights come from the ontology (``vocabulary.py``): a word that *names* a topic (its label or
altLabel, or a hiddenLabel of a class without subclasses) has weight 1; a *hint* (a hiddenLabel of a threat
family or a defense group: the broad words) has weight 0.5; the words of mfm:Threat itself ("attack",
"security", ...) are *generic*. Texts and words are compared as stemmed token sequences, so case, plurals,
word endings, hyphens and CamelCase names do not matter (``vocabulary.analyse``).

1. Tags, categories and author keywords: one that *is* a vocabulary word (a leading list number such as ``A1.``
   ignored) gives an **asserted** link to each topic it names, and a hint to each topic it hints at. One that
   is not is searched like a text (2.); a tag or category in which no vocabulary word is found at all is
   returned in ``unknown``, for the report (never dropped silently; author keywords are free text).
2. Title and abstract (and such tags): every vocabulary word found (whole tokens, leftmost-longest within each
   topic group, the groups independently) is **inferred** evidence for the topics it names or hints at.
3. Decision. Threats per **family** (the direct subclasses of mfm:Threat): a family is decided by an asserted
   link or a naming word of any of its classes; failing that, by two different words of which at least one is
   a hint of the family and the other a hint of it or a generic word. A family decided by hints alone is kept
   next to a family decided by a naming word only when its *score* (the sum over its different words of their
   best confidence) is at least as high: "jailbreaking ... agents" is a jailbreak paper, "hijacking ... agents
   ... poisoning" both an agent-action and a mislearning paper. Generic words never link anything. Defense
   classes, modalities and kinds are decided per topic: a naming word, or two different hints. When a topic is
   linked, inferred links to its ancestors are dropped (the more specific link implies them).

**Confidence** of a link (``mfm:confidence`` of its evidence): 1.0 for an asserted link; for an inferred link,
that of its strongest evidence, ``CONFIDENCE[field] * weight``: a naming word in the title 0.9, in a category,
tag or keyword 0.8, in the abstract 0.6; a hint half of that (0.45, 0.4, 0.3), and such a link exists only
because a second word corroborated it. Equal confidences keep the first evidence found (tags, then title, then
abstract). ``Classification.families`` reports each family's score and decision (not stored).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from .vocabulary import NAMES, Vocabulary, analyse, normalise

ASSERTED, INFERRED = "asserted", "inferred"

#: Confidence of inferred evidence by the field its word was found in, for a word that names the topic; for a
#: hint, times its weight (HINT = 0.5).
CONFIDENCE = {"title": 0.9, "category": 0.8, "tag": 0.8, "keyword": 0.8, "abstract": 0.6}
ASSERTED_CONFIDENCE = 1.0
#: How many different hints decide a topic (or a threat family) that no naming word decides.
HINTS_NEEDED = 2

_ENUMERATOR = re.compile(r"^\s*(?:[A-Za-z]?\d+(?:\.\d+)*[.)]|[IVXivx]+\.)\s+")


class Evidence(NamedTuple):
    topic: str
    kind: str            # asserted | inferred
    field: str           # tag | category | keyword | title | abstract
    text: str            # the tag as written, or the words matched
    confidence: float

    @property
    def description(self) -> str:
        return f"{self.field}: {self.text}"


@dataclass
class Classification:
    links: dict[str, list[Evidence]] = field(default_factory=dict)   # topic IRI -> [its evidence]
    unknown: list[tuple[str, str]] = field(default_factory=list)     # (field, tag) that matched nothing
    #: for each threat family with any evidence: its score, the sum over its different words of their best
    #: confidence (hints included), and whether it was decided; for reports and benchmarks
    families: dict[str, tuple[float, bool]] = field(default_factory=dict)

    def kind_of(self, topic: str) -> str:
        return self.links[topic][0].kind


def tag_key(tag: str) -> str:
    """How a tag is compared with vocabulary words: normalised, without a leading list number ("A1. ")."""
    return normalise(_ENUMERATOR.sub("", tag))


def classify(entry, vocab: Vocabulary) -> Classification:
    asserted: dict[str, Evidence] = {}
    # topic -> stemmed form -> (confidence, field, where): the best place each word was found for that topic;
    # where is the tag as written, or (analysed text, first token, end token)
    best: dict[str, dict[str, tuple]] = {}
    named: set[str] = set()                # topics a naming word was found for
    hints: dict[str, set[str]] = {}        # topic -> the different hints found for it
    unknown: list[tuple[str, str]] = []

    def note(t: str, form: str, w: float, conf: float, fld: str, where) -> None:
        if w >= NAMES:
            named.add(t)
        else:
            conf = round(conf * w, 4)
            h = hints.get(t)
            if h is None:
                hints[t] = {form}
            else:
                h.add(form)
        per = best.get(t)
        if per is None:
            best[t] = {form: (conf, fld, where)}
        else:
            old = per.get(form)
            if old is None or conf > old[0]:
                per[form] = (conf, fld, where)

    def infer(text: str, fld: str) -> bool:
        a = analyse(text)
        found = vocab.matches(a)
        conf = CONFIDENCE[fld]
        for _g, form, topics, i, j in found:
            where = (a, i, j)
            for t, w in topics.items():
                if w < NAMES:
                    note(t, form, w, conf, fld, where)
                    continue
                named.add(t)                     # note() inlined for the common case: a naming word
                per = best.get(t)
                if per is None:
                    best[t] = {form: (conf, fld, where)}
                elif form not in per or conf > per[form][0]:
                    per[form] = (conf, fld, where)
        return bool(found)

    for fld, values in (("category", entry.categories), ("tag", entry.tags), ("keyword", entry.keywords)):
        for value in values:
            key = tag_key(value)
            words = vocab.lookup(key) if key else {}
            if words:
                for t, (w, form) in words.items():
                    if w >= NAMES and vocab.family_of.get(t) != "":   # generic threat words never link
                        asserted.setdefault(t, Evidence(t, ASSERTED, fld, value, ASSERTED_CONFIDENCE))
                    else:
                        note(t, form, w, CONFIDENCE[fld], fld, value)
            elif not infer(value, fld) and fld != "keyword":
                unknown.append((fld, value))
    if entry.title:
        infer(entry.title, "title")
    if entry.abstract:
        infer(entry.abstract, "abstract")
    return decide(vocab, asserted, best, named, hints, unknown)


def decide(vocab: Vocabulary, asserted, best, named, hints, unknown) -> Classification:
    topics, family_of = vocab.topics, vocab.family_of
    result = Classification(unknown=unknown)

    # Threat families: decided by an asserted link or a naming word in any of their classes, else by hints.
    named_fam: set[str] = set()
    hints_fam: dict[str, set[str]] = {}
    score: dict[str, dict[str, float]] = {}
    generic: set[str] = set()   # generic threat words (mfm:Threat's own): they corroborate a hint, nothing more
    for t in asserted:
        fam = family_of.get(t)
        if fam:
            named_fam.add(fam)
            score.setdefault(fam, {})["=" + t] = ASSERTED_CONFIDENCE
    for t, per in best.items():
        fam = family_of.get(t)
        if fam is None:
            continue
        if not fam:
            generic.update(per)
            continue
        s = score.setdefault(fam, {})
        for form, (conf, _fld, _where) in per.items():
            if s.get(form, 0.0) < conf:
                s[form] = conf
        if t in named:
            named_fam.add(fam)
        if t in hints:
            hints_fam.setdefault(fam, set()).update(hints[t])
    families = named_fam
    if score:
        total = {f: sum(s.values()) for f, s in score.items()}
        best_named = max((total[f] for f in named_fam), default=0.0)
        families = named_fam | {f for f, forms in hints_fam.items()
                                if len(forms | generic) >= HINTS_NEEDED and total[f] >= best_named - 1e-9}
        result.families = {f: (round(total[f], 4), f in families) for f in score}

    links = result.links
    for t, ev in asserted.items():
        links[t] = [ev]
    kept = []
    for t in best:
        if t in asserted:
            continue
        fam = family_of.get(t)
        if fam is not None:                   # a threat class: kept when its family was decided
            keep = fam in families
        else:                                 # a defense, modality or kind: a naming word or enough hints
            keep = t in named or len(hints.get(t, ())) >= HINTS_NEEDED
        if keep:
            kept.append(t)
    covered: set[str] = set()
    for t in (*asserted, *kept):
        ancestors = topics[t].ancestors
        if ancestors:
            covered |= ancestors
    for t in kept:
        if t in covered:
            continue
        per = best[t]
        # the strongest evidence only (the first found of equally strong ones)
        conf, fld, where = next(iter(per.values())) if len(per) == 1 else max(per.values(), key=_first)
        text = where if isinstance(where, str) else where[0].original(where[1], where[2])
        links[t] = [Evidence(t, INFERRED, fld, text, conf)]
    return result


def _first(item: tuple):
    return item[0]
