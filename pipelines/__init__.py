"""How greenfm's stages are wired: the DAG, compiling it, running it locally or on Kubeflow, the CLI."""
