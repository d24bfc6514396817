"""Constants shared by datasets, tokenizer and networks (no heavy imports: workers load these)."""
