"""Hydra configs and the code that turns one into a training run."""
