"""Product-similarity cross-encoder: export to ONNX with a parity gate."""
