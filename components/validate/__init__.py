"""Validation gate: great-expectations suites over the curated documents and token shards."""
