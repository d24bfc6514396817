"""The IAM/EMNIST character set every dataset and model in the repo shares."""

import string

PAD, START, END, NEWLINE = "<p>", "<s>", "<e>", "\n"
SPECIAL_TOKENS = (PAD, START, END, NEWLINE)
PUNCTUATION = " !\"#&'()*+,-./:;?"
CHARSET = string.digits + string.ascii_uppercase + string.ascii_lowercase + PUNCTUATION
