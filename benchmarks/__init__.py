"""Speed, memory and quality measurements of ddsp_core; never part of the test suite.

Each benchmark is a module run from the repository root, e.g. `python -m benchmarks.bench_dsp`;
every one takes `--smoke` (seconds, the smallest configuration), which tests/benchmarks runs.
Shared helpers are in `benchmarks.common`; results, with their commands, in RESULTS.md.
"""
