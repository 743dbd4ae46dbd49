"""Semantic cache: local, offline sentence embeddings and the lookups built on them."""
