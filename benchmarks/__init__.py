"""Benchmarks: each prints ratios measured in one run and can write its section of docs/benchmarks.md."""
