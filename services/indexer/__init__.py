"""The indexer: the only owner of the vector store, and the import jobs that fill it."""
