"""`semantik`: the command-line client of the public gRPC API."""
