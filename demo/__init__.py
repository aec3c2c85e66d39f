"""The offline demo and its sample product catalogue (not training code: export, tests and benchmarks use it too)."""
