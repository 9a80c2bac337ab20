"""Benchmarks: classification quality and load throughput (docs/loading.md)."""
