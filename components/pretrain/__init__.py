"""Pretraining: a decoder-only transformer trained on the token shards curation writes."""
