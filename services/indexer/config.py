"""Settings of the indexer, from environment variables (defaults in README.md)."""

from __future__ import annotations

from dataclasses import dataclass

from servicekit.config import ConfigError, env_bool, env_int, env_str


@dataclass(frozen=True)
class IndexerConfig:
    address: str
    redis_url: str
    # Empty: Qdrant Edge in-process under `vector_data_dir`; set: a Qdrant server.
    qdrant_url: str
    vector_data_dir: str
    # The deployment's data directory (secrets, databases): no import reads
    # it, save its `sources/` and `uploads/`. Empty: none.
    data_dir: str
    # The most bytes one WriteUpload stream may write (into `data_dir/uploads`).
    upload_max_bytes: int
    embedder_target: str
    metadata_target: str
    # Run the arq worker inside the indexer process (required with Edge, whose
    # shards only one process may open).
    run_worker: bool
    # Import jobs one worker runs at the same time.
    worker_jobs: int
    # Chunk texts per Embed call.
    embed_batch_texts: int
    # Documents of one import processed at the same time.
    document_concurrency: int
    # OCR of scanned PDF pages: the tesseract command and its languages.
    tesseract_cmd: str
    ocr_languages: str

    @classmethod
    def from_env(cls) -> IndexerConfig:
        config = cls(
            address=env_str("INDEXER_ADDRESS", "127.0.0.1:50053"),
            redis_url=env_str("REDIS_URL", "redis://127.0.0.1:6379/0"),
            qdrant_url=env_str("QDRANT_URL", "").strip(),
            vector_data_dir=env_str("VECTOR_DATA_DIR", "./data/vectors"),
            data_dir=env_str("INDEXER_DATA_DIR", "").strip(),
            upload_max_bytes=env_int("INDEXER_UPLOAD_MAX_BYTES", 1024 * 1024 * 1024),
            embedder_target=env_str("EMBEDDER_TARGET", "127.0.0.1:50052"),
            metadata_target=env_str("METADATA_TARGET", "127.0.0.1:50054"),
            run_worker=env_bool("INDEXER_RUN_WORKER", True),
            worker_jobs=env_int("INDEXER_WORKER_JOBS", 2),
            embed_batch_texts=env_int("EMBED_BATCH_TEXTS", 64),
            document_concurrency=env_int("INDEXER_DOCUMENT_CONCURRENCY", 32),
            tesseract_cmd=env_str("TESSERACT_CMD", "tesseract"),
            ocr_languages=env_str("OCR_LANGUAGES", "eng"),
        )
        if config.upload_max_bytes < 1:
            raise ConfigError("INDEXER_UPLOAD_MAX_BYTES must be at least 1")
        if config.worker_jobs < 1:
            raise ConfigError("INDEXER_WORKER_JOBS must be at least 1")
        if config.embed_batch_texts < 1:
            raise ConfigError("EMBED_BATCH_TEXTS must be at least 1")
        if config.document_concurrency < 1:
            raise ConfigError("INDEXER_DOCUMENT_CONCURRENCY must be at least 1")
        return config
