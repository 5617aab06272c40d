"""Side-by-side benchmarks: `python -m benchmarks.run` (see docs/benchmarks.md)."""
