"""The built-in sample product catalogue: products rendered as retail titles across languages and
abbreviations, with pair and listwise splits and changing nightly catalogues. It has no dependencies on the
rest of the project; export (the built-in calibration set), the demo, benchmarks and tests read it."""
