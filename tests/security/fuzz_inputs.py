"""What the fuzzer sends: the public API read from its descriptors, and hostile values.

Every service of package `semantik.v1` in gen/python/semantik/v1/*_pb2.py is
enumerated, so a new RPC (and its HTTP rule) is fuzzed without a change here.

Requests that could change state the other tests rely on are kept harmless:
every string of a request to a mutating method carries a NUL character, which
no identifier accepts and PostgreSQL cannot store, so nothing can be created,
imported or changed; a Delete* gets, besides, well-formed names with a random
suffix, which cannot exist.
"""

from __future__ import annotations

import base64
import importlib
import json
import math
import pkgutil
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from google.api import annotations_pb2
from google.protobuf import descriptor, message_factory
from hypothesis import strategies as st

import semantik.v1

PACKAGE = "semantik.v1"
MUTATING_PREFIXES = (
    "Create",
    "Set",
    "Delete",
    "Update",
    "Import",
    "Bootstrap",
    "Change",
    "Logout",
    "Refresh",
    "Rotate",
    "Revoke",
)


@dataclass(frozen=True)
class HttpRoute:
    verb: str  # GET, POST, DELETE, ...
    template: str  # "/v1/{name=collections/*}"
    body: str  # "", "*" or a field name


@dataclass(frozen=True)
class Method:
    service: str
    name: str
    input: descriptor.Descriptor
    client_streaming: bool
    server_streaming: bool
    routes: tuple[HttpRoute, ...]

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.name}"

    @property
    def mutating(self) -> bool:
        return self.name.startswith(MUTATING_PREFIXES)

    @property
    def deleting(self) -> bool:
        return self.name.startswith("Delete")

    def serialize(self, message: Any) -> bytes:
        return bytes(message.SerializeToString())


def _routes(method: descriptor.MethodDescriptor) -> tuple[HttpRoute, ...]:
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return ()
    rule = options.Extensions[annotations_pb2.http]
    routes = []
    for binding in (rule, *rule.additional_bindings):
        kind = binding.WhichOneof("pattern")
        if kind is None:
            continue
        if kind == "custom":
            verb, template = binding.custom.kind, binding.custom.path
        else:
            verb, template = kind.upper(), getattr(binding, kind)
        routes.append(HttpRoute(verb, template, binding.body))
    return tuple(routes)


def public_methods() -> list[Method]:
    methods: list[Method] = []
    for info in sorted(pkgutil.iter_modules(semantik.v1.__path__), key=lambda i: i.name):
        if not info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(f"{PACKAGE}.{info.name}")
        for service in module.DESCRIPTOR.services_by_name.values():
            if not service.full_name.startswith(PACKAGE + "."):
                continue
            for method in service.methods:
                methods.append(
                    Method(
                        service=service.full_name,
                        name=method.name,
                        input=method.input_type,
                        client_streaming=method.client_streaming,
                        server_streaming=method.server_streaming,
                        routes=_routes(method),
                    )
                )
    return methods


# --- hostile scalar values ------------------------------------------------------------

TRAVERSAL = [
    "..",
    "../../../../../../etc/passwd",
    "/etc/passwd",
    "/proc/self/environ",
    "..\\..\\..\\windows\\win.ini",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "collections/../../operations/x",
    "collections/x/../../../etc",
    "file:///etc/shadow",
    "~/.ssh/id_rsa",
    "/dev/zero",
    "/",
    "//",
]
INJECTION = [
    "' OR '1'='1",
    "'; DROP TABLE collections; --",
    '"; SELECT pg_sleep(10); --',
    "${jndi:ldap://127.0.0.1/a}",
    "{{7*7}}",
    "%s%s%s%s%n",
    "<script>alert(1)</script>",
    "\r\nx-injected: 1",
    "*",
    "-",
    "%",
    "_",
    "\\",
    "null",
    "undefined",
    "NaN",
]
WEIRD = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\u202e\u2066evil",
    "\U0001f4a5\U0001f4a5",
    "\ufeff",
    "\u0301" * 50,
    "\u03a9" * 300,
    "\x7f\x01\x1b[31m",
    "\t\n\r",
    "\uffff",
    "\U0010ffff",
    "ﬃ",
    "İ",
]
RESOURCE_NAMES = [
    "collections/",
    "collections//documents/x",
    "collections/x/documents/",
    "collections/UPPER",
    "collections/with space",
    "collections/*",
    "collections/-",
    "collections/x/grants/",
    "operations/",
    "operations/not-a-uuid",
    "operations/00000000-0000-0000-0000-000000000000",
    "users/",
    "users/*",
    "apiKeys/",
    "apiKeys/../users/admin",
    "collections/" + "a" * 300,
    "projects/p/collections/c",
]
HOSTILE_STRINGS = TRAVERSAL + INJECTION + WEIRD + RESOURCE_NAMES

_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)


def _huge(max_len: int) -> st.SearchStrategy[str]:
    return st.builds(
        lambda unit, n: (unit * n)[:max_len],
        st.sampled_from(["a", "\u00e9", "\U0001f4a5", "/", "../", "\x00", "%00"]),
        st.sampled_from([1025, 4097, 65_537, max_len]),
    )


def hostile_strings(max_len: int = 300_000) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(HOSTILE_STRINGS),
        _text,
        st.builds(lambda a, b: a + b, st.sampled_from(RESOURCE_NAMES + TRAVERSAL), _text),
        _huge(max_len),
    )


def never_valid_strings(max_len: int = 300_000) -> st.SearchStrategy[str]:
    """Hostile strings that no identifier accepts and PostgreSQL cannot store (a NUL)."""
    return st.builds(
        lambda s, at: s[:at] + "\x00" + s[at:],
        hostile_strings(max_len),
        st.integers(0, 8),
    )


def nonexistent_names() -> st.SearchStrategy[str]:
    """Well-formed resource names that cannot exist (a random suffix)."""
    return st.builds(
        lambda prefix, n: f"{prefix}fuzz-{n:016x}-zz",
        st.sampled_from(["collections/", "operations/", "users/", "apiKeys/", ""]),
        st.integers(0, 2**64 - 1),
    )


_T = descriptor.FieldDescriptor
_INT_RANGES = {
    _T.TYPE_INT32: (-(2**31), 2**31 - 1),
    _T.TYPE_SINT32: (-(2**31), 2**31 - 1),
    _T.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    _T.TYPE_UINT32: (0, 2**32 - 1),
    _T.TYPE_FIXED32: (0, 2**32 - 1),
    _T.TYPE_INT64: (-(2**63), 2**63 - 1),
    _T.TYPE_SINT64: (-(2**63), 2**63 - 1),
    _T.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    _T.TYPE_UINT64: (0, 2**64 - 1),
    _T.TYPE_FIXED64: (0, 2**64 - 1),
}
_FLOATS = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308, -1e308, 5e-324]),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
)


def _ints(field: descriptor.FieldDescriptor) -> st.SearchStrategy[int]:
    lo, hi = _INT_RANGES[field.type]
    extremes = sorted({lo, hi, 0, 1, max(lo, -1), min(hi, 2**31), max(lo, -(2**31)), hi // 2})
    return st.one_of(st.sampled_from(extremes), st.integers(lo, hi))


def _scalar(field: descriptor.FieldDescriptor, strings: st.SearchStrategy[str]) -> Any:
    if field.type == _T.TYPE_STRING:
        return strings
    if field.type == _T.TYPE_BYTES:
        return st.binary(max_size=256)
    if field.type == _T.TYPE_BOOL:
        return st.booleans()
    if field.type in (_T.TYPE_FLOAT, _T.TYPE_DOUBLE):
        return _FLOATS
    if field.type == _T.TYPE_ENUM:
        assert field.enum_type is not None
        known = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(known), st.integers(-(2**31), 2**31 - 1))
    return _ints(field)


@st.composite
def hostile_messages(
    draw: st.DrawFn,
    message: descriptor.Descriptor,
    *,
    safe: bool = False,
    deleting: bool = False,
    depth: int = 0,
) -> Any:
    """A structurally valid message with hostile values in its fields.

    `safe`: every string field is set, and to a never-valid value (a NUL), so a
    mutating method can only refuse it; `deleting` adds names that cannot exist.
    """
    strings: st.SearchStrategy[str] = hostile_strings()
    if safe:
        strings = never_valid_strings()
        if deleting:
            strings = st.one_of(strings, nonexistent_names())
    instance = message_factory.GetMessageClass(message)()
    for field in message.fields:
        is_string = field.type == _T.TYPE_STRING
        if not (safe and is_string) and not draw(st.booleans()):
            continue
        try:
            _set_field(draw, instance, field, strings, safe=safe, deleting=deleting, depth=depth)
        except (ValueError, TypeError, OverflowError):
            continue  # a value this field's type refuses (e.g. a closed enum)
    return instance


def _set_field(
    draw: st.DrawFn,
    instance: Any,
    field: descriptor.FieldDescriptor,
    strings: st.SearchStrategy[str],
    *,
    safe: bool,
    deleting: bool,
    depth: int,
) -> None:
    target = getattr(instance, field.name)
    if field.message_type is not None:
        if depth >= 2:
            return
        if field.message_type.GetOptions().map_entry:
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            for _ in range(draw(st.integers(0, 3))):
                key = draw(_scalar(key_field, strings))
                if value_field.message_type is not None:
                    target[key].CopyFrom(
                        draw(
                            hostile_messages(
                                value_field.message_type,
                                safe=safe,
                                deleting=deleting,
                                depth=depth + 1,
                            )
                        )
                    )
                else:
                    target[key] = draw(_scalar(value_field, strings))
            return
        sub = hostile_messages(field.message_type, safe=safe, deleting=deleting, depth=depth + 1)
        if field.is_repeated:
            for _ in range(draw(st.integers(0, 3))):
                target.add().CopyFrom(draw(sub))
        else:
            target.CopyFrom(draw(sub))
        return
    values = _scalar(field, strings)
    if field.is_repeated:
        count = draw(st.sampled_from([0, 1, 2, 3, 1000]))
        if count == 1000:  # a long list of one short value: cheap to draw, heavy to handle
            short = st.sampled_from(HOSTILE_STRINGS) if field.type == _T.TYPE_STRING else values
            if safe and field.type == _T.TYPE_STRING:
                short = short.map(lambda v: v + "\x00")
            target.extend([draw(short)] * count)
        else:
            target.extend(draw(st.lists(values, min_size=count, max_size=count)))
    else:
        setattr(instance, field.name, draw(values))


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


@st.composite
def wire_garbage(draw: st.DrawFn) -> bytes:
    """Protobuf-looking bytes: real tags with wrong wire types, lying lengths, truncation."""
    out = bytearray()
    for _ in range(draw(st.integers(1, 6))):
        number = draw(st.one_of(st.integers(1, 20), st.sampled_from([0, 19000, 2**29 - 1])))
        wire = draw(st.integers(0, 7))
        out += _varint((number << 3) | wire)
        kind = draw(st.integers(0, 3))
        if kind == 0:
            out += _varint(draw(st.integers(0, 2**64 - 1)))
        elif kind == 1:  # a length prefix that lies
            out += _varint(draw(st.sampled_from([0, 1, 127, 2**31, 2**63])))
            out += draw(st.binary(max_size=16))
        elif kind == 2:
            out += b"\xff" * draw(st.integers(1, 11))  # an unterminated varint
        else:
            out += draw(st.binary(max_size=16))
    return bytes(out)


def random_payloads() -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=512), wire_garbage())


# --- credentials ------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(header: dict[str, Any], claims: dict[str, Any], signature: bytes) -> str:
    return ".".join(
        [_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()), _b64(signature)]
    )


EXPIRED_JWTS = [
    _jwt(
        {"alg": "HS256", "typ": "JWT"},
        {"sub": "users/admin", "exp": 1_000_000_000, "iat": 999_999_000, "role": "admin"},
        b"\x00" * 32,
    ),
    _jwt({"alg": "none", "typ": "JWT"}, {"sub": "users/admin", "exp": 4_000_000_000}, b""),
    _jwt({"alg": "RS256", "kid": "../../dev/null"}, {"sub": "admin"}, b"sig"),
    _jwt({"alg": "HS256"}, {"sub": "users/admin", "exp": "tomorrow", "nbf": -1}, b"x" * 32),
]
_printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)
CREDENTIAL_VALUES = st.one_of(
    st.sampled_from(
        [
            "",
            "Bearer",
            "Bearer ",
            "Bearer null",
            "bearer garbage",
            "Basic YWRtaW46YWRtaW4=",
            "Bearer a.b.c",
            "Bearer ....",
            "Token x",
            "Bearer " + "A" * 2000,  # two of them and a key stay under gRPC's 8 KiB of metadata
        ]
        + [f"Bearer {token}" for token in EXPIRED_JWTS]
    ),
    st.builds(lambda s: "Bearer " + s, _printable),
    _printable,
)
API_KEY_VALUES = st.one_of(
    st.sampled_from(["", "sk_live_0000", "semantik_" + "0" * 40, "' OR 1=1 --", "k" * 2000]),
    _printable,
)


@st.composite
def bad_credentials(draw: st.DrawFn) -> list[tuple[str, str]]:
    """Missing, garbage or expired-looking credentials, as (lowercase key, value) pairs."""
    headers: list[tuple[str, str]] = []
    for _ in range(draw(st.integers(0, 2))):
        headers.append(("authorization", draw(CREDENTIAL_VALUES)))
    if draw(st.booleans()):
        headers.append(("x-api-key", draw(API_KEY_VALUES)))
    if draw(st.integers(0, 9)) == 0:
        # Internal credentials mean nothing at the public edge.
        headers.append(("x-semantik-service-token", draw(_printable)))
    return headers


# --- JSON over Envoy ---------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        _text,
        st.sampled_from(HOSTILE_STRINGS),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(_text, children, max_size=4)
    ),
    max_leaves=12,
)
JSON_NON_STRINGS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.sampled_from(["\x00", "a\x00"]), st.integers(), max_size=2),
)
INVALID_JSON = [
    b"{",
    b"}",
    b"[",
    b'{"a":}',
    b"{'single': 'quotes'}",
    b'{"a": NaN}',
    b'{"a": Infinity}',
    b'{"pageSize": 1e999}',
    b'{"a": "\\ud800"}',
    b"\xff\xfe{\x00}\x00",
    b"\x00",
    b"null",
    b"[]",
    b'""',
    b"1",
    b"true",
    b'{"a":1,"a":2}',
    b'{"__proto__": {"admin": true}}',
    b"[" * 5000 + b"]" * 5000,
    b'{"a":' * 2000 + b"1" + b"}" * 2000,
]
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=utf-16",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/grpc",
    "application/grpc-web+proto",
    "application/grpc-web-text",
    "application/octet-stream",
    "application/xml",
    "*/*",
    "garbage",
    "",
]
HTTP_METHODS = ["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "TRACE", "PROPFIND", "FOO"]
_SAFE_SEGMENT_CHARS = "-._~!$&'()*+,;=:@"


def _segment(raw: str) -> str:
    # Percent-encoded so http.client sends it; Envoy and the transcoder decode it.
    return urllib.parse.quote(raw, safe=_SAFE_SEGMENT_CHARS)


_PATH_SEGMENTS = st.one_of(
    st.sampled_from(
        ["..", ".", "%2e%2e", "%2F", "%00", "%ff", "%", "%zz", "*", "**", ":search", ":import"]
    ),
    st.builds(_segment, hostile_strings(max_len=70_000)),
)
_SAFE_PATH_SEGMENTS = st.one_of(
    st.builds(_segment, never_valid_strings(max_len=70_000)),
    st.builds(lambda n: f"fuzz-{n:016x}-zz", st.integers(0, 2**64 - 1)),
)
_VARIABLE = re.compile(r"\{([^}=]+)(?:=([^}]*))?\}")


def fill_template(template: str, segments: Iterator[str]) -> str:
    """Replace each `{field=pattern}` by the pattern with its `*`s filled in."""

    def one(match: re.Match[str]) -> str:
        pattern = match.group(2) or "*"
        parts = pattern.split("/")
        return "/".join(next(segments) if part in ("*", "**") else part for part in parts)

    return _VARIABLE.sub(one, template)


def json_name(field: descriptor.FieldDescriptor) -> str:
    return str(field.json_name)


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
    authenticated: bool
    route: str  # the template it was made from, for grouping answers

    def describe(self) -> str:
        body = None if self.body is None else self.body[:300]
        headers = [(k, v[:120]) for k, v in self.headers]
        return f"{self.method} {self.path[:400]} headers={headers} body={body!r}"


def _query_value(draw: st.DrawFn, safe: bool) -> str:
    strings = never_valid_strings(2000) if safe else hostile_strings(2000)
    return str(
        draw(
            st.one_of(
                strings,
                st.sampled_from(["-1", "0", "1e9", "abc", "2147483648", "true", "[]"]),
                st.integers(-(2**64), 2**64).map(str),
            )
        )
    )


@st.composite
def http_requests(draw: st.DrawFn, methods: list[Method]) -> HttpRequest:
    routed = [(m, r) for m in methods for r in m.routes]
    shape = draw(st.integers(0, 9))
    verb = draw(st.sampled_from(HTTP_METHODS))
    method: Method | None = None
    if routed and shape < 7:
        # A real route, its method (usually), hostile path segments.
        method, route = draw(st.sampled_from(routed))
        if draw(st.integers(0, 3)) > 0:
            verb = route.verb
        template = route.template
        label = template
    elif shape < 9:
        parts = draw(st.lists(_PATH_SEGMENTS, min_size=0, max_size=4))
        template = "/v1/" + "/".join(parts)
        template = template.replace("{", "%7B").replace("}", "%7D")
        label = "/v1/<random>"
    else:
        template = draw(
            st.sampled_from(
                [
                    "/v1/../admin",
                    "/v1/%2e%2e/%2e%2e/etc/passwd",
                    "/v1//collections",
                    "/v1/collections/%2F..%2F",
                    "/v1/collections/%00",
                    "/v1/./collections",
                    "/v1",
                    "/v1/",
                    "/semantik.v1.CollectionService/ListCollections",
                    "/semantik.internal.v1.MetadataService/ListCollections",
                    "/grpc.health.v1.Health/Check",
                    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                ]
            )
        )
        label = template
    # Anything that writes gets segments that cannot name a real resource.
    writes = verb not in {"GET", "HEAD"}
    safe = writes or (method is not None and method.mutating)
    segment_strategy = _SAFE_PATH_SEGMENTS if safe else _PATH_SEGMENTS
    path = fill_template(template, iter(draw(st.lists(segment_strategy, min_size=8, max_size=8))))

    query: list[tuple[str, str]] = []
    if draw(st.booleans()):
        known = [json_name(f) for f in method.input.fields] if method is not None else []
        keys = st.one_of(st.sampled_from(known or ["pageSize"]), _text, st.just("$alt"))
        for _ in range(draw(st.integers(1, 4))):
            query.append((draw(keys), _query_value(draw, safe)))
    if draw(st.integers(0, 19)) == 0:  # a huge query string
        query.append(("pageToken", "A" * draw(st.sampled_from([4000, 40_000, 100_000]))))
    if query:
        path += "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)

    body: bytes | None = None
    body_kind = draw(st.integers(0, 5))
    if body_kind == 1:
        body = json.dumps(draw(JSON_VALUES)).encode()
    elif body_kind == 2:
        body = draw(st.sampled_from(INVALID_JSON))
    elif body_kind == 3:
        body = draw(st.binary(max_size=256))
    elif body_kind == 4 and draw(st.integers(0, 9)) == 0:
        body = b" " * 5_000_000  # past the body limit
    elif body_kind >= 4 and method is not None:
        body = _json_body(draw, method, safe)

    headers: list[tuple[str, str]] = []
    if draw(st.integers(0, 3)) > 0:
        headers.append(("Content-Type", draw(st.sampled_from(CONTENT_TYPES))))
    authenticated = draw(st.booleans())
    if not authenticated:
        for key, value in draw(bad_credentials()):
            headers.append(("Authorization" if key == "authorization" else key, value))
    return HttpRequest(verb, path, tuple(headers), body, authenticated, label)


def _json_body(draw: st.DrawFn, method: Method, safe: bool) -> bytes:
    message = draw(hostile_messages(method.input, safe=safe, deleting=method.deleting))
    from google.protobuf import json_format  # noqa: PLC0415

    try:
        body: Any = json_format.MessageToDict(message)
    except (json_format.Error, ValueError, TypeError):
        body = {}  # a value JSON cannot carry (e.g. a Timestamp out of range)
    # Wrong JSON types for known fields, sometimes (never a string that could be valid
    # when the method writes).
    for field in method.input.fields:
        if draw(st.integers(0, 4)) == 0:
            body[json_name(field)] = draw(JSON_NON_STRINGS if safe else JSON_VALUES)
    try:
        return json.dumps(body).encode()
    except ValueError:
        return b"{}"
