"""Blocking for `scorer candidates`: from a catalogue to the pairs worth scoring.

Four generators, each capped at k candidates per record: lexical (BM25 over normalised title
tokens), exact keys (model-number / GTIN-like tokens), embedding nearest neighbours (an ONNX
bi-encoder and an HNSW index) and character trigrams (TF-IDF cosine). Lexical, trigram and embedding
weigh the title's first segment over shop boilerplate (`text.segments`). Their pairs are merged, each
unordered pair once.
"""
