"""One module per probe protocol."""
