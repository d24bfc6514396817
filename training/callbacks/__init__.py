"""Callbacks that show what the model reads."""
