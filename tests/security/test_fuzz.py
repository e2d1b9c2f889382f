"""A property-based fuzzer of the public API: malformed requests never break the mesh.

At least 10,000 requests over gRPC to every method of every `semantik.v1` service
(random bytes, valid messages with hostile values, missing / garbage / expired
credentials) and at least 10,000 over Envoy's JSON routes (hostile paths, bodies,
content types, query strings and credentials). No gRPC answer may be INTERNAL or
UNKNOWN (nor UNAVAILABLE, DEADLINE_EXCEEDED or DATA_LOSS, which mean a hang or a
dead service), no HTTP answer may be 5xx or missing, no rate limit may trip
(RESOURCE_EXHAUSTED / 429: the test mesh's limits are high), and afterwards every
process still runs and ordinary calls still work.

Hypothesis draws the requests (derandomized: the same ones on every run, so a
failure in CI reproduces); a pool of threads sends them while it draws. Every bad
answer is collected, with a reproducer, and reported at the end rather than shrunk.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from semantik.v1 import collection_pb2
from semantik_runner.mesh import Mesh
from tests.e2e.conftest import Api, JsonApi
from tests.security.conftest import REPORT
from tests.security.fuzz_inputs import (
    HttpRequest,
    Method,
    bad_credentials,
    hostile_messages,
    http_requests,
    public_methods,
    random_payloads,
)

TARGET = 10_000
# Headroom: Hypothesis may skip a draw it has already made.
MAX_EXAMPLES = 10_400
WORKERS = 8
CALL_TIMEOUT_S = 30.0
METHODS = public_methods()

BAD_GRPC = {"INTERNAL", "UNKNOWN", "UNAVAILABLE", "DEADLINE_EXCEEDED", "DATA_LOSS"}
RATE_LIMITED_GRPC = "RESOURCE_EXHAUSTED"


def _fuzz_settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


@dataclass
class Outcomes:
    """Answers counted by label; the first request of each bad label kept as reproducer."""

    sent: int = 0
    labels: Counter[str] = field(default_factory=Counter)
    findings: dict[str, tuple[int, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, label: str, bad: bool, reproducer: Callable[[], str]) -> None:
        with self.lock:
            self.sent += 1
            self.labels[label] += 1
            if bad:
                count, example = self.findings.get(label, (0, ""))
                self.findings[label] = (count + 1, example or reproducer())

    def summary(self) -> str:
        lines = [f"{self.sent} sent; answers: {dict(self.labels.most_common())}"]
        for label, (count, example) in sorted(self.findings.items()):
            lines.append(f"FINDING {label} x{count}: {example}")
        return "\n".join(lines)


def _drive(strategy: st.SearchStrategy[Any], send: Callable[[Any], None], examples: int) -> None:
    """Draws `examples` values with Hypothesis and sends them from a pool while drawing."""
    slots = threading.BoundedSemaphore(WORKERS * 4)
    errors: list[BaseException] = []

    def done(future: Future[None]) -> None:
        slots.release()
        if future.exception() is not None:
            errors.append(future.exception())  # type: ignore[arg-type]

    with ThreadPoolExecutor(WORKERS, thread_name_prefix="fuzz") as pool:

        @_fuzz_settings(examples)
        @given(strategy)
        def fuzz(value: Any) -> None:
            slots.acquire()
            pool.submit(send, value).add_done_callback(done)

        fuzz()
    if errors:
        raise errors[0]


# --- gRPC ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class GrpcRequest:
    method: Method
    payload: bytes
    metadata: tuple[tuple[str, str], ...]
    authenticated: bool
    shape: str

    def reproducer(self) -> str:
        channel = "api.channel" if self.authenticated else "grpc.insecure_channel(gateway)"
        payload = self.payload.hex()
        if len(payload) > 600:
            payload = payload[:600] + f"...({len(self.payload)} bytes)"
        return (
            f"{channel}.unary_unary({self.method.path!r})(bytes.fromhex({payload!r}), "
            f"metadata={[(k, v[:100]) for k, v in self.metadata]!r})  # {self.shape}"
        )


@st.composite
def grpc_requests(draw: st.DrawFn) -> GrpcRequest:
    method: Method = draw(st.sampled_from(METHODS))
    shape = draw(st.sampled_from(["random bytes", "hostile message", "hostile message"]))
    hostile = hostile_messages(method.input, safe=method.mutating, deleting=method.deleting)
    if shape == "random bytes":
        payload = draw(random_payloads())
        if method.mutating:
            # Later fields win: whatever the bytes said, every string ends up never valid.
            payload += method.serialize(draw(hostile))
    else:
        payload = method.serialize(draw(hostile))
    authenticated = draw(st.integers(0, 4)) >= 2
    metadata = () if authenticated else tuple(draw(bad_credentials()))
    return GrpcRequest(method, payload, metadata, authenticated, shape)


def _call(channel: grpc.Channel, request: GrpcRequest) -> tuple[str, str]:
    """(status code name, its message)."""
    method, options = request.method, {"timeout": CALL_TIMEOUT_S, "metadata": request.metadata}
    try:
        if method.client_streaming and method.server_streaming:
            list(channel.stream_stream(method.path)(iter([request.payload]), **options))
        elif method.client_streaming:
            channel.stream_unary(method.path)(iter([request.payload]), **options)
        elif method.server_streaming:
            list(channel.unary_stream(method.path)(request.payload, **options))
        else:
            channel.unary_unary(method.path)(request.payload, **options)
    except grpc.RpcError as error:
        return str(error.code().name), str(error.details() or "")[:200]
    return "OK", ""


@pytest.fixture(scope="module")
def anonymous_channel(mesh: Mesh) -> Iterator[grpc.Channel]:
    """Straight to the gateway with no credentials of the test client's own."""
    channel = grpc.insecure_channel(mesh.grpc_target)
    yield channel
    channel.close()


def _still_healthy(mesh: Mesh, api: Api) -> None:
    assert mesh.failed_child() is None
    page = api.collections.ListCollections(
        collection_pb2.ListCollectionsRequest(page_size=1), timeout=30
    )
    assert page is not None


def _finish(outcomes: Outcomes, name: str, started: float, findings_dir: Path) -> None:
    took = time.monotonic() - started
    REPORT[name] += outcomes.sent
    findings_dir.mkdir(parents=True, exist_ok=True)
    (findings_dir / f"{name}.txt").write_text(outcomes.summary() + "\n", encoding="utf-8")
    print(f"{name}: {took:.0f}s\n{outcomes.summary()}")


@pytest.mark.timeout(900)
def test_grpc_fuzz(
    mesh: Mesh, api: Api, anonymous_channel: grpc.Channel, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert METHODS, "no semantik.v1 service found in gen/python"
    outcomes = Outcomes()

    def send(request: GrpcRequest) -> None:
        channel = api.channel if request.authenticated else anonymous_channel
        code, message = _call(channel, request)
        label = f"{code} {request.method.path}"
        bad = code in BAD_GRPC or code == RATE_LIMITED_GRPC
        outcomes.record(label, bad, lambda: f"answer {message!r}; {request.reproducer()}")

    started = time.monotonic()
    _drive(grpc_requests(), send, MAX_EXAMPLES)
    _finish(outcomes, "fuzz_grpc", started, tmp_path_factory.mktemp("fuzz"))
    assert outcomes.sent >= TARGET, outcomes.summary()
    assert not outcomes.findings, outcomes.summary()
    # Every public method was fuzzed.
    fuzzed = {label.split(" ", 1)[1] for label in outcomes.labels}
    assert fuzzed == {m.path for m in METHODS}
    _still_healthy(mesh, api)


# --- JSON over Envoy --------------------------------------------------------------------------


def json_auth_headers(json_api: JsonApi) -> dict[str, str]:
    """The headers the e2e JSON client authenticates with (its own, less Content-Type)."""
    return {k: v for k, v in json_api.headers.items() if k.lower() != "content-type"}


class HttpSender:
    """One keep-alive connection per thread to Envoy, reopened when Envoy closes it."""

    def __init__(self, host: str, port: int, auth: dict[str, str]) -> None:
        self._host, self._port, self._auth = host, port, auth
        self._local = threading.local()

    def _connection(self, fresh: bool = False) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None or fresh:
            if connection is not None:
                connection.close()
            connection = http.client.HTTPConnection(self._host, self._port, timeout=CALL_TIMEOUT_S)
            self._local.connection = connection
        return connection

    def send(self, request: HttpRequest) -> str:
        """The HTTP status, or `error:<exception>` when no answer came."""
        last: BaseException | None = None
        for attempt in range(2):
            connection = self._connection(fresh=attempt > 0)
            try:
                connection.putrequest(request.method, request.path, skip_accept_encoding=True)
                headers = list(request.headers)
                if request.authenticated:
                    headers += list(self._auth.items())
                for key, value in headers:
                    connection.putheader(key, value)
                if request.body is not None:
                    connection.putheader("Content-Length", str(len(request.body)))
                connection.endheaders(request.body)
                response = connection.getresponse()
                response.read()
                if response.will_close:
                    connection.close()
                    self._local.connection = None
                return str(response.status)
            except (http.client.HTTPException, OSError) as exc:
                last = exc
                self._local.connection = None
                connection.close()
        return f"error:{type(last).__name__}"


@pytest.mark.timeout(900)
def test_json_fuzz(
    mesh: Mesh, api: Api, json_api: JsonApi, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outcomes = Outcomes()
    host, port = json_api.base_url.removeprefix("http://").rsplit(":", 1)
    sender = HttpSender(host, int(port), json_auth_headers(json_api))

    def send(request: HttpRequest) -> None:
        answer = sender.send(request)
        oversized = request.body is not None and len(request.body) > 4 * 1024 * 1024
        if answer.startswith("error:") and oversized:
            # Envoy answers 413 and closes before the client has finished sending.
            answer = "closed:oversized-body"
        status = int(answer) if answer.isdigit() else 0
        bad = answer.startswith("error:") or status == 429 or status >= 500
        outcomes.record(f"{answer} {request.method} {request.route}", bad, request.describe)

    started = time.monotonic()
    _drive(http_requests(METHODS), send, MAX_EXAMPLES)
    _finish(outcomes, "fuzz_json", started, tmp_path_factory.mktemp("fuzz"))
    assert outcomes.sent >= TARGET, outcomes.summary()
    assert not outcomes.findings, outcomes.summary()
    _still_healthy(mesh, api)
    ok = HttpSender(host, int(port), json_auth_headers(json_api)).send(
        HttpRequest("GET", "/v1/collections?pageSize=1", (), None, True, "check")
    )
    assert ok == "200"


def test_descriptors_cover_the_public_api() -> None:
    """The fuzzer finds every public service, and their JSON routes, by itself."""
    services = {m.service for m in METHODS}
    assert {
        "semantik.v1.CollectionService",
        "semantik.v1.DocumentService",
        "semantik.v1.OperationService",
        "semantik.v1.SearchService",
        "semantik.v1.SourceService",
    } <= services
    assert all(m.routes for m in METHODS), [m.path for m in METHODS if not m.routes]
