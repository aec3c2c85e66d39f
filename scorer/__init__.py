"""Batch scorer for a product-similarity cross-encoder, served through ONNX Runtime."""

__version__ = "0.1.0"
