"""Scale benchmarks of the pipeline against a single-process reference."""
