"""The IAM handwriting database: its forms, and the line and paragraph datamodules cut from them."""
