"""Wiring of the indexer: vector store, job queue, in-process worker, gRPC server."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import grpc

from semantik.internal.v1 import indexer_pb2, indexer_pb2_grpc
from servicekit import service_auth
from servicekit.channels import open_channel
from servicekit.server import Registration, configure_logging, run_server
from services.indexer import jobs
from services.indexer.clients import EmbedderClient, MetadataClient
from services.indexer.config import IndexerConfig
from services.indexer.extraction import Ocr
from services.indexer.handler import IndexerHandler
from services.indexer.ingest import Importer
from services.indexer.source_paths import PathGuard
from services.indexer.uploads import UploadSettings
from services.indexer.vector_store import VectorStore

COMPONENT = "indexer"
log = logging.getLogger(__name__)


def open_vector_store(config: IndexerConfig) -> VectorStore:
    # Imported on demand: each adapter pulls in its own (large) library.
    if config.qdrant_url:
        from services.indexer.qdrant_client_store import (  # noqa: PLC0415
            QdrantClientVectorStore,
        )

        return QdrantClientVectorStore.from_url(config.qdrant_url)
    from services.indexer.edge_store import EdgeVectorStore  # noqa: PLC0415

    return EdgeVectorStore(Path(config.vector_data_dir))


def build_guard(config: IndexerConfig) -> PathGuard:
    """The folders no import reads (`source_paths`), from the configuration."""
    guard = PathGuard.build(data_dir=config.data_dir, vector_data_dir=config.vector_data_dir)
    log.info("imports never read: %s", guard.describe())
    return guard


def build_importer(
    config: IndexerConfig,
    store: VectorStore,
    embedder_channel: grpc.aio.Channel,
    metadata_channel: grpc.aio.Channel,
    guard: PathGuard | None = None,
) -> Importer:
    """The import pipeline, the same for the in-process and standalone workers."""
    ocr = Ocr.detect(config.tesseract_cmd, config.ocr_languages)
    if ocr.available:
        log.info("OCR: %s %s (%s)", ocr.command, ocr.version, ocr.languages)
    else:
        log.warning("OCR unavailable (%s): scanned PDF pages are reported as skipped", ocr.reason)
    return Importer(
        store,
        EmbedderClient(embedder_channel),
        MetadataClient(metadata_channel),
        embed_batch_texts=config.embed_batch_texts,
        document_concurrency=config.document_concurrency,
        ocr=ocr,
        guard=guard if guard is not None else build_guard(config),
    )


async def serve(config: IndexerConfig) -> None:
    store = open_vector_store(config)
    await store.open()
    queue = jobs.connect(config.redis_url)
    embedder_channel = open_channel(config.embedder_target)
    metadata_channel = open_channel(config.metadata_target)
    guard = build_guard(config)
    importer = build_importer(config, store, embedder_channel, metadata_channel, guard)
    worker = (
        jobs.InProcessWorker(
            config.redis_url,
            jobs.runner_for(importer),
            config.worker_jobs,
            # With Qdrant Edge this process is the queue's only worker.
            sole_worker=not config.qdrant_url,
        )
        if config.run_worker
        else None
    )
    uploads = UploadSettings(data_dir=config.data_dir, max_stream_bytes=config.upload_max_bytes)
    handler = IndexerHandler(store, queue, guard, uploads)
    service_name = indexer_pb2.DESCRIPTOR.services_by_name["IndexerService"].full_name

    async def ready() -> None:
        await store.ping()
        await queue.ping()

    async def on_start() -> None:
        if worker is not None:
            worker.start()

    async def on_shutdown() -> None:
        if worker is not None:
            await worker.stop()
        await queue.aclose(close_connection_pool=True)
        await embedder_channel.close()
        await metadata_channel.close()
        await store.close()

    await run_server(
        component=COMPONENT,
        address=config.address,
        services=[
            Registration(
                service_name,
                lambda server: indexer_pb2_grpc.add_IndexerServiceServicer_to_server(
                    handler, server
                ),
            )
        ],
        readiness_check=ready,
        on_start=on_start,
        on_shutdown=on_shutdown,
        interceptors=service_auth.server_interceptors(),
    )


def main() -> None:
    configure_logging(COMPONENT)
    service_auth.require_service_token(COMPONENT)
    asyncio.run(serve(IndexerConfig.from_env()))
