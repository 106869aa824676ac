"""Course tooling: templates, grading, the benchmark, running notebooks, the release."""
