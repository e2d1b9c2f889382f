"""DocumentService (proto/semantik/v1/document.proto)."""

from __future__ import annotations

from semantik.internal.v1 import metadata_pb2
from semantik.v1 import document_pb2, document_pb2_grpc, operation_pb2
from servicekit.channels import remaining
from servicekit.errors import FieldViolations
from servicekit.grpc_types import ServicerContext
from services.gateway import validation
from services.gateway.downstream import Downstreams
from services.gateway.imports import folder_to_import, queue_import
from services.gateway.security import principal

Context = ServicerContext

MAX_GLOBS = 64


class DocumentHandler(document_pb2_grpc.DocumentServiceServicer):  # type: ignore[misc]
    def __init__(self, downstream: Downstreams, default_timeout_s: float) -> None:
        self._d = downstream
        self._timeout_s = default_timeout_s

    async def ImportDocuments(
        self, request: document_pb2.ImportDocumentsRequest, context: Context
    ) -> operation_pb2.Operation:
        violations = FieldViolations()
        validation.collection_id_of(request.parent, "parent", violations)
        if request.source and request.source_path:
            violations.add("source", "set source (and path) or source_path, not both")
        elif request.source_path:
            validation.check_text(
                request.source_path, "source_path", violations, max_chars=4096, required=True
            )
        else:
            validation.source_id_of(request.source, "source", violations)
            validation.check_text(request.path, "path", violations, max_chars=4096, required=False)
        for field in ("include_globs", "exclude_globs"):
            globs = getattr(request, field)
            if len(globs) > MAX_GLOBS:
                violations.add(field, f"at most {MAX_GLOBS} globs")
            for i, glob in enumerate(globs[:MAX_GLOBS]):
                validation.check_text(
                    glob, f"{field}[{i}]", violations, max_chars=1024, required=True
                )
        if request.max_file_bytes < 0:
            violations.add("max_file_bytes", "must not be negative")
        violations.raise_if_any()

        timeout_s = remaining(context, self._timeout_s)
        folder = await folder_to_import(self._d, principal.current(), request, timeout_s)
        return await queue_import(
            self._d,
            operation_pb2.Operation(
                kind=operation_pb2.OPERATION_KIND_IMPORT_DOCUMENTS,
                collection=request.parent,
                include_globs=request.include_globs,
                exclude_globs=request.exclude_globs,
                max_file_bytes=request.max_file_bytes,
            ),
            folder,
            timeout_s,
        )

    async def GetDocument(
        self, request: document_pb2.GetDocumentRequest, context: Context
    ) -> document_pb2.Document:
        violations = FieldViolations()
        validation.check_document_name(request.name, "name", violations)
        violations.raise_if_any()
        response = await self._d.metadata.GetDocument(
            metadata_pb2.GetDocumentRequest(name=request.name),
            timeout=remaining(context, self._timeout_s),
        )
        return response.document

    async def ListDocuments(
        self, request: document_pb2.ListDocumentsRequest, context: Context
    ) -> document_pb2.ListDocumentsResponse:
        violations = FieldViolations()
        validation.collection_id_of(request.parent, "parent", violations)
        validation.check_page(request.page_size, violations)
        violations.raise_if_any()
        response = await self._d.metadata.ListDocuments(
            metadata_pb2.ListDocumentsRequest(
                parent=request.parent, page_size=request.page_size, page_token=request.page_token
            ),
            timeout=remaining(context, self._timeout_s),
        )
        return document_pb2.ListDocumentsResponse(
            documents=response.documents, next_page_token=response.next_page_token
        )
