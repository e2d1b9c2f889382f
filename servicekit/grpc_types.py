"""Names for grpc's types in annotations.

grpcio ships no type information (grpc-stubs lags grpc.aio), so these are
aliases of Any that still say what a parameter is.
"""

from typing import Any, TypeAlias

ServicerContext: TypeAlias = Any
"""A `grpc.aio.ServicerContext` of a running RPC."""
