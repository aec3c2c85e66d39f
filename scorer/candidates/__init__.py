"""Blocking for `scorer candidates`: from a catalogue to the pairs worth scoring.

Three generators, each capped at k candidates per record: lexical (BM25 over normalised title
tokens), exact keys (model-number / GTIN-like tokens) and embedding nearest neighbours (an ONNX
bi-encoder and an HNSW index). Their pairs are merged, each unordered pair once.
"""
