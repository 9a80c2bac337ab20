"""What the shipped ontology says: the SoK threat table's facts, the taxonomy, and that the files are valid.

Expected numbers are hard-coded from the SoK threat table (73 rows) and its reference list (71 references,
8 of them uncertainly identified), so that a hand edit that changes them fails here.
"""

from __future__ import annotations

import pytest
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import OWL, RDF, RDFS

from mfmkg.namespaces import MFM, sparql_prefixes

def rows(store, body: str, **bindings) -> list[dict]:
    return store.query(sparql_prefixes() + body, bindings=bindings or None).values()


def count(store, body: str) -> int:
    """The single number a ``SELECT (COUNT(...) AS ?n)`` query returns."""
    return rows(store, body)[0]["n"]


@pytest.fixture(scope="module")
def graphs():
    """The merged ontology graph and the shapes graph, as ``mfmkg.onto`` builds them."""
    from mfmkg.onto import ontology_files, parse_ontology

    return parse_ontology(ontology_files())


def validate(data: Graph, shapes: Graph):
    import pyshacl

    # SPARQL-based targets (threat and defense classes) need SHACL Advanced Features.
    conforms, _report, text = pyshacl.validate(data, shacl_graph=shapes, inference="none", advanced=True)
    return conforms, text


# -- the SoK threat table ---------------------------------------------------------------------------------

def test_73_attacks_with_unique_rows(store):
    found = rows(store, "SELECT ?a ?row WHERE { ?a a mfm:Attack ; mfm:sokRow ?row . }")
    assert len(found) == 73
    assert sorted(r["row"] for r in found) == list(range(1, 74))


@pytest.mark.parametrize("modality, expected", [("Text", 44), ("Image", 32), ("Audio", 2), ("Video", 0)])
def test_manipulated_modality_counts(store, modality, expected):
    n = count(store, f"SELECT (COUNT(DISTINCT ?a) AS ?n) WHERE {{ ?a a mfm:Attack ; mfm:manipulatesModality mfm:{modality} . }}")
    assert n == expected


@pytest.mark.parametrize("axis, expected", [("Signal", 15), ("Noise", 27), ("Bandwidth", 31)])
def test_axis_counts(store, axis, expected):
    n = count(store, f"SELECT (COUNT(DISTINCT ?a) AS ?n) WHERE {{ ?a a mfm:Attack ; mfm:onAxis mfm:{axis} . }}")
    assert n == expected


def test_every_attack_has_exactly_one_axis(store):
    assert not rows(store, """SELECT ?a WHERE { ?a a mfm:Attack ; mfm:onAxis ?x .
                               } GROUP BY ?a HAVING (COUNT(?x) != 1)""")


@pytest.mark.parametrize("knowledge, expected", [("GreyBox", 4), ("WhiteBox", 36), ("BlackBox", 60)])
def test_knowledge_counts(store, knowledge, expected):
    n = count(store, f"SELECT (COUNT(DISTINCT ?a) AS ?n) WHERE {{ ?a a mfm:Attack ; mfm:adversaryKnowledge mfm:{knowledge} . }}")
    assert n == expected


def test_every_attack_cites_a_titled_publication_and_the_sok(store):
    missing = rows(store, """
        SELECT ?a WHERE {
          ?a a mfm:Attack .
          FILTER NOT EXISTS { ?a dcterms:source ?p . ?p a mfm:Publication ; dcterms:title ?t . }
          FILTER NOT EXISTS { ?a rdfs:isDefinedBy <https://w3id.org/mfmkg/id/pub/arxiv-2411.11195> . }
        }""")
    assert missing == []
    missing_sok = rows(store, """SELECT ?a WHERE { ?a a mfm:Attack .
        FILTER NOT EXISTS { ?a rdfs:isDefinedBy <https://w3id.org/mfmkg/id/pub/arxiv-2411.11195> } }""")
    assert missing_sok == []


def test_every_attack_is_typed_with_one_goal_class_under_its_family(store):
    found = rows(store, """
        SELECT ?a (COUNT(DISTINCT ?c) AS ?n) WHERE {
          ?a a mfm:Attack ; mfm:family ?f ; a ?c .
          ?c rdfs:subClassOf ?f . ?f rdfs:subClassOf mfm:Threat .
        } GROUP BY ?a""")
    assert len(found) == 73
    assert {r["n"] for r in found} == {1}


def test_system_flows_come_from_the_table(store):
    # model-level families get their own flow; agent rows get exactly the flow of their family
    bad = rows(store, """
        SELECT ?a WHERE {
          ?a a mfm:Attack ; mfm:family ?f ; mfm:onFlow ?flow .
          ?f mfm:onFlow ?familyFlow .
          FILTER(?flow != ?familyFlow)
        }""")
    assert bad == []


def test_goal_hijacking_typo_is_normalised(store):
    n = count(store, "SELECT (COUNT(DISTINCT ?a) AS ?n) WHERE { ?a a mfm:AgentActionGoalHijacking ; "
                     "mfm:hasGoal mfm:GoalGoalHijacking . }")
    assert n == 3
    assert count(store, "SELECT (COUNT(*) AS ?n) WHERE { ?a mfm:adversaryCapability mfm:CapGoalHijacking }") == 1


# -- publications ---------------------------------------------------------------------------------------

def test_publication_count(store):
    # 71 references of the threat table, the SoK itself, 8 defense papers named in its defense section
    assert count(store, "SELECT (COUNT(DISTINCT ?p) AS ?n) WHERE { ?p a mfm:Publication }") == 80


def test_uncertain_references_are_flagged_with_a_reason(store):
    found = rows(store, """SELECT ?p ?note WHERE { ?p mfm:uncertainIdentification true .
                           OPTIONAL { ?p skos:editorialNote ?note } }""")
    assert len({r["p"] for r in found}) == 8
    assert all(r["note"] for r in found)


def test_a_reference_cited_by_two_rows_is_one_publication(store):
    # ImgTrojan (ref 81) is rows 28 and 34; Perez & Ribeiro (ref 55) rows 47 and 49
    for arxiv, attacks in (("2403.02910", 2), ("2211.09527", 2)):
        pub = f"<https://w3id.org/mfmkg/id/pub/arxiv-{arxiv}>"
        assert count(store, f"SELECT (COUNT(DISTINCT ?a) AS ?n) WHERE {{ ?a dcterms:source {pub} }}") == attacks
        assert count(store, f"SELECT (COUNT(?t) AS ?n) WHERE {{ {pub} dcterms:title ?t }}") == 1


def test_the_sok_publication(store):
    found = rows(store, """SELECT ?t ?y ?id WHERE {
        <https://w3id.org/mfmkg/id/pub/arxiv-2411.11195> dcterms:title ?t ; dcterms:issued ?y ; dcterms:identifier ?id }""")
    assert found and found[0]["t"].startswith("SoK: Unifying Cybersecurity and Cybersafety")
    assert found[0]["id"] == "arXiv:2411.11195"


# -- taxonomy -------------------------------------------------------------------------------------------

def test_six_flows_with_ids_and_levels(store):
    found = rows(store, """SELECT ?f ?id ?level WHERE { ?f a mfm:InformationFlow ; mfm:flowId ?id ; mfm:level ?level ;
                                                           mfm:direction ?d . }""")
    assert sorted(r["id"] for r in found) == ["F1", "F2", "F3", "F4", "F5", "F6"]
    levels = {r["id"]: r["level"].rsplit("#", 1)[1] for r in found}
    assert [levels[f"F{i}"] for i in range(1, 7)] == ["ModelLevel"] * 3 + ["SystemLevel"] * 3


def test_six_families_and_25_goal_classes(store):
    families = rows(store, "SELECT ?f WHERE { ?f rdfs:subClassOf mfm:Threat }")
    assert len(families) == 6
    goals = rows(store, "SELECT ?c WHERE { ?c rdfs:subClassOf ?f . ?f rdfs:subClassOf mfm:Threat }")
    assert len(goals) == 25


@pytest.mark.parametrize("cls, expected", [("Modality", 4), ("Level", 2), ("ModelStage", 3), ("ChannelAxis", 3),
                                           ("AdversaryGoal", 17), ("AdversaryKnowledge", 3),
                                           ("AdversaryCapability", 17), ("TargetModelType", 4),
                                           ("CoverageDegree", 2), ("LinkKind", 2)])
def test_taxonomy_sizes(store, cls, expected):
    assert count(store, f"SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE {{ ?x a mfm:{cls} }}") == expected


def test_capacity_is_composed_of_the_three_axes(store):
    found = rows(store, "SELECT ?a WHERE { mfm:Capacity mfm:composedOf ?a . ?a a mfm:ChannelAxis }")
    assert len(found) == 3


def test_threat_class_modalities_are_the_union_over_their_attacks(store):
    # for goal classes directly, for families through their subclasses
    extra = rows(store, """
        SELECT ?c ?m WHERE {
          ?c rdfs:subClassOf+ mfm:Threat ; mfm:manipulatesModality ?m .
          FILTER NOT EXISTS { ?a a/rdfs:subClassOf* ?c ; mfm:manipulatesModality ?m }
        }""")
    missing = rows(store, """
        SELECT ?c ?m WHERE {
          ?c rdfs:subClassOf+ mfm:Threat . ?a a/rdfs:subClassOf* ?c ; mfm:manipulatesModality ?m .
          FILTER NOT EXISTS { ?c mfm:manipulatesModality ?m }
        }""")
    assert missing == []
    # the two inferring classes whose attacks manipulate nothing name the modality of the data they reveal,
    # and their family, the union of its subclasses, inherits it
    assert sorted((r["c"].rsplit("#", 1)[1], r["m"].rsplit("#", 1)[1]) for r in extra) == [
        ("InferringDataExtraction", "Image"), ("InferringMembershipInference", "Image"), ("InferringThreat", "Image")]


def test_every_threat_class_names_a_modality(store):
    assert not rows(store, """SELECT ?c WHERE { ?c rdfs:subClassOf+ mfm:Threat .
                               FILTER NOT EXISTS { ?c mfm:manipulatesModality ?m . ?m a mfm:Modality } }""")


def test_every_threat_and_defense_class_has_classifier_keywords(store):
    missing = rows(store, """
        SELECT ?c WHERE {
          { ?c rdfs:subClassOf+ mfm:Threat } UNION { ?c rdfs:subClassOf+ mfm:Defense }
          FILTER NOT EXISTS { ?c skos:hiddenLabel ?k }
          FILTER NOT EXISTS { ?c skos:altLabel ?k }
        }""")
    assert missing == []


@pytest.mark.parametrize("title, expected", [
    ("Jailbreaking Attack against Multimodal Large Language Model", "MisleadingJailbreak"),
    ("PoisonedRAG: Knowledge Corruption Attacks to Retrieval-Augmented Generation", "AgentMemoryDisinformation"),
    ("Membership inference on diffusion models", "InferringMembershipInference"),
    ("Formalizing prompt injection attacks", "AgentActionGoalHijacking"),
    ("A backdoor in CLIP", "MislearningBackdoor"),
    ("Typographic attacks on vision-language models", "MisleadingJailbreak"),
    ("Energy-latency manipulation of VLMs", "MisleadingLatency"),
    ("Prompt stealing attacks", "InferringPromptStealing"),
])
def test_keywords_match_typical_titles(store, title, expected):
    hits = rows(store, """SELECT DISTINCT ?c WHERE { ?c rdfs:subClassOf+ mfm:Threat ; skos:hiddenLabel ?k .
                           FILTER(CONTAINS(LCASE(?title), ?k)) }""", title=Literal(title))
    assert str(MFM[expected]) in {h["c"] for h in hits}


# -- defenses and coverage ------------------------------------------------------------------------------

def test_coverage_links_point_at_defense_and_threat_classes(store):
    found = rows(store, """
        SELECT ?cov ?d ?t ?w WHERE {
          ?cov a mfm:Coverage ; mfm:coveringDefense ?d ; mfm:coveredThreat ?t ; mfm:degree/mfm:weight ?w ;
               mfm:linkKind mfm:Asserted ; prov:wasDerivedFrom ?src .
          ?d rdfs:subClassOf+ mfm:Defense . ?t rdfs:subClassOf+ mfm:Threat .
        }""")
    assert len({r["cov"] for r in found}) == count(store, "SELECT (COUNT(?c) AS ?n) WHERE { ?c a mfm:Coverage }") > 30
    for r in found:
        d, t = r["d"].rsplit("#", 1)[1], r["t"].rsplit("#", 1)[1]
        assert r["cov"] == f"https://w3id.org/mfmkg/id/coverage/{d}--{t}"


@pytest.mark.parametrize("threat", ["MisleadingLatency", "AgentInteractionThreat", "AgentInteractionJailbreak",
                                    "AgentInteractionManipulatedBehavior", "AgentInteractionPrivacyLeaking",
                                    "AgentMemoryDisinformation"])
def test_gaps_named_by_the_sok_stay_uncovered(store, threat):
    n = count(store, f"""SELECT (COUNT(?cov) AS ?n) WHERE {{
        mfm:{threat} rdfs:subClassOf* ?t . ?cov mfm:coveredThreat ?t . }}""")
    assert n == 0


def test_defense_papers_are_cited(store):
    found = rows(store, "SELECT ?d ?p WHERE { ?d rdfs:subClassOf+ mfm:Defense ; dcterms:source ?p . ?p dcterms:title ?t }")
    assert {r["d"].rsplit("#", 1)[1] for r in found} >= {
        "NeuralPurification", "DiffusionPurification", "TextToImagePromptGuard", "InformationFlowControl",
        "InstructionAuthentication", "GuardrailClassifier", "ParametricKnowledgeAccessControl"}


# -- every term, syntax, shapes, OWL ------------------------------------------------------------------------

def test_every_term_of_our_namespace_has_label_and_definition(store):
    missing = rows(store, """
        SELECT ?term WHERE {
          ?term a ?kind .
          VALUES ?kind { owl:Class owl:ObjectProperty owl:DatatypeProperty owl:AnnotationProperty skos:Concept }
          FILTER(STRSTARTS(STR(?term), "https://w3id.org/mfmkg/ont#"))
          FILTER(NOT EXISTS { ?term rdfs:label ?l } || NOT EXISTS { ?term skos:definition ?d })
        }""")
    assert missing == []


def test_ontology_header(store):
    found = rows(store, """SELECT ?v ?vi WHERE { <https://w3id.org/mfmkg/ont> a owl:Ontology ;
        owl:versionIRI ?v ; owl:versionInfo ?vi ; dcterms:title ?t ; dcterms:license ?l ; dcterms:source ?s }""")
    assert found == [{"v": "https://w3id.org/mfmkg/ont/0.1.0", "vi": "0.1.0"}]


def test_files_parse_and_shapes_conform(graphs):
    onto, shapes = graphs
    assert len(onto) > 3000 and len(shapes) > 100
    conforms, text = validate(onto, shapes)
    assert conforms, text


@pytest.mark.parametrize("mutation, needle", [
    ("remove-label", "a threat class needs an rdfs:label"),
    ("bad-coverage", "mfm:coveredThreat must be a subclass of mfm:Threat"),
    ("no-sokrow", "exactly one integer mfm:sokRow"),
])
def test_shapes_catch_broken_data(graphs, mutation, needle):
    onto, shapes = graphs
    data = Graph()
    data += onto
    if mutation == "remove-label":
        data.remove((MFM.MisleadingJailbreak, RDFS.label, None))
    elif mutation == "bad-coverage":
        cov = URIRef("https://w3id.org/mfmkg/id/coverage/InputDenoising--MisleadingAdversarial")
        data.remove((cov, MFM.coveredThreat, None))
        data.add((cov, MFM.coveredThreat, MFM.InputDenoising))
    else:
        data.remove((URIRef("https://w3id.org/mfmkg/id/attack/A05"), MFM.sokRow, None))
    conforms, text = validate(data, shapes)
    assert not conforms
    assert needle in text


@pytest.mark.slow
def test_owl_loads_and_hermit_finds_it_consistent(graphs, tmp_path):
    import shutil

    import owlready2

    onto, _ = graphs
    path = tmp_path / "ontology.nt"
    onto.serialize(path, format="nt", encoding="utf-8")
    world = owlready2.World()
    try:
        world.get_ontology(path.as_uri()).load(format="ntriples")
        ours = {c.iri for c in world.classes() if c.iri.startswith(str(MFM))}
        declared = {str(c) for c in onto.subjects(RDF.type, OWL.Class) if str(c).startswith(str(MFM))}
        assert len(declared) >= 67  # 17 core + 6 families + 25 goal classes + 19 defense classes, and more as it grows
        assert ours == declared  # owlready2 read every class the Turtle declares: nothing was dropped silently
        if shutil.which("java") is None:
            pytest.skip("java not installed: HermiT cannot run")
        owlready2.sync_reasoner_hermit(world, infer_property_values=False, debug=0)
        assert [c for c in world.inconsistent_classes() if c is not owlready2.Nothing] == []
    finally:
        world.close()
