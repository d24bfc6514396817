"""EMNIST shapes: 28 x 28 characters (the lines composed from them are emnist_lines.yaml's)."""

CHAR_SIZE = 28
