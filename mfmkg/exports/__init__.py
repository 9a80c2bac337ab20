"""Exports of the graph for other tools: CSV tables, a STIX 2.1 bundle, an ATLAS Navigator layer, a versioned
release dump (Turtle, JSON-LD, SHA-256 digests) and figures (coverage heatmaps, the flow network, DCI bars).

Every export is computed from the store with SPARQL and is deterministic: the same graph gives the same bytes.
"""
