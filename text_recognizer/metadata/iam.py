"""IAM facts the processing needs. The sizes networks read and the longest labels they write
are the datamodule configs' (text_recognizer/conf/datamodule/iam_*.yaml); processing checks them
against the data and fails naming both if the largest crop or the longest label does not fit."""

# Paragraphs at a quarter of the scan's resolution (half of the archive's half-resolution forms),
# placed unscaled on the page.
PARAGRAPH_SCALE = 0.5
