"""Benchmarks: ONNX paths against the torch path."""
