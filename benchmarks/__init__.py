"""Benchmarks: each module a command (python -m benchmarks.NAME) printing figures that docs/benchmarks.md keeps."""
