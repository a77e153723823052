"""Benchmark harness: ours vs the reference libraries, side by side."""
