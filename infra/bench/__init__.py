"""Measurement tools shared by the benchmarks (scripts/bench_*.py) and the tests that calibrate them."""
