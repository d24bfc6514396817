"""EMNIST shapes: 28 x 28 characters, and the lines composed from them."""

CHAR_SIZE = 28
# Lines of up to 32 characters, fitted to 32 px high: 32 characters without overlap are 1024 wide.
LINE_MAX_LENGTH = 32
LINE_HEIGHT, LINE_WIDTH = 32, 1024
