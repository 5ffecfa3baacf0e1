"""Evaluation: intrinsic (perplexity) and task metrics for the base and adapted models."""
