import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SearchMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEARCH_MODE_UNSPECIFIED: _ClassVar[SearchMode]
    SEARCH_MODE_DENSE: _ClassVar[SearchMode]
    SEARCH_MODE_SPARSE: _ClassVar[SearchMode]
    SEARCH_MODE_HYBRID: _ClassVar[SearchMode]

class Fusion(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FUSION_UNSPECIFIED: _ClassVar[Fusion]
    FUSION_RRF: _ClassVar[Fusion]
    FUSION_DBSF: _ClassVar[Fusion]

class QueryExpansion(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUERY_EXPANSION_UNSPECIFIED: _ClassVar[QueryExpansion]
    QUERY_EXPANSION_NONE: _ClassVar[QueryExpansion]
    QUERY_EXPANSION_RM3: _ClassVar[QueryExpansion]
SEARCH_MODE_UNSPECIFIED: SearchMode
SEARCH_MODE_DENSE: SearchMode
SEARCH_MODE_SPARSE: SearchMode
SEARCH_MODE_HYBRID: SearchMode
FUSION_UNSPECIFIED: Fusion
FUSION_RRF: Fusion
FUSION_DBSF: Fusion
QUERY_EXPANSION_UNSPECIFIED: QueryExpansion
QUERY_EXPANSION_NONE: QueryExpansion
QUERY_EXPANSION_RM3: QueryExpansion

class SearchFilter(_message.Message):
    __slots__ = ("path_prefix", "mime_types", "modified_after", "modified_before", "page_from", "page_to")
    PATH_PREFIX_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPES_FIELD_NUMBER: _ClassVar[int]
    MODIFIED_AFTER_FIELD_NUMBER: _ClassVar[int]
    MODIFIED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    PAGE_FROM_FIELD_NUMBER: _ClassVar[int]
    PAGE_TO_FIELD_NUMBER: _ClassVar[int]
    path_prefix: str
    mime_types: _containers.RepeatedScalarFieldContainer[str]
    modified_after: _timestamp_pb2.Timestamp
    modified_before: _timestamp_pb2.Timestamp
    page_from: int
    page_to: int
    def __init__(self, path_prefix: _Optional[str] = ..., mime_types: _Optional[_Iterable[str]] = ..., modified_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., modified_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_from: _Optional[int] = ..., page_to: _Optional[int] = ...) -> None: ...

class RerankOptions(_message.Message):
    __slots__ = ("enabled", "top_n")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    TOP_N_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    top_n: int
    def __init__(self, enabled: _Optional[bool] = ..., top_n: _Optional[int] = ...) -> None: ...

class SearchRequest(_message.Message):
    __slots__ = ("collection", "query", "top_k", "mode", "collections", "fusion", "filter", "score_threshold", "page_token", "rerank", "query_expansion")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    FUSION_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    SCORE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    RERANK_FIELD_NUMBER: _ClassVar[int]
    QUERY_EXPANSION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    query: str
    top_k: int
    mode: SearchMode
    collections: _containers.RepeatedScalarFieldContainer[str]
    fusion: Fusion
    filter: SearchFilter
    score_threshold: float
    page_token: str
    rerank: RerankOptions
    query_expansion: QueryExpansion
    def __init__(self, collection: _Optional[str] = ..., query: _Optional[str] = ..., top_k: _Optional[int] = ..., mode: _Optional[_Union[SearchMode, str]] = ..., collections: _Optional[_Iterable[str]] = ..., fusion: _Optional[_Union[Fusion, str]] = ..., filter: _Optional[_Union[SearchFilter, _Mapping]] = ..., score_threshold: _Optional[float] = ..., page_token: _Optional[str] = ..., rerank: _Optional[_Union[RerankOptions, _Mapping]] = ..., query_expansion: _Optional[_Union[QueryExpansion, str]] = ...) -> None: ...

class Highlight(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: int
    end: int
    def __init__(self, start: _Optional[int] = ..., end: _Optional[int] = ...) -> None: ...

class SearchResult(_message.Message):
    __slots__ = ("document", "source_path", "text", "start_offset", "end_offset", "chunk_index", "score", "collection", "snippet", "highlights", "page", "heading")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PATH_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    START_OFFSET_FIELD_NUMBER: _ClassVar[int]
    END_OFFSET_FIELD_NUMBER: _ClassVar[int]
    CHUNK_INDEX_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    SNIPPET_FIELD_NUMBER: _ClassVar[int]
    HIGHLIGHTS_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    HEADING_FIELD_NUMBER: _ClassVar[int]
    document: str
    source_path: str
    text: str
    start_offset: int
    end_offset: int
    chunk_index: int
    score: float
    collection: str
    snippet: str
    highlights: _containers.RepeatedCompositeFieldContainer[Highlight]
    page: int
    heading: str
    def __init__(self, document: _Optional[str] = ..., source_path: _Optional[str] = ..., text: _Optional[str] = ..., start_offset: _Optional[int] = ..., end_offset: _Optional[int] = ..., chunk_index: _Optional[int] = ..., score: _Optional[float] = ..., collection: _Optional[str] = ..., snippet: _Optional[str] = ..., highlights: _Optional[_Iterable[_Union[Highlight, _Mapping]]] = ..., page: _Optional[int] = ..., heading: _Optional[str] = ...) -> None: ...

class SearchTiming(_message.Message):
    __slots__ = ("embed_ms", "vector_query_ms", "rerank_ms", "hydrate_ms", "total_ms")
    EMBED_MS_FIELD_NUMBER: _ClassVar[int]
    VECTOR_QUERY_MS_FIELD_NUMBER: _ClassVar[int]
    RERANK_MS_FIELD_NUMBER: _ClassVar[int]
    HYDRATE_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    embed_ms: float
    vector_query_ms: float
    rerank_ms: float
    hydrate_ms: float
    total_ms: float
    def __init__(self, embed_ms: _Optional[float] = ..., vector_query_ms: _Optional[float] = ..., rerank_ms: _Optional[float] = ..., hydrate_ms: _Optional[float] = ..., total_ms: _Optional[float] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("results", "next_page_token", "timing")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TIMING_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SearchResult]
    next_page_token: str
    timing: SearchTiming
    def __init__(self, results: _Optional[_Iterable[_Union[SearchResult, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., timing: _Optional[_Union[SearchTiming, _Mapping]] = ...) -> None: ...
