"""Classifier quality against the labelled literature lists (docs/loading.md, "Classification quality").

Ground truth is each list's own labelling, mapped to our classes by ``bench/ground_truth_map.csv`` (data, not
code): awesome-lm-ssp's categories (its files' headings) give threat families; awesome-mllm-safety's Notes give
paper kinds. Only multimodal entries count: awesome-lm-ssp entries with a VLM, Diffusion, Video, Audio, ALM,
SLM, Speech or Voice badge, and all of awesome-mllm-safety. Entries are merged by publication IRI (a paper
listed under two headings has both families).

The classifier sees each entry *without* the label that is the ground truth (categories for families; the Notes
tags for kinds), so what is measured is inference from the title and the remaining badges, with the vocabulary
of the shipped ontology. Per class: precision, recall, F1; macro-F1 over the classes that have positives.

    python -m bench.classification            # target: threat-family macro-F1 >= 0.85
    python -m bench.classification --errors   # also list the misclassified titles
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import re
from collections import defaultdict
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


def read_map() -> dict[tuple[str, str], str | None]:
    with open(MAP_FILE, newline="", encoding="utf-8") as fh:
        return {(r["list"], r["category"]): (None if r["family"] == "-" else MFM + r["family"])
                for r in csv.DictReader(fh)}


def _vocabulary():
    from mfmkg.loaders.vocabulary import load_vocabulary
    from mfmkg.onto import ensure_loaded, ontology_files
    from mfmkg.store.embedded import EmbeddedStore

    store = EmbeddedStore(None)
    ensure_loaded(store, ontology_files())
    return load_vocabulary(store)


def family_dataset(mapping) -> dict[str, tuple[object, set[str]]]:
    """IRI -> (entry without categories, true families) for the multimodal awesome-lm-ssp entries."""
    from mfmkg.loaders.identity import publication_iri
    from mfmkg.loaders.registry import iter_inputs, parse

    out: dict[str, tuple[object, set[str]]] = {}
    for path in iter_inputs([data_dir() / "awesome-lm-ssp"]):
        for e in parse(path):
            if not ({t.lower() for t in e.tags} & MULTIMODAL_BADGES) or not e.title:
                continue
            truth = set()
            for c in e.categories:
                if ("awesome-lm-ssp", c) not in mapping:
                    raise SystemExit(f"{e.where}: category {c!r} is not in {MAP_FILE.name}")
                if mapping[("awesome-lm-ssp", c)]:
                    truth.add(mapping[("awesome-lm-ssp", c)])
            iri = publication_iri(e.doi, e.arxiv_id, e.title, e.year) or e.where
            blind = dataclasses.replace(e, categories=[], problems=[])
            if iri in out:
                out[iri][1].update(truth)
            else:
                out[iri] = (blind, truth)
    return out


def kind_dataset(mapping) -> dict[str, tuple[object, set[str]]]:
    """IRI -> (entry without tags and categories, true paper kinds) for awesome-mllm-safety."""
    from mfmkg.loaders.identity import publication_iri
    from mfmkg.loaders.registry import parse

    out = {}
    for e in parse(data_dir() / "awesome-mllm-safety" / "data.json"):
        truth = set()
        for tag in e.tags:
            key = ("awesome-mllm-safety", re.sub(r"\(.*\)$", "", tag).strip())
            if key not in mapping:
                raise SystemExit(f"{e.where}: Notes value {tag!r} is not in {MAP_FILE.name}")
            if mapping[key]:
                truth.add(mapping[key])
        iri = publication_iri(e.doi, e.arxiv_id, e.title, e.year) or e.where
        out[iri] = (dataclasses.replace(e, tags=[], categories=[], problems=[]), truth)
    return out


def evaluate(dataset, predict, classes: list[str]):
    """Per class (tp, fp, fn), and the misclassified (title, truth, predicted)."""
    counts = {c: [0, 0, 0] for c in classes}
    wrong = []
    for entry, truth in dataset.values():
        pred = predict(entry) & set(classes)
        for c in classes:
            counts[c][0] += c in truth and c in pred
            counts[c][1] += c not in truth and c in pred
            counts[c][2] += c in truth and c not in pred
        if pred != truth & set(classes):
            wrong.append((entry.title, truth, pred))
    return counts, wrong


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
    print(f"classification against the labelled lists in {data_dir()}")
    macro = table(f"threat families: awesome-lm-ssp, multimodal entries ({len(fam_data)} papers)", fam_counts)
    table(f"paper kinds: awesome-mllm-safety ({len(kind_data)} papers)", kind_counts)
    if args.errors:
        for name, wrong in (("families", fam_wrong), ("kinds", kind_wrong)):
            print(f"\nmisclassified ({name}): {len(wrong)}")
            for title, truth, pred in wrong:
                short = lambda s: ",".join(sorted(x.rsplit("#", 1)[-1] for x in s)) or "-"  # noqa: E731
                print(f"  truth {short(truth):<40} predicted {short(pred):<40} {title}")
    print(f"\nthreat-family macro-F1 {macro:.2f} (target >= {TARGET}): {'met' if macro >= TARGET else 'NOT met'}")
    return 0 if macro >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
