"""Classifier quality against the labelled literature lists (docs/loading.md, "Classification quality").

Ground truth is each list's own labelling, mapped to our classes by ``bench/ground_truth_map.csv`` (data, not
code): awesome-lm-ssp's categories (its files' headings) give threat families; awesome-mllm-safety's Notes give
paper kinds. In the map, ``-`` marks a category whose topic is outside the SoK's threat families (watermarking,
deepfakes, fairness, ...): its papers are negatives for every family. ``?`` marks a category that is not a topic
at all (Survey, Toolkit, Book, Competition, Leaderboard: publication kinds, measured by the paper-kind table) or
names no threat (the General sections): a paper listed only under such categories has no family ground truth
and is left out of the family table (how many, and the macro-F1 if they were counted as negatives, is
printed). Only multimodal entries count: awesome-lm-ssp entries with a VLM, Diffusion, Video, Audio, ALM, SLM,
Speech or Voice badge, and all of awesome-mllm-safety. Entries are merged by publication IRI (a paper listed
under two headings has both families).

The classifier sees each entry *without* the label that is the ground truth (categories for families; the Notes
tags for kinds), so what is measured is inference from the title and the remaining badges, with the vocabulary
of the shipped ontology. Per class: precision, recall, F1; macro-F1 over the classes that have positives.

    python -m bench.classification            # target: threat-family macro-F1 >= 0.85
    python -m bench.classification --errors   # also list the misclassified titles (with their categories)
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIRS = [ROOT / "tests" / "data" / "literature" / "real", ROOT.parent / "shared" / "data" / "literature"]
MAP_FILE = Path(__file__).resolve().parent / "ground_truth_map.csv"
MULTIMODAL_BADGES = {"vlm", "diffusion", "video", "audio", "alm", "slm", "speech", "voice"}
MFM = "https://w3id.org/mfmkg/ont#"
TARGET = 0.85


def data_dir() -> Path:
    for d in DATA_DIRS:
        if (d / "awesome-lm-ssp").is_dir():
            return d
    raise SystemExit("the literature lists were not found in " + " or ".join(map(str, DATA_DIRS)))


#: Map values: a class (local name), NEGATIVE ("-": a topic outside our classes) or UNLABELLED ("?": no topic).
NEGATIVE, UNLABELLED = None, "?"


def read_map() -> dict[tuple[str, str], str | None]:
    with open(MAP_FILE, newline="", encoding="utf-8") as fh:
        return {(r["list"], r["category"]): {"-": NEGATIVE, "?": UNLABELLED}.get(r["family"], MFM + r["family"])
                for r in csv.DictReader(fh)}


def _vocabulary():
    from mfmkg.loaders.vocabulary import load_vocabulary
    from mfmkg.onto import ensure_loaded, ontology_files
    from mfmkg.store.embedded import EmbeddedStore

    store = EmbeddedStore(None)
    ensure_loaded(store, ontology_files())
    return load_vocabulary(store)


def family_dataset(mapping, *, unlabelled_as_negative: bool = False) -> dict[str, tuple[object, set[str], set[str]]]:
    """IRI -> (entry without categories, true families, its categories) for the multimodal awesome-lm-ssp
    entries. An entry whose categories are all UNLABELLED is left out (or, with ``unlabelled_as_negative``, kept
    with no family)."""
    from mfmkg.loaders.identity import publication_iri
    from mfmkg.loaders.registry import iter_inputs, parse

    out: dict[str, tuple[object, set[str], set[str]]] = {}
    labelled: set[str] = set()
    for path in iter_inputs([data_dir() / "awesome-lm-ssp"]):
        for e in parse(path):
            if not ({t.lower() for t in e.tags} & MULTIMODAL_BADGES) or not e.title:
                continue
            truth = set()
            iri = publication_iri(e.doi, e.arxiv_id, e.title, e.year) or e.where
            for c in e.categories:
                if ("awesome-lm-ssp", c) not in mapping:
                    raise SystemExit(f"{e.where}: category {c!r} is not in {MAP_FILE.name}")
                value = mapping[("awesome-lm-ssp", c)]
                if value != UNLABELLED or unlabelled_as_negative:
                    labelled.add(iri)
                if value not in (NEGATIVE, UNLABELLED):
                    truth.add(value)
            blind = dataclasses.replace(e, categories=[], problems=[])
            if iri in out:
                out[iri][1].update(truth)
                out[iri][2].update(e.categories)
            else:
                out[iri] = (blind, truth, set(e.categories))
    return {iri: v for iri, v in out.items() if iri in labelled}


def kind_dataset(mapping) -> dict[str, tuple[object, set[str], set[str]]]:
    """IRI -> (entry without tags and categories, true paper kinds, its Notes) for awesome-mllm-safety."""
    from mfmkg.loaders.identity import publication_iri
    from mfmkg.loaders.registry import parse

    out = {}
    for e in parse(data_dir() / "awesome-mllm-safety" / "data.json"):
        truth = set()
        for tag in e.tags:
            key = ("awesome-mllm-safety", re.sub(r"\(.*\)$", "", tag).strip())
            if key not in mapping:
                raise SystemExit(f"{e.where}: Notes value {tag!r} is not in {MAP_FILE.name}")
            if mapping[key] not in (NEGATIVE, UNLABELLED):
                truth.add(mapping[key])
        iri = publication_iri(e.doi, e.arxiv_id, e.title, e.year) or e.where
        out[iri] = (dataclasses.replace(e, tags=[], categories=[], problems=[]), truth, set(e.tags))
    return out


def evaluate(dataset, predict, classes: list[str]):
    """Per class (tp, fp, fn), and the misclassified (title, truth, predicted, the list's labels)."""
    counts = {c: [0, 0, 0] for c in classes}
    wrong = []
    for entry, truth, labels in dataset.values():
        pred = predict(entry) & set(classes)
        for c in classes:
            counts[c][0] += c in truth and c in pred
            counts[c][1] += c not in truth and c in pred
            counts[c][2] += c in truth and c not in pred
        if pred != truth & set(classes):
            wrong.append((entry.title, truth, pred, labels))
    return counts, wrong


def macro_f1(counts) -> float:
    f1s = []
    for tp, fp, fn in counts.values():
        if tp + fn:
            f1s.append(2 * tp / (2 * tp + fp + fn))
    return sum(f1s) / len(f1s) if f1s else 0.0


def table(title: str, counts) -> float:
    print(f"\n{title}")
    print(f"{'class':<28}{'support':>8}{'P':>8}{'R':>8}{'F1':>8}")
    f1s = []
    for c, (tp, fp, fn) in counts.items():
        support = tp + fn
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / support if support else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        if support:
            f1s.append(f1)
        print(f"{c.rsplit('#', 1)[-1]:<28}{support:>8}{p:>8.2f}{r:>8.2f}{f1:>8.2f}"
              + ("" if support else "   (no positives: not in macro)"))
    macro = sum(f1s) / len(f1s) if f1s else 0.0
    print(f"{'macro-F1':<28}{'':>8}{'':>8}{'':>8}{macro:>8.2f}")
    return macro


def main(argv: list[str] | None = None) -> int:
    from mfmkg.loaders.classify import classify
    from mfmkg.loaders.vocabulary import KIND

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--errors", action="store_true", help="list misclassified titles")
    args = ap.parse_args(argv)
    vocab, mapping = _vocabulary(), read_map()

    def families(entry) -> set[str]:
        return {vocab.topics[t].family for t in classify(entry, vocab).links if vocab.topics[t].family}

    def kinds(entry) -> set[str]:
        return {t for t in classify(entry, vocab).links if vocab.topics[t].group == KIND}

    fam_data, kind_data = family_dataset(mapping), kind_dataset(mapping)
    fam_counts, fam_wrong = evaluate(fam_data, families, vocab.families())
    kind_classes = sorted(t for t, topic in vocab.topics.items() if topic.group == KIND)
    kind_counts, kind_wrong = evaluate(kind_data, kinds, kind_classes)
    strict = family_dataset(mapping, unlabelled_as_negative=True)
    strict_macro = macro_f1(evaluate(strict, families, vocab.families())[0])
    print(f"classification against the labelled lists in {data_dir()}")
    macro = table(f"threat families: awesome-lm-ssp, multimodal entries ({len(fam_data)} papers)", fam_counts)
    print(f"({len(strict) - len(fam_data)} papers listed only under categories that are no topic ('?' in "
          f"{MAP_FILE.name}) are left out; counted as negatives for every family, macro-F1 would be "
          f"{strict_macro:.3f})")
    table(f"paper kinds: awesome-mllm-safety ({len(kind_data)} papers)", kind_counts)
    if args.errors:
        short = lambda s: ",".join(sorted(x.rsplit("#", 1)[-1] for x in s)) or "-"  # noqa: E731
        for name, wrong in (("families", fam_wrong), ("kinds", kind_wrong)):
            print(f"\nmisclassified ({name}): {len(wrong)}")
            for title, truth, pred, labels in sorted(wrong, key=lambda w: (sorted(w[3]), w[0])):
                print(f"  [{'; '.join(sorted(labels))}] truth {short(truth)} predicted {short(pred)}: {title}")
    print(f"\nthreat-family macro-F1 {macro:.3f} (target >= {TARGET}): {'met' if macro >= TARGET else 'NOT met'}")
    return 0 if macro >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
