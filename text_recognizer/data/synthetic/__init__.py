"""Handwriting-style lines rendered offline from fonts: the dataset every clone can train on."""
