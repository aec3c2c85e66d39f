"""Batch scorer for a product-similarity cross-encoder, served through ONNX Runtime."""
