from semantik.v1 import collection_pb2 as _collection_pb2
from semantik.v1 import search_pb2 as _search_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateVectorCollectionRequest(_message.Message):
    __slots__ = ("collection_id", "dimensions")
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    collection_id: str
    dimensions: int
    def __init__(self, collection_id: _Optional[str] = ..., dimensions: _Optional[int] = ...) -> None: ...

class CreateVectorCollectionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DeleteVectorCollectionRequest(_message.Message):
    __slots__ = ("collection_id",)
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    collection_id: str
    def __init__(self, collection_id: _Optional[str] = ...) -> None: ...

class DeleteVectorCollectionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StartImportRequest(_message.Message):
    __slots__ = ("operation_id", "collection_id", "source_path", "chunk_tokens", "overlap_tokens", "validate_only", "chunking_strategy", "include_globs", "exclude_globs", "max_file_bytes", "retry_paths", "source_root")
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PATH_FIELD_NUMBER: _ClassVar[int]
    CHUNK_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_TOKENS_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    CHUNKING_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_GLOBS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_GLOBS_FIELD_NUMBER: _ClassVar[int]
    MAX_FILE_BYTES_FIELD_NUMBER: _ClassVar[int]
    RETRY_PATHS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ROOT_FIELD_NUMBER: _ClassVar[int]
    operation_id: str
    collection_id: str
    source_path: str
    chunk_tokens: int
    overlap_tokens: int
    validate_only: bool
    chunking_strategy: _collection_pb2.ChunkingStrategy
    include_globs: _containers.RepeatedScalarFieldContainer[str]
    exclude_globs: _containers.RepeatedScalarFieldContainer[str]
    max_file_bytes: int
    retry_paths: _containers.RepeatedScalarFieldContainer[str]
    source_root: str
    def __init__(self, operation_id: _Optional[str] = ..., collection_id: _Optional[str] = ..., source_path: _Optional[str] = ..., chunk_tokens: _Optional[int] = ..., overlap_tokens: _Optional[int] = ..., validate_only: _Optional[bool] = ..., chunking_strategy: _Optional[_Union[_collection_pb2.ChunkingStrategy, str]] = ..., include_globs: _Optional[_Iterable[str]] = ..., exclude_globs: _Optional[_Iterable[str]] = ..., max_file_bytes: _Optional[int] = ..., retry_paths: _Optional[_Iterable[str]] = ..., source_root: _Optional[str] = ...) -> None: ...

class ResolveSourcePathRequest(_message.Message):
    __slots__ = ("root", "path")
    ROOT_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    root: str
    path: str
    def __init__(self, root: _Optional[str] = ..., path: _Optional[str] = ...) -> None: ...

class ResolveSourcePathResponse(_message.Message):
    __slots__ = ("root", "path")
    ROOT_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    root: str
    path: str
    def __init__(self, root: _Optional[str] = ..., path: _Optional[str] = ...) -> None: ...

class StartImportResponse(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class QueryVectorsRequest(_message.Message):
    __slots__ = ("collection_id", "vector", "limit", "query_text", "mode", "fusion", "prefetch_limit", "filter", "offset", "score_threshold", "query_expansion")
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    QUERY_TEXT_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    FUSION_FIELD_NUMBER: _ClassVar[int]
    PREFETCH_LIMIT_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    SCORE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    QUERY_EXPANSION_FIELD_NUMBER: _ClassVar[int]
    collection_id: str
    vector: _containers.RepeatedScalarFieldContainer[float]
    limit: int
    query_text: str
    mode: _search_pb2.SearchMode
    fusion: _search_pb2.Fusion
    prefetch_limit: int
    filter: _search_pb2.SearchFilter
    offset: int
    score_threshold: float
    query_expansion: _search_pb2.QueryExpansion
    def __init__(self, collection_id: _Optional[str] = ..., vector: _Optional[_Iterable[float]] = ..., limit: _Optional[int] = ..., query_text: _Optional[str] = ..., mode: _Optional[_Union[_search_pb2.SearchMode, str]] = ..., fusion: _Optional[_Union[_search_pb2.Fusion, str]] = ..., prefetch_limit: _Optional[int] = ..., filter: _Optional[_Union[_search_pb2.SearchFilter, _Mapping]] = ..., offset: _Optional[int] = ..., score_threshold: _Optional[float] = ..., query_expansion: _Optional[_Union[_search_pb2.QueryExpansion, str]] = ...) -> None: ...

class VectorHit(_message.Message):
    __slots__ = ("chunk_id", "score")
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    chunk_id: str
    score: float
    def __init__(self, chunk_id: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class QueryVectorsResponse(_message.Message):
    __slots__ = ("hits",)
    HITS_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[VectorHit]
    def __init__(self, hits: _Optional[_Iterable[_Union[VectorHit, _Mapping]]] = ...) -> None: ...

class WriteUploadRequest(_message.Message):
    __slots__ = ("collection_id", "file_name", "data", "last", "sha256", "max_file_bytes")
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    MAX_FILE_BYTES_FIELD_NUMBER: _ClassVar[int]
    collection_id: str
    file_name: str
    data: bytes
    last: bool
    sha256: str
    max_file_bytes: int
    def __init__(self, collection_id: _Optional[str] = ..., file_name: _Optional[str] = ..., data: _Optional[bytes] = ..., last: _Optional[bool] = ..., sha256: _Optional[str] = ..., max_file_bytes: _Optional[int] = ...) -> None: ...

class WriteUploadResponse(_message.Message):
    __slots__ = ("folder", "file_names", "bytes_written")
    FOLDER_FIELD_NUMBER: _ClassVar[int]
    FILE_NAMES_FIELD_NUMBER: _ClassVar[int]
    BYTES_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    folder: str
    file_names: _containers.RepeatedScalarFieldContainer[str]
    bytes_written: int
    def __init__(self, folder: _Optional[str] = ..., file_names: _Optional[_Iterable[str]] = ..., bytes_written: _Optional[int] = ...) -> None: ...
