"""IAM shapes: what the line and paragraph networks read and the longest labels they write.

The sizes are the reference pipeline's for IAM; processing checks them against the data and
fails naming both if the largest crop or the longest label does not fit.
"""

# Lines: crops fitted to 56 px high; up to 87 characters plus the start and end tokens.
LINE_HEIGHT, LINE_WIDTH = 56, 1024
LINE_MAX_OUTPUT_LENGTH = 89

# Paragraphs at a quarter of the scan's resolution (half of the archive's half-resolution forms),
# placed unscaled on the page; up to 680 characters, newlines included, plus start and end.
PARAGRAPH_SCALE = 0.5
PARAGRAPH_HEIGHT, PARAGRAPH_WIDTH = 576, 640
PARAGRAPH_MAX_OUTPUT_LENGTH = 682
