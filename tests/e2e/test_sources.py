"""Sources on the real mesh: imports read only folders registered as sources,
and only the sources a caller owns or was granted.

The first test is the reported hole: an editor imported the admin's folder by
its server path and searched the admin's text. Every refusal of a folder the
caller may not read is checked to answer the same whether or not it exists.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from semantik.v1 import (
    collection_pb2,
    document_pb2,
    operation_pb2,
    search_pb2,
    source_pb2,
    user_pb2,
)
from semantik_runner.mesh import Mesh
from tests.conftest import login
from tests.e2e.conftest import Api, JsonApi, api_for

PASSWORD = "sources test password 1"
SECRET_TEXT = "Zebra migration budget for the northern reserve, approved in March."


def _refusal(call: object) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    """(code, message, field violations) of a call that must fail."""
    with pytest.raises(grpc.RpcError) as raised:
        call()  # type: ignore[operator]
    error = raised.value
    fields: dict[str, str] = {}
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields.update((v.field, v.description) for v in bad.field_violations)
    return error.code(), error.details(), fields


def _user(mesh: Mesh, api: Api, user_id: str) -> Api:
    api.users.CreateUser(
        user_pb2.CreateUserRequest(
            user_id=user_id, user=user_pb2.User(role=user_pb2.ROLE_EDITOR), password=PASSWORD
        ),
        timeout=60,
    )
    return api_for(mesh.grpc_target, login(mesh.grpc_target, user_id, PASSWORD).access_token)


def _collection(client: Api, collection_id: str) -> str:
    client.collections.CreateCollection(
        collection_pb2.CreateCollectionRequest(
            collection_id=collection_id, collection=collection_pb2.Collection()
        ),
        timeout=30,
    )
    return f"collections/{collection_id}"


def _import(
    client: Api, parent: str, *, source_path: str = "", source: str = "", path: str = ""
) -> operation_pb2.Operation:
    operation = client.documents.ImportDocuments(
        document_pb2.ImportDocumentsRequest(
            parent=parent, source_path=source_path, source=source, path=path
        ),
        timeout=30,
    )
    done: operation_pb2.Operation = client.wait_done(operation.name)
    return done


@pytest.fixture(scope="module")
def ann(mesh: Mesh, api: Api) -> Iterator[Api]:
    """An editor with no grant on anything of the admin's."""
    client = _user(mesh, api, "src-ann")
    yield client
    client.channel.close()


@pytest.fixture(scope="module")
def admin_notes(api: Api, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The admin's folder of notes, indexed into the admin's own collection."""
    notes = tmp_path_factory.mktemp("admin-notes")
    (notes / "plan.txt").write_text(SECRET_TEXT + "\n", encoding="utf-8")
    parent = _collection(api, "src-admin")
    assert _import(api, parent, source_path=str(notes)).state == (
        operation_pb2.OPERATION_STATE_SUCCEEDED
    )
    return notes


def test_an_editor_cannot_import_the_admins_folder_by_its_path(
    api: Api, ann: Api, mesh: Mesh, json_api: JsonApi, admin_notes: Path
) -> None:
    parent = _collection(ann, "src-ann")

    def by_path(path: str) -> tuple[grpc.StatusCode, str, dict[str, str]]:
        return _refusal(
            lambda: ann.documents.ImportDocuments(
                document_pb2.ImportDocumentsRequest(parent=parent, source_path=path), timeout=30
            )
        )

    refused = by_path(str(admin_notes))
    assert refused[0] == grpc.StatusCode.PERMISSION_DENIED
    # The same answer whether the path exists or not, is the root or the data.
    for other in ("/no/such/folder-at-all", "/", "/etc", str(mesh.data_dir)):
        assert by_path(other) == refused
    # The reproduction as reported: JSON through Envoy.
    as_ann = JsonApi(json_api.base_url, ann_token(mesh))
    json_refusals = {
        as_ann.call("POST", "/v1/collections/src-ann/documents:import", {"sourcePath": path}).status
        for path in (str(admin_notes), "/no/such/folder-at-all")
    }
    assert json_refusals == {403}
    # The admin's folder was registered as a source of the admin's on the
    # way; naming it is no better than naming one that does not exist.
    [source] = [
        s
        for s in api.sources.ListSources(source_pb2.ListSourcesRequest(), timeout=30).sources
        if s.path == os.path.realpath(admin_notes)
    ]
    assert source.owner == "users/admin"

    def by_name(name: str) -> tuple[grpc.StatusCode, str]:
        code, message, _ = _refusal(
            lambda: ann.documents.ImportDocuments(
                document_pb2.ImportDocumentsRequest(parent=parent, source=name), timeout=30
            )
        )
        return code, message.replace(name, "<name>")

    assert by_name(source.name) == by_name("sources/no-such-source")
    assert by_name(source.name)[0] == grpc.StatusCode.NOT_FOUND
    listed = ann.sources.ListSources(source_pb2.ListSourcesRequest(), timeout=30).sources
    assert source.name not in {s.name for s in listed}
    # Nothing of the admin's text reached her collection.
    found = ann.search.Search(
        search_pb2.SearchRequest(collection=parent, query="zebra migration budget"), timeout=30
    )
    assert not found.results
    operations = ann.operations.ListOperations(
        operation_pb2.ListOperationsRequest(page_size=1000), timeout=30
    ).operations
    assert all(op.collection != parent for op in operations)


def ann_token(mesh: Mesh) -> str:
    return login(mesh.grpc_target, "src-ann", PASSWORD).access_token


@pytest.fixture(scope="module")
def shared(mesh: Mesh, api: Api, ann: Api, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A source granted to ann (reader), with symlinks that lead out of it."""
    base = tmp_path_factory.mktemp("shared-base")
    root = base / "shared"
    (root / "team").mkdir(parents=True)
    (root / "team" / "a.md").write_text(
        "# Rota\n\nThe greenhouse rota rotates weekly between the three gardeners.\n",
        encoding="utf-8",
    )
    (root / "other").mkdir()
    (root / "other" / "b.txt").write_text("Compost needs turning twice a month.\n", "utf-8")
    (root / "other" / "broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET_TEXT + "\n", encoding="utf-8")
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "dangling").symlink_to(base / "no-such-folder", target_is_directory=True)
    (root / "to-secrets").symlink_to(mesh.data_dir / "secrets", target_is_directory=True)
    (root / "to-proc").symlink_to("/proc/self", target_is_directory=True)
    api.sources.CreateSource(
        source_pb2.CreateSourceRequest(
            source_id="src-shared", source=source_pb2.Source(path=str(root))
        ),
        timeout=30,
    )
    api.sources.SetSourceGrant(
        source_pb2.SetSourceGrantRequest(
            parent="sources/src-shared", user="users/src-ann", role=source_pb2.SOURCE_ROLE_READER
        ),
        timeout=30,
    )
    return root


def test_a_granted_source_is_imported_by_name(ann: Api, shared: Path) -> None:
    parent = _collection(ann, "src-ann-granted")
    done = _import(ann, parent, source="sources/src-shared", path="team")
    assert done.state == operation_pb2.OPERATION_STATE_SUCCEEDED, done
    assert done.source == "sources/src-shared"
    found = ann.search.Search(
        search_pb2.SearchRequest(collection=parent, query="greenhouse rota"), timeout=30
    )
    assert found.results and found.results[0].source_path.endswith("team/a.md")
    [mine] = [
        s
        for s in ann.sources.ListSources(source_pb2.ListSourcesRequest(), timeout=30).sources
        if s.name == "sources/src-shared"
    ]
    assert mine.caller_role == source_pb2.SOURCE_ROLE_READER
    # The whole source: links out of it are errors that do not say where to.
    whole = _import(ann, _collection(ann, "src-ann-whole"), source="sources/src-shared")
    reasons = {e.source_path.rsplit("/", 1)[-1]: e.reason for e in whole.document_errors}
    assert reasons["escape"] == "symlink leading outside the source"
    assert not [r for r in reasons.values() if str(shared.parent) in r], reasons
    # A reader may use it, not manage it.
    code, _, _ = _refusal(
        lambda: ann.sources.DeleteSource(
            source_pb2.DeleteSourceRequest(name="sources/src-shared"), timeout=30
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED


# Paths inside the granted source that lead out of it (or into the data
# directory, or /proc), each beside one that does not exist: the answers must
# be identical.
LEADING_OUT = [
    ("..", "../no-such-folder"),
    ("team/../..", "team/../../no-such-folder"),
    ("escape", "dangling"),
    ("to-secrets", "escape/no-such-folder"),
    ("to-proc", "to-proc/no-such-folder"),
    ("/etc", "/no-such-folder"),
]


@pytest.mark.parametrize(("existing", "missing"), LEADING_OUT)
def test_paths_that_leave_the_source_are_refused_alike(
    ann: Api, shared: Path, existing: str, missing: str
) -> None:
    def refuse(path: str) -> tuple[grpc.StatusCode, str, dict[str, str]]:
        return _refusal(
            lambda: ann.documents.ImportDocuments(
                document_pb2.ImportDocumentsRequest(
                    parent="collections/src-ann-granted", source="sources/src-shared", path=path
                ),
                timeout=30,
            )
        )

    refused = refuse(existing)
    assert refused[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert set(refused[2]) == {"path"}
    assert refuse(missing) == refused


@pytest.mark.parametrize(
    "path", ["a/" * 2500, "x" * 300, "team\x00", "team\n..", "team/\x7f"], ids=repr
)
def test_malformed_paths_are_refused(ann: Api, shared: Path, path: str) -> None:
    code, _, fields = _refusal(
        lambda: ann.documents.ImportDocuments(
            document_pb2.ImportDocumentsRequest(
                parent="collections/src-ann-granted", source="sources/src-shared", path=path
            ),
            timeout=30,
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "path" in fields


def test_a_path_that_is_not_utf8_is_refused(mesh: Mesh, shared: Path) -> None:
    """Raw protobuf bytes with a non-UTF-8 `path`: refused, never INTERNAL."""

    def field(number: int, value: bytes) -> bytes:
        return bytes([number << 3 | 2, len(value)]) + value

    raw = (
        field(1, b"collections/src-ann-granted")
        + field(6, b"sources/src-shared")
        + field(7, b"team\xff\xfe")
    )
    channel = grpc.insecure_channel(mesh.grpc_target)
    call = channel.unary_unary(
        "/semantik.v1.DocumentService/ImportDocuments",
        request_serializer=lambda body: body,
        response_deserializer=lambda body: body,
    )
    with pytest.raises(grpc.RpcError) as raised:
        call(raw, timeout=30, metadata=(("authorization", f"Bearer {ann_token(mesh)}"),))
    channel.close()
    assert raised.value.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)


@pytest.mark.parametrize("hostile", ["/", "/proc", "/proc/self", "/sys", "/dev", "DATA", "SECRETS"])
def test_server_paths_no_one_may_import(api: Api, mesh: Mesh, hostile: str) -> None:
    """Not even an admin: the filesystem root, system folders, the data directory."""
    path = {"DATA": str(mesh.data_dir), "SECRETS": str(mesh.data_dir / "secrets")}.get(
        hostile, hostile
    )
    code, _, fields = _refusal(
        lambda: api.documents.ImportDocuments(
            document_pb2.ImportDocumentsRequest(parent="collections/src-admin", source_path=path),
            timeout=30,
        )
    )
    assert (code, set(fields)) == (grpc.StatusCode.INVALID_ARGUMENT, {"source_path"})
    code, _, fields = _refusal(
        lambda: api.sources.CreateSource(
            source_pb2.CreateSourceRequest(
                source_id="hostile", source=source_pb2.Source(path=path)
            ),
            timeout=30,
        )
    )
    assert (code, set(fields)) == (grpc.StatusCode.INVALID_ARGUMENT, {"source.path"})


def test_an_admin_path_is_read_through_the_source_that_holds_it(api: Api, tmp_path: Path) -> None:
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / "sub" / "n.txt").write_text("Kites fly on windy hills.\n", "utf-8")
    parent = _collection(api, "src-admin-paths")
    first = _import(api, parent, source_path=str(tmp_path / "docs"))
    again = _import(api, parent, source_path=str(tmp_path / "docs" / "sub"))
    assert first.source and first.source == again.source
    assert again.source_path == os.path.realpath(tmp_path / "docs" / "sub")
    source = api.sources.GetSource(source_pb2.GetSourceRequest(name=first.source), timeout=30)
    assert source.path == os.path.realpath(tmp_path / "docs")
    assert source.caller_role == source_pb2.SOURCE_ROLE_OWNER


def test_the_embedded_run_registers_its_default_source(api: Api, mesh: Mesh) -> None:
    source = api.sources.GetSource(source_pb2.GetSourceRequest(name="sources/default"), timeout=30)
    assert source.path == str(mesh.default_source_dir)
    assert source.owner == ""  # admins manage it


def test_a_revoked_grant_stops_imports_and_retries(api: Api, ann: Api, shared: Path) -> None:
    parent = _collection(ann, "src-ann-revoked")
    done = _import(ann, parent, source="sources/src-shared", path="other")
    assert done.state == operation_pb2.OPERATION_STATE_SUCCEEDED
    assert [e.source_path for e in done.document_errors] == [
        os.path.realpath(shared / "other" / "broken.pdf")
    ]
    api.sources.DeleteSourceGrant(
        source_pb2.DeleteSourceGrantRequest(name="sources/src-shared/grants/src-ann"), timeout=30
    )
    try:
        for call in (
            lambda: ann.operations.RetryOperation(
                operation_pb2.RetryOperationRequest(name=done.name), timeout=30
            ),
            lambda: ann.documents.ImportDocuments(
                document_pb2.ImportDocumentsRequest(parent=parent, source="sources/src-shared"),
                timeout=30,
            ),
        ):
            code, message, _ = _refusal(call)
            assert (code, message) == (grpc.StatusCode.NOT_FOUND, "sources/src-shared not found")
    finally:
        api.sources.SetSourceGrant(
            source_pb2.SetSourceGrantRequest(
                parent="sources/src-shared",
                user="users/src-ann",
                role=source_pb2.SOURCE_ROLE_READER,
            ),
            timeout=30,
        )
