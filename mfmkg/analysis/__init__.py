"""Analyses over the graph that no other tool offers: coverage reasoning with inherited and inferred links, the
Defense Coverage Index, the deterministic minimax defense portfolio, and attack capacity of a deployment as a
flow network with a circuit breaker. The definitions are ours (the SoK's formulas are not public): docs/analysis.md.
"""
