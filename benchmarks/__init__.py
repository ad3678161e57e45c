"""Measurement scripts, run from the repository root (`python benchmarks/bench.py ...`); a
package so that `benchmarks.bench` is importable there (the GPU check, the tests, the book)."""
