"""`python -m services.indexer.worker`: import jobs in a process of their own.

Only with a Qdrant server (`QDRANT_URL`): Edge shards belong to the one
indexer process that opened them, whose in-process worker runs the jobs.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from servicekit import service_auth
from servicekit.channels import open_channel
from servicekit.server import configure_logging
from services.indexer import jobs
from services.indexer.config import IndexerConfig
from services.indexer.server import build_importer, open_vector_store

log = logging.getLogger(__name__)


async def run(config: IndexerConfig) -> None:
    store = open_vector_store(config)
    await store.open()
    embedder_channel = open_channel(config.embedder_target)
    metadata_channel = open_channel(config.metadata_target)
    importer = build_importer(config, store, embedder_channel, metadata_channel)
    try:
        await jobs.run_standalone(config.redis_url, jobs.runner_for(importer), config.worker_jobs)
    finally:
        await embedder_channel.close()
        await metadata_channel.close()
        await store.close()


def main() -> None:
    configure_logging("indexer-worker")
    service_auth.require_service_token("indexer-worker")
    config = IndexerConfig.from_env()
    if not config.qdrant_url:
        log.error("a separate worker needs QDRANT_URL; with Qdrant Edge the indexer runs its jobs")
        sys.exit(2)
    asyncio.run(run(config))


if __name__ == "__main__":
    main()
