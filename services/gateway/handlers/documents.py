"""DocumentService (proto/semantik/v1/document.proto)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from semantik.internal.v1 import indexer_pb2, metadata_pb2
from semantik.v1 import document_pb2, document_pb2_grpc, operation_pb2
from servicekit.channels import remaining
from servicekit.errors import FieldViolations, ServiceError, invalid_argument
from servicekit.grpc_types import ServicerContext
from servicekit.streams import chained
from services.gateway import validation
from services.gateway.downstream import Downstreams
from services.gateway.imports import folder_to_import, queue_import, upload_folder
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

    async def UploadDocuments(
        self, requests: AsyncIterator[document_pb2.UploadDocumentsRequest], context: Context
    ) -> operation_pb2.Operation:
        # The interceptor authorised WRITE on the first message's parent.
        timeout_s = remaining(context, self._timeout_s)
        stream = aiter(requests)
        first = await anext(stream, document_pb2.UploadDocumentsRequest())
        upload = _Upload()
        upload.check(first)
        # Nothing is written for a collection that does not exist.
        await self._d.metadata.GetCollection(
            metadata_pb2.GetCollectionRequest(name=upload.parent), timeout=timeout_s
        )
        written = await upload.forward(self._d, first, stream, timeout_s)
        return await queue_import(
            self._d,
            operation_pb2.Operation(
                kind=operation_pb2.OPERATION_KIND_UPLOAD_DOCUMENTS, collection=upload.parent
            ),
            upload_folder(written.folder),
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


class _Upload:
    """One UploadDocuments stream, checked message by message and passed on
    to the indexer's WriteUpload (which writes and checks the files)."""

    def __init__(self) -> None:
        self.parent = ""
        self.refusal: ServiceError | None = None

    def check(self, request: document_pb2.UploadDocumentsRequest) -> None:
        violations = FieldViolations()
        if not self.parent:
            validation.collection_id_of(request.parent, "parent", violations)
            self.parent = request.parent
        elif request.parent and request.parent != self.parent:
            violations.add("parent", f"every message of one upload names {self.parent}")
        validation.check_text(
            request.mime_type, "mime_type", violations, max_chars=255, required=False
        )
        if request.HasField("http_body") and (request.data or not request.file_name):
            violations.add(
                "http_body", "a file sent as http_body needs file_name, and no data beside it"
            )
        violations.raise_if_any()

    async def _parts(
        self,
        first: document_pb2.UploadDocumentsRequest,
        rest: AsyncIterator[document_pb2.UploadDocumentsRequest],
    ) -> AsyncIterator[indexer_pb2.WriteUploadRequest]:
        async for request in chained(first, rest):
            try:
                self.check(request)
            except ServiceError as refusal:
                # Ending the stream here leaves the open file unfinished,
                # which the indexer throws away; the refusal is the answer.
                self.refusal = refusal
                return
            whole = request.HasField("http_body")
            yield indexer_pb2.WriteUploadRequest(
                collection_id=self.parent.removeprefix("collections/"),
                file_name=request.file_name,
                data=request.http_body.data if whole else request.data,
                last=whole or request.last,
                sha256=request.sha256,
            )

    async def forward(
        self,
        downstream: Downstreams,
        first: document_pb2.UploadDocumentsRequest,
        rest: AsyncIterator[document_pb2.UploadDocumentsRequest],
        timeout_s: float,
    ) -> indexer_pb2.WriteUploadResponse:
        try:
            written: indexer_pb2.WriteUploadResponse = await downstream.indexer.WriteUpload(
                self._parts(first, rest), timeout=timeout_s
            )
        except grpc.aio.AioRpcError:
            if self.refusal is not None:
                raise self.refusal from None
            raise
        if self.refusal is not None:
            raise self.refusal
        if not written.file_names:
            raise invalid_argument({"file_name": "the upload held no file"})
        return written
