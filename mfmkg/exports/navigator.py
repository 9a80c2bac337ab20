"""An ATLAS Navigator layer (Navigator layer format 4.5, domain ``atlas-atlas``) scoring our coverage per technique.

For each ATLAS technique that a threat class maps to (exact, close, broad or narrow SKOS match; relatedMatch
does not count), the threats of the technique are the goal-level classes of those mapped classes (a mapped
family stands for its goal classes). Each threat t has c(t) in {0, 0.5, 1}: the best coverage link on t or a
superclass (asserted links; inferred ones too when asked). The score is 100 * mean c(t), rounded: 0 means no
mapped threat has a defense, 100 that every one is fully covered. Techniques no threat maps to are not scored.

The gradient runs from Okabe-Ito orange (0) through light grey to Okabe-Ito blue (100), which stays
distinguishable for the common colour-vision deficiencies (no red/green).
"""

from __future__ import annotations

from mfmkg import __version__
from mfmkg.exports.common import (ATLAS_PREFIX, descendants, leaves, local, mappings, ontology_version, rows,
                                  threat_classes, threat_coverage)
from mfmkg.store.base import Store

LAYER_VERSION = "4.5"
NAVIGATOR_VERSION = "4.9.1"
DOMAIN = "atlas-atlas"
#: Okabe-Ito orange -> light grey -> Okabe-Ito blue.
GRADIENT = ["#E69F00", "#F7F7F7", "#0072B2"]


def technique_scores(store: Store, inferred: bool = False) -> dict[str, dict]:
    """Per ATLAS technique id: score (0-100), the threat classes behind it and their coverage."""
    classes = threat_classes(store)
    cover = threat_coverage(store, inferred, classes)
    goal_level = leaves(classes)
    by_technique: dict[str, dict[str, set[str]]] = {}
    for cls, maps in mappings(store).items():
        if cls not in classes:
            continue
        for m in maps:
            if not m.counterpart or not m.target.startswith(ATLAS_PREFIX):
                continue
            entry = by_technique.setdefault(m.notation, {"mapped": set(), "threats": set()})
            entry["mapped"].add(cls)
            entry["threats"] |= descendants(cls, classes) & goal_level or {cls}
    names = _technique_names(store)
    out = {}
    for tid, entry in by_technique.items():
        if not _is_technique(tid):
            continue
        threats = sorted(entry["threats"])
        values = [cover.get(t, 0.0) for t in threats]
        out[tid] = {
            "score": round(100 * sum(values) / len(values)),
            "name": names.get(tid),
            "mapped": sorted(entry["mapped"]),
            "threats": [{"iri": t, "label": classes[t].label, "coverage": cover.get(t, 0.0)} for t in threats],
        }
    return dict(sorted(out.items()))


def navigator_layer(store: Store, inferred: bool = False) -> dict:
    """The layer as a JSON-ready dict."""
    scores = technique_scores(store, inferred)
    techniques = []
    parents_shown = set()
    for tid, s in scores.items():
        covered = sum(1 for t in s["threats"] if t["coverage"] > 0)
        comment = (f"mfmkg coverage {s['score']}/100: {covered} of {len(s['threats'])} mapped threat classes "
                   "have a defense. " + "; ".join(f"{t['label']}: {t['coverage']:g}" for t in s["threats"]))
        techniques.append({
            "techniqueID": tid, "score": s["score"], "comment": comment, "enabled": True,
            "metadata": [{"name": local(t["iri"]), "value": f"coverage {t['coverage']:g}"} for t in s["threats"]],
            "links": [{"label": f"mfmkg: {local(m)}", "url": m} for m in s["mapped"]],
        })
        if "." in tid[len("AML.T"):]:
            parents_shown.add(tid.rsplit(".", 1)[0])
    for parent in sorted(parents_shown - set(scores)):
        techniques.append({"techniqueID": parent, "showSubtechniques": True})
    for t in techniques:
        if t["techniqueID"] in parents_shown:
            t["showSubtechniques"] = True
    techniques.sort(key=lambda t: t["techniqueID"])
    version = ontology_version(store)
    return {
        "name": "mfmkg coverage of ATLAS techniques",
        "versions": {"layer": LAYER_VERSION, "navigator": NAVIGATOR_VERSION},
        "domain": DOMAIN,
        "description": ("Score = 100 x mean coverage c(t) of the mfmkg threat classes mapped to the technique "
                        "(1 full, 0.5 partial, 0 none; best coverage link on the class or a superclass; "
                        + ("asserted and inferred links" if inferred else "asserted links only")
                        + "). Unscored techniques have no mfmkg counterpart."),
        "sorting": 3,
        "layout": {"layout": "side", "showID": True, "showName": True},
        "hideDisabled": False,
        "techniques": techniques,
        "gradient": {"colors": GRADIENT, "minValue": 0, "maxValue": 100},
        "legendItems": [{"label": "no mapped threat covered (0)", "color": GRADIENT[0]},
                        {"label": "half covered (50)", "color": GRADIENT[1]},
                        {"label": "every mapped threat fully covered (100)", "color": GRADIENT[2]}],
        "metadata": [{"name": "generator", "value": f"mfmkg {__version__}"},
                     {"name": "ontology version", "value": version},
                     {"name": "scored techniques", "value": str(len(scores))}],
        "showTacticRowBackground": False,
        "selectTechniquesAcrossTactics": True,
        "selectSubtechniquesWithParent": False,
    }


def _is_technique(tid: str) -> bool:
    return tid.startswith("AML.T") and not tid.startswith("AML.TA")


def _technique_names(store: Store) -> dict[str, str]:
    found = rows(store, """SELECT ?id ?name WHERE { ?t mfm:atlasObjectType "technique" ; skos:notation ?id ;
                                                        skos:prefLabel ?name }""")
    return {r["id"]: r["name"] for r in found}
