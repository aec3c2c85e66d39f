"""Fine-tuning the product-similarity cross-encoder and its sample catalogue."""
