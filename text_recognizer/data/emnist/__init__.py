"""EMNIST: its handwritten characters, and lines composed of them."""
