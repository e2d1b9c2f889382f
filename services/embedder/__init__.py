"""The embedder service: the embedding model behind `semantik.internal.v1.EmbedderService`."""
