"""Benchmarks (``python -m tests.bench``): not collected by ``pytest tests``; see README.md
"Benchmarks" and tests/bench/RESULTS.md."""
