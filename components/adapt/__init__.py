"""Adaptation: turn the pretrained model into a model for a downstream task."""
