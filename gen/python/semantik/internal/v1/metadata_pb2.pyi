import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from semantik.v1 import api_key_pb2 as _api_key_pb2
from semantik.v1 import collection_pb2 as _collection_pb2
from semantik.v1 import document_pb2 as _document_pb2
from semantik.v1 import grant_pb2 as _grant_pb2
from semantik.v1 import operation_pb2 as _operation_pb2
from semantik.v1 import source_pb2 as _source_pb2
from semantik.v1 import user_pb2 as _user_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RotateResult(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROTATE_RESULT_UNSPECIFIED: _ClassVar[RotateResult]
    ROTATE_RESULT_ROTATED: _ClassVar[RotateResult]
    ROTATE_RESULT_REUSED: _ClassVar[RotateResult]
    ROTATE_RESULT_EXPIRED: _ClassVar[RotateResult]
    ROTATE_RESULT_INVALID: _ClassVar[RotateResult]
ROTATE_RESULT_UNSPECIFIED: RotateResult
ROTATE_RESULT_ROTATED: RotateResult
ROTATE_RESULT_REUSED: RotateResult
ROTATE_RESULT_EXPIRED: RotateResult
ROTATE_RESULT_INVALID: RotateResult

class CreateCollectionRequest(_message.Message):
    __slots__ = ("collection", "owner_user_id")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    OWNER_USER_ID_FIELD_NUMBER: _ClassVar[int]
    collection: _collection_pb2.Collection
    owner_user_id: str
    def __init__(self, collection: _Optional[_Union[_collection_pb2.Collection, _Mapping]] = ..., owner_user_id: _Optional[str] = ...) -> None: ...

class CreateCollectionResponse(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: _collection_pb2.Collection
    def __init__(self, collection: _Optional[_Union[_collection_pb2.Collection, _Mapping]] = ...) -> None: ...

class GetCollectionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetCollectionResponse(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: _collection_pb2.Collection
    def __init__(self, collection: _Optional[_Union[_collection_pb2.Collection, _Mapping]] = ...) -> None: ...

class ListCollectionsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "restrict_collections", "collection_ids")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    RESTRICT_COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_IDS_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    restrict_collections: bool
    collection_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., restrict_collections: _Optional[bool] = ..., collection_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ListCollectionsResponse(_message.Message):
    __slots__ = ("collections", "next_page_token")
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    collections: _containers.RepeatedCompositeFieldContainer[_collection_pb2.Collection]
    next_page_token: str
    def __init__(self, collections: _Optional[_Iterable[_Union[_collection_pb2.Collection, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteCollectionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteCollectionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateOperationRequest(_message.Message):
    __slots__ = ("operation",)
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    operation: _operation_pb2.Operation
    def __init__(self, operation: _Optional[_Union[_operation_pb2.Operation, _Mapping]] = ...) -> None: ...

class CreateOperationResponse(_message.Message):
    __slots__ = ("operation",)
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    operation: _operation_pb2.Operation
    def __init__(self, operation: _Optional[_Union[_operation_pb2.Operation, _Mapping]] = ...) -> None: ...

class GetOperationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetOperationResponse(_message.Message):
    __slots__ = ("operation",)
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    operation: _operation_pb2.Operation
    def __init__(self, operation: _Optional[_Union[_operation_pb2.Operation, _Mapping]] = ...) -> None: ...

class ListOperationsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "restrict_collections", "collection_ids")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    RESTRICT_COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_IDS_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    restrict_collections: bool
    collection_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., restrict_collections: _Optional[bool] = ..., collection_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ListOperationsResponse(_message.Message):
    __slots__ = ("operations", "next_page_token")
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    operations: _containers.RepeatedCompositeFieldContainer[_operation_pb2.Operation]
    next_page_token: str
    def __init__(self, operations: _Optional[_Iterable[_Union[_operation_pb2.Operation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateOperationRequest(_message.Message):
    __slots__ = ("name", "state", "progress", "document_errors", "error_message", "dead_letters")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ERRORS_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: _operation_pb2.OperationState
    progress: _operation_pb2.OperationProgress
    document_errors: _containers.RepeatedCompositeFieldContainer[_operation_pb2.DocumentError]
    error_message: str
    dead_letters: _containers.RepeatedCompositeFieldContainer[_operation_pb2.DocumentError]
    def __init__(self, name: _Optional[str] = ..., state: _Optional[_Union[_operation_pb2.OperationState, str]] = ..., progress: _Optional[_Union[_operation_pb2.OperationProgress, _Mapping]] = ..., document_errors: _Optional[_Iterable[_Union[_operation_pb2.DocumentError, _Mapping]]] = ..., error_message: _Optional[str] = ..., dead_letters: _Optional[_Iterable[_Union[_operation_pb2.DocumentError, _Mapping]]] = ...) -> None: ...

class UpdateOperationResponse(_message.Message):
    __slots__ = ("operation",)
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    operation: _operation_pb2.Operation
    def __init__(self, operation: _Optional[_Union[_operation_pb2.Operation, _Mapping]] = ...) -> None: ...

class CancelOperationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CancelOperationResponse(_message.Message):
    __slots__ = ("operation",)
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    operation: _operation_pb2.Operation
    def __init__(self, operation: _Optional[_Union[_operation_pb2.Operation, _Mapping]] = ...) -> None: ...

class ChunkRecord(_message.Message):
    __slots__ = ("chunk_id", "chunk_index", "text", "start_offset", "end_offset", "token_count", "page", "heading")
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNK_INDEX_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    START_OFFSET_FIELD_NUMBER: _ClassVar[int]
    END_OFFSET_FIELD_NUMBER: _ClassVar[int]
    TOKEN_COUNT_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    HEADING_FIELD_NUMBER: _ClassVar[int]
    chunk_id: str
    chunk_index: int
    text: str
    start_offset: int
    end_offset: int
    token_count: int
    page: int
    heading: str
    def __init__(self, chunk_id: _Optional[str] = ..., chunk_index: _Optional[int] = ..., text: _Optional[str] = ..., start_offset: _Optional[int] = ..., end_offset: _Optional[int] = ..., token_count: _Optional[int] = ..., page: _Optional[int] = ..., heading: _Optional[str] = ...) -> None: ...

class UpsertDocumentRequest(_message.Message):
    __slots__ = ("collection_id", "document", "chunks")
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    collection_id: str
    document: _document_pb2.Document
    chunks: _containers.RepeatedCompositeFieldContainer[ChunkRecord]
    def __init__(self, collection_id: _Optional[str] = ..., document: _Optional[_Union[_document_pb2.Document, _Mapping]] = ..., chunks: _Optional[_Iterable[_Union[ChunkRecord, _Mapping]]] = ...) -> None: ...

class UpsertDocumentResponse(_message.Message):
    __slots__ = ("document", "replaced_chunk_ids")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    REPLACED_CHUNK_IDS_FIELD_NUMBER: _ClassVar[int]
    document: _document_pb2.Document
    replaced_chunk_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, document: _Optional[_Union[_document_pb2.Document, _Mapping]] = ..., replaced_chunk_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetDocumentRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetDocumentResponse(_message.Message):
    __slots__ = ("document",)
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    document: _document_pb2.Document
    def __init__(self, document: _Optional[_Union[_document_pb2.Document, _Mapping]] = ...) -> None: ...

class ListDocumentsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "path_prefix", "mime_type", "modified_after", "modified_before")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PATH_PREFIX_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    MODIFIED_AFTER_FIELD_NUMBER: _ClassVar[int]
    MODIFIED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    path_prefix: str
    mime_type: str
    modified_after: _timestamp_pb2.Timestamp
    modified_before: _timestamp_pb2.Timestamp
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., path_prefix: _Optional[str] = ..., mime_type: _Optional[str] = ..., modified_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., modified_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListDocumentsResponse(_message.Message):
    __slots__ = ("documents", "next_page_token")
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    documents: _containers.RepeatedCompositeFieldContainer[_document_pb2.Document]
    next_page_token: str
    def __init__(self, documents: _Optional[_Iterable[_Union[_document_pb2.Document, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class HydrateChunksRequest(_message.Message):
    __slots__ = ("collection_id", "chunk_ids")
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNK_IDS_FIELD_NUMBER: _ClassVar[int]
    collection_id: str
    chunk_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, collection_id: _Optional[str] = ..., chunk_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class HydratedChunk(_message.Message):
    __slots__ = ("chunk", "document", "source_path")
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PATH_FIELD_NUMBER: _ClassVar[int]
    chunk: ChunkRecord
    document: str
    source_path: str
    def __init__(self, chunk: _Optional[_Union[ChunkRecord, _Mapping]] = ..., document: _Optional[str] = ..., source_path: _Optional[str] = ...) -> None: ...

class HydrateChunksResponse(_message.Message):
    __slots__ = ("chunks",)
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    chunks: _containers.RepeatedCompositeFieldContainer[HydratedChunk]
    def __init__(self, chunks: _Optional[_Iterable[_Union[HydratedChunk, _Mapping]]] = ...) -> None: ...

class DeleteDocumentsRequest(_message.Message):
    __slots__ = ("collection_id", "source_paths")
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PATHS_FIELD_NUMBER: _ClassVar[int]
    collection_id: str
    source_paths: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, collection_id: _Optional[str] = ..., source_paths: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteDocumentsResponse(_message.Message):
    __slots__ = ("chunk_ids", "deleted_count")
    CHUNK_IDS_FIELD_NUMBER: _ClassVar[int]
    DELETED_COUNT_FIELD_NUMBER: _ClassVar[int]
    chunk_ids: _containers.RepeatedScalarFieldContainer[str]
    deleted_count: int
    def __init__(self, chunk_ids: _Optional[_Iterable[str]] = ..., deleted_count: _Optional[int] = ...) -> None: ...

class UpdateDocumentFileRequest(_message.Message):
    __slots__ = ("collection_id", "source_path", "new_source_path", "modify_time")
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PATH_FIELD_NUMBER: _ClassVar[int]
    NEW_SOURCE_PATH_FIELD_NUMBER: _ClassVar[int]
    MODIFY_TIME_FIELD_NUMBER: _ClassVar[int]
    collection_id: str
    source_path: str
    new_source_path: str
    modify_time: _timestamp_pb2.Timestamp
    def __init__(self, collection_id: _Optional[str] = ..., source_path: _Optional[str] = ..., new_source_path: _Optional[str] = ..., modify_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class UpdateDocumentFileResponse(_message.Message):
    __slots__ = ("document",)
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    document: _document_pb2.Document
    def __init__(self, document: _Optional[_Union[_document_pb2.Document, _Mapping]] = ...) -> None: ...

class UserRecord(_message.Message):
    __slots__ = ("user", "password_hash", "token_version")
    USER_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_HASH_FIELD_NUMBER: _ClassVar[int]
    TOKEN_VERSION_FIELD_NUMBER: _ClassVar[int]
    user: _user_pb2.User
    password_hash: str
    token_version: int
    def __init__(self, user: _Optional[_Union[_user_pb2.User, _Mapping]] = ..., password_hash: _Optional[str] = ..., token_version: _Optional[int] = ...) -> None: ...

class CreateUserRequest(_message.Message):
    __slots__ = ("user", "only_if_no_users")
    USER_FIELD_NUMBER: _ClassVar[int]
    ONLY_IF_NO_USERS_FIELD_NUMBER: _ClassVar[int]
    user: UserRecord
    only_if_no_users: bool
    def __init__(self, user: _Optional[_Union[UserRecord, _Mapping]] = ..., only_if_no_users: _Optional[bool] = ...) -> None: ...

class CreateUserResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: UserRecord
    def __init__(self, user: _Optional[_Union[UserRecord, _Mapping]] = ...) -> None: ...

class GetUserRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class GetUserResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: UserRecord
    def __init__(self, user: _Optional[_Union[UserRecord, _Mapping]] = ...) -> None: ...

class ListUsersRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListUsersResponse(_message.Message):
    __slots__ = ("users", "next_page_token")
    USERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedCompositeFieldContainer[_user_pb2.User]
    next_page_token: str
    def __init__(self, users: _Optional[_Iterable[_Union[_user_pb2.User, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteUserRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class DeleteUserResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetPasswordRequest(_message.Message):
    __slots__ = ("user_id", "password_hash")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_HASH_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    password_hash: str
    def __init__(self, user_id: _Optional[str] = ..., password_hash: _Optional[str] = ...) -> None: ...

class SetPasswordResponse(_message.Message):
    __slots__ = ("token_version",)
    TOKEN_VERSION_FIELD_NUMBER: _ClassVar[int]
    token_version: int
    def __init__(self, token_version: _Optional[int] = ...) -> None: ...

class CreateRefreshTokenRequest(_message.Message):
    __slots__ = ("token_hash", "family_id", "user_id", "expire_time")
    TOKEN_HASH_FIELD_NUMBER: _ClassVar[int]
    FAMILY_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    token_hash: bytes
    family_id: str
    user_id: str
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, token_hash: _Optional[bytes] = ..., family_id: _Optional[str] = ..., user_id: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateRefreshTokenResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RotateRefreshTokenRequest(_message.Message):
    __slots__ = ("token_hash", "new_token_hash", "new_expire_time")
    TOKEN_HASH_FIELD_NUMBER: _ClassVar[int]
    NEW_TOKEN_HASH_FIELD_NUMBER: _ClassVar[int]
    NEW_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    token_hash: bytes
    new_token_hash: bytes
    new_expire_time: _timestamp_pb2.Timestamp
    def __init__(self, token_hash: _Optional[bytes] = ..., new_token_hash: _Optional[bytes] = ..., new_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RotateRefreshTokenResponse(_message.Message):
    __slots__ = ("result", "user_id", "family_id")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    FAMILY_ID_FIELD_NUMBER: _ClassVar[int]
    result: RotateResult
    user_id: str
    family_id: str
    def __init__(self, result: _Optional[_Union[RotateResult, str]] = ..., user_id: _Optional[str] = ..., family_id: _Optional[str] = ...) -> None: ...

class RevokeRefreshTokenRequest(_message.Message):
    __slots__ = ("token_hash",)
    TOKEN_HASH_FIELD_NUMBER: _ClassVar[int]
    token_hash: bytes
    def __init__(self, token_hash: _Optional[bytes] = ...) -> None: ...

class RevokeRefreshTokenResponse(_message.Message):
    __slots__ = ("found", "user_id")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    found: bool
    user_id: str
    def __init__(self, found: _Optional[bool] = ..., user_id: _Optional[str] = ...) -> None: ...

class SetGrantRequest(_message.Message):
    __slots__ = ("collection_id", "user_id", "role")
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    collection_id: str
    user_id: str
    role: _grant_pb2.CollectionRole
    def __init__(self, collection_id: _Optional[str] = ..., user_id: _Optional[str] = ..., role: _Optional[_Union[_grant_pb2.CollectionRole, str]] = ...) -> None: ...

class SetGrantResponse(_message.Message):
    __slots__ = ("grant",)
    GRANT_FIELD_NUMBER: _ClassVar[int]
    grant: _grant_pb2.Grant
    def __init__(self, grant: _Optional[_Union[_grant_pb2.Grant, _Mapping]] = ...) -> None: ...

class ListGrantsRequest(_message.Message):
    __slots__ = ("collection_id", "page_size", "page_token")
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    collection_id: str
    page_size: int
    page_token: str
    def __init__(self, collection_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListGrantsResponse(_message.Message):
    __slots__ = ("grants", "next_page_token")
    GRANTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    grants: _containers.RepeatedCompositeFieldContainer[_grant_pb2.Grant]
    next_page_token: str
    def __init__(self, grants: _Optional[_Iterable[_Union[_grant_pb2.Grant, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteGrantRequest(_message.Message):
    __slots__ = ("collection_id", "user_id")
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    collection_id: str
    user_id: str
    def __init__(self, collection_id: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...

class DeleteGrantResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ApiKeyRecord(_message.Message):
    __slots__ = ("api_key", "secret_hash")
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_HASH_FIELD_NUMBER: _ClassVar[int]
    api_key: _api_key_pb2.ApiKey
    secret_hash: bytes
    def __init__(self, api_key: _Optional[_Union[_api_key_pb2.ApiKey, _Mapping]] = ..., secret_hash: _Optional[bytes] = ...) -> None: ...

class CreateApiKeyRequest(_message.Message):
    __slots__ = ("api_key",)
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    api_key: ApiKeyRecord
    def __init__(self, api_key: _Optional[_Union[ApiKeyRecord, _Mapping]] = ...) -> None: ...

class CreateApiKeyResponse(_message.Message):
    __slots__ = ("api_key",)
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    api_key: ApiKeyRecord
    def __init__(self, api_key: _Optional[_Union[ApiKeyRecord, _Mapping]] = ...) -> None: ...

class ListApiKeysRequest(_message.Message):
    __slots__ = ("user_id", "page_size", "page_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    page_size: int
    page_token: str
    def __init__(self, user_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListApiKeysResponse(_message.Message):
    __slots__ = ("api_keys", "next_page_token")
    API_KEYS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    api_keys: _containers.RepeatedCompositeFieldContainer[_api_key_pb2.ApiKey]
    next_page_token: str
    def __init__(self, api_keys: _Optional[_Iterable[_Union[_api_key_pb2.ApiKey, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteApiKeyRequest(_message.Message):
    __slots__ = ("user_id", "api_key_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    API_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    api_key_id: str
    def __init__(self, user_id: _Optional[str] = ..., api_key_id: _Optional[str] = ...) -> None: ...

class DeleteApiKeyResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ResolvePrincipalRequest(_message.Message):
    __slots__ = ("user_id", "api_key_id", "session_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    API_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    api_key_id: str
    session_id: str
    def __init__(self, user_id: _Optional[str] = ..., api_key_id: _Optional[str] = ..., session_id: _Optional[str] = ...) -> None: ...

class ResolvePrincipalResponse(_message.Message):
    __slots__ = ("user", "grants", "api_key", "session_revoked")
    class GrantsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _grant_pb2.CollectionRole
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_grant_pb2.CollectionRole, str]] = ...) -> None: ...
    USER_FIELD_NUMBER: _ClassVar[int]
    GRANTS_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    SESSION_REVOKED_FIELD_NUMBER: _ClassVar[int]
    user: UserRecord
    grants: _containers.ScalarMap[str, _grant_pb2.CollectionRole]
    api_key: ApiKeyRecord
    session_revoked: bool
    def __init__(self, user: _Optional[_Union[UserRecord, _Mapping]] = ..., grants: _Optional[_Mapping[str, _grant_pb2.CollectionRole]] = ..., api_key: _Optional[_Union[ApiKeyRecord, _Mapping]] = ..., session_revoked: _Optional[bool] = ...) -> None: ...

class CreateSourceRequest(_message.Message):
    __slots__ = ("source",)
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    source: _source_pb2.Source
    def __init__(self, source: _Optional[_Union[_source_pb2.Source, _Mapping]] = ...) -> None: ...

class CreateSourceResponse(_message.Message):
    __slots__ = ("source",)
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    source: _source_pb2.Source
    def __init__(self, source: _Optional[_Union[_source_pb2.Source, _Mapping]] = ...) -> None: ...

class GetSourceRequest(_message.Message):
    __slots__ = ("name", "user_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    user_id: str
    def __init__(self, name: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...

class GetSourceResponse(_message.Message):
    __slots__ = ("source",)
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    source: _source_pb2.Source
    def __init__(self, source: _Optional[_Union[_source_pb2.Source, _Mapping]] = ...) -> None: ...

class FindSourceForPathRequest(_message.Message):
    __slots__ = ("path", "user_id")
    PATH_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    path: str
    user_id: str
    def __init__(self, path: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...

class FindSourceForPathResponse(_message.Message):
    __slots__ = ("source",)
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    source: _source_pb2.Source
    def __init__(self, source: _Optional[_Union[_source_pb2.Source, _Mapping]] = ...) -> None: ...

class ListSourcesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "restrict_user_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    RESTRICT_USER_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    restrict_user_id: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., restrict_user_id: _Optional[str] = ...) -> None: ...

class ListSourcesResponse(_message.Message):
    __slots__ = ("sources", "next_page_token")
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sources: _containers.RepeatedCompositeFieldContainer[_source_pb2.Source]
    next_page_token: str
    def __init__(self, sources: _Optional[_Iterable[_Union[_source_pb2.Source, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteSourceRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteSourceResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetSourceGrantRequest(_message.Message):
    __slots__ = ("source_id", "user_id", "role")
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    source_id: str
    user_id: str
    role: _source_pb2.SourceRole
    def __init__(self, source_id: _Optional[str] = ..., user_id: _Optional[str] = ..., role: _Optional[_Union[_source_pb2.SourceRole, str]] = ...) -> None: ...

class SetSourceGrantResponse(_message.Message):
    __slots__ = ("grant",)
    GRANT_FIELD_NUMBER: _ClassVar[int]
    grant: _source_pb2.SourceGrant
    def __init__(self, grant: _Optional[_Union[_source_pb2.SourceGrant, _Mapping]] = ...) -> None: ...

class ListSourceGrantsRequest(_message.Message):
    __slots__ = ("source_id", "page_size", "page_token")
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    source_id: str
    page_size: int
    page_token: str
    def __init__(self, source_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSourceGrantsResponse(_message.Message):
    __slots__ = ("grants", "next_page_token")
    GRANTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    grants: _containers.RepeatedCompositeFieldContainer[_source_pb2.SourceGrant]
    next_page_token: str
    def __init__(self, grants: _Optional[_Iterable[_Union[_source_pb2.SourceGrant, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteSourceGrantRequest(_message.Message):
    __slots__ = ("source_id", "user_id")
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    source_id: str
    user_id: str
    def __init__(self, source_id: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...

class DeleteSourceGrantResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
