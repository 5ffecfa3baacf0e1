"""greenfm stages: each subpackage does one stage's work; its `component.py` is the thin KFP wrapper."""
