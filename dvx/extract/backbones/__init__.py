"""One self-contained module per backbone family."""
