"""ApiKeyService (proto/semantik/v1/api_key.proto): a user's own scoped keys."""

from __future__ import annotations

import time

from google.protobuf import empty_pb2

from semantik.internal.v1 import metadata_pb2
from semantik.v1 import api_key_pb2, api_key_pb2_grpc
from servicekit.channels import remaining
from servicekit.errors import FieldViolations
from servicekit.grpc_types import ServicerContext
from services.gateway import validation
from services.gateway.downstream import Downstreams
from services.gateway.security import credentials, principal
from services.gateway.security.principal import VERB_PERMISSIONS

Context = ServicerContext
MAX_COLLECTIONS = 100
# Repeats are allowed (and dropped); a bound keeps every entry checked cheaply.
MAX_VERBS = 16
_KEY_NAME_PREFIX = "apiKeys/"


class ApiKeyHandler(api_key_pb2_grpc.ApiKeyServiceServicer):  # type: ignore[misc]
    def __init__(self, downstream: Downstreams, default_timeout_s: float) -> None:
        self._d = downstream
        self._timeout_s = default_timeout_s

    async def CreateApiKey(
        self, request: api_key_pb2.CreateApiKeyRequest, context: Context
    ) -> api_key_pb2.CreateApiKeyResponse:
        violations = FieldViolations()
        wanted = request.api_key
        if not request.HasField("api_key"):
            violations.add("api_key", "required")
        validation.check_text(
            wanted.display_name, "api_key.display_name", violations, max_chars=200, required=False
        )
        if not wanted.collections:
            violations.add("api_key.collections", "at least one collection")
        elif len(wanted.collections) > MAX_COLLECTIONS:
            violations.add("api_key.collections", f"at most {MAX_COLLECTIONS}")
        else:
            for i, name in enumerate(wanted.collections):
                validation.collection_id_of(name, f"api_key.collections[{i}]", violations)
        if not wanted.verbs:
            violations.add("api_key.verbs", "at least one verb")
        elif len(wanted.verbs) > MAX_VERBS:
            violations.add("api_key.verbs", f"at most {MAX_VERBS}")
        else:
            for i, verb in enumerate(wanted.verbs):
                if verb not in VERB_PERMISSIONS:
                    violations.add(
                        f"api_key.verbs[{i}]",
                        "API_KEY_VERB_READ, API_KEY_VERB_WRITE or API_KEY_VERB_MANAGE",
                    )
        if wanted.HasField("expire_time") and wanted.expire_time.seconds <= int(time.time()):
            violations.add("api_key.expire_time", "must be in the future")
        violations.raise_if_any()
        user_id = principal.current().user_id
        key_id, secret = credentials.new_api_key()
        record = api_key_pb2.ApiKey(
            name=f"{_KEY_NAME_PREFIX}{key_id}",
            display_name=wanted.display_name,
            collections=sorted(set(wanted.collections)),
            verbs=sorted(set(wanted.verbs)),
            owner=f"users/{user_id}",
        )
        if wanted.HasField("expire_time"):
            record.expire_time.CopyFrom(wanted.expire_time)
        created = await self._d.metadata.CreateApiKey(
            metadata_pb2.CreateApiKeyRequest(
                api_key=metadata_pb2.ApiKeyRecord(
                    api_key=record, secret_hash=credentials.sha256(secret)
                )
            ),
            timeout=remaining(context, self._timeout_s),
        )
        return api_key_pb2.CreateApiKeyResponse(api_key=created.api_key.api_key, secret=secret)

    async def ListApiKeys(
        self, request: api_key_pb2.ListApiKeysRequest, context: Context
    ) -> api_key_pb2.ListApiKeysResponse:
        violations = FieldViolations()
        validation.check_page(request.page_size, violations)
        violations.raise_if_any()
        response = await self._d.metadata.ListApiKeys(
            metadata_pb2.ListApiKeysRequest(
                user_id=principal.current().user_id,
                page_size=request.page_size,
                page_token=request.page_token,
            ),
            timeout=remaining(context, self._timeout_s),
        )
        return api_key_pb2.ListApiKeysResponse(
            api_keys=response.api_keys, next_page_token=response.next_page_token
        )

    async def DeleteApiKey(
        self, request: api_key_pb2.DeleteApiKeyRequest, context: Context
    ) -> empty_pb2.Empty:
        violations = FieldViolations()
        key_id = request.name.removeprefix(_KEY_NAME_PREFIX)
        if not request.name.startswith(_KEY_NAME_PREFIX) or not key_id.isalnum():
            violations.add("name", "required, as apiKeys/{api_key}")
        violations.raise_if_any()
        await self._d.metadata.DeleteApiKey(
            metadata_pb2.DeleteApiKeyRequest(
                user_id=principal.current().user_id, api_key_id=key_id
            ),
            timeout=remaining(context, self._timeout_s),
        )
        return empty_pb2.Empty()
