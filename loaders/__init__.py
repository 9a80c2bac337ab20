"""Literature ingest: one module per input format, one registry, one pipeline into the graph."""
