"""One module per public service; each method is one RPC of `proto/semantik/v1/`."""
