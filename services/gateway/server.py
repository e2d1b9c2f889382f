"""Gateway wiring: the four public services over the three internal ones."""

from __future__ import annotations

from semantik.v1 import (
    collection_pb2,
    collection_pb2_grpc,
    document_pb2,
    document_pb2_grpc,
    operation_pb2,
    operation_pb2_grpc,
    search_pb2,
    search_pb2_grpc,
)
from servicekit.server import Registration, configure_logging, run_server
from services.gateway.config import GatewayConfig
from services.gateway.downstream import Downstreams
from services.gateway.handlers.collections import CollectionHandler
from services.gateway.handlers.documents import DocumentHandler
from services.gateway.handlers.operations import OperationHandler
from services.gateway.handlers.search import SearchHandler


async def main() -> None:
    configure_logging("gateway")
    config = GatewayConfig.from_env()
    downstream = Downstreams(config)
    timeout = config.default_timeout_s
    collections = CollectionHandler(downstream, timeout)
    documents = DocumentHandler(downstream, timeout)
    operations = OperationHandler(downstream, timeout)
    search = SearchHandler(downstream, timeout)
    await run_server(
        component="gateway",
        address=config.address,
        services=[
            Registration(
                collection_pb2.DESCRIPTOR.services_by_name["CollectionService"].full_name,
                lambda server: collection_pb2_grpc.add_CollectionServiceServicer_to_server(
                    collections, server
                ),
            ),
            Registration(
                document_pb2.DESCRIPTOR.services_by_name["DocumentService"].full_name,
                lambda server: document_pb2_grpc.add_DocumentServiceServicer_to_server(
                    documents, server
                ),
            ),
            Registration(
                operation_pb2.DESCRIPTOR.services_by_name["OperationService"].full_name,
                lambda server: operation_pb2_grpc.add_OperationServiceServicer_to_server(
                    operations, server
                ),
            ),
            Registration(
                search_pb2.DESCRIPTOR.services_by_name["SearchService"].full_name,
                lambda server: search_pb2_grpc.add_SearchServiceServicer_to_server(search, server),
            ),
        ],
        readiness_check=downstream.check_ready,
        readiness_interval_s=config.health_interval_s,
        on_shutdown=downstream.close,
    )
