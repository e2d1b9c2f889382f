"""Uploads on the real mesh: files sent by the client land in the collection's
upload area and are indexed through the same import path; no source needed."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from semantik.v1 import (
    collection_pb2,
    document_pb2,
    grant_pb2,
    operation_pb2,
    search_pb2,
    user_pb2,
)
from semantik_runner.mesh import Mesh
from tests.conftest import login
from tests.e2e.conftest import Api, JsonApi, api_for

PASSWORD = "uploads test password 1"
REPO = Path(__file__).resolve().parents[2]
Part = document_pb2.UploadDocumentsRequest


@pytest.fixture(scope="module")
def uploader(mesh: Mesh, api: Api) -> Iterator[Api]:
    """An editor who owns `up-notes` and may only read `up-read`; no source."""
    api.users.CreateUser(
        user_pb2.CreateUserRequest(
            user_id="up-user", user=user_pb2.User(role=user_pb2.ROLE_EDITOR), password=PASSWORD
        ),
        timeout=60,
    )
    client = api_for(mesh.grpc_target, login(mesh.grpc_target, "up-user", PASSWORD).access_token)
    client.collections.CreateCollection(
        collection_pb2.CreateCollectionRequest(
            collection_id="up-notes", collection=collection_pb2.Collection()
        ),
        timeout=30,
    )
    api.collections.CreateCollection(
        collection_pb2.CreateCollectionRequest(
            collection_id="up-read", collection=collection_pb2.Collection()
        ),
        timeout=30,
    )
    api.grants.SetGrant(
        grant_pb2.SetGrantRequest(
            parent="collections/up-read",
            user="users/up-user",
            role=grant_pb2.COLLECTION_ROLE_VIEWER,
        ),
        timeout=30,
    )
    yield client
    client.channel.close()


def _parts(name: str, content: bytes, part_bytes: int, parent: str = "") -> list[Part]:
    chunks = [content[i : i + part_bytes] for i in range(0, len(content), part_bytes)] or [b""]
    return [
        Part(
            parent=parent,
            file_name=name if i == 0 else "",
            data=chunk,
            last=i == len(chunks) - 1,
            sha256=hashlib.sha256(content).hexdigest() if i == len(chunks) - 1 else "",
        )
        for i, chunk in enumerate(chunks)
    ]


def _search(client: Api, collection: str, query: str) -> list[str]:
    found = client.search.Search(
        search_pb2.SearchRequest(collection=collection, query=query, top_k=3), timeout=30
    )
    return [result.source_path for result in found.results]


def test_an_editor_uploads_files_in_parts_and_finds_them(uploader: Api, mesh: Mesh) -> None:
    long_note = ("Tidal energy turns the rise and fall of the sea into power. " * 30_000).encode()
    assert len(long_note) > 1024 * 1024  # several parts
    parts = [
        *_parts("energy/tides.txt", long_note, 256 * 1024, parent="collections/up-notes"),
        *_parts("birds/owls.md", b"# Owls\n\nBarn owls hunt voles at dusk by sound.\n", 16),
        *_parts("empty.txt", b"", 16),
    ]
    operation = uploader.documents.UploadDocuments(iter(parts), timeout=120)
    assert operation.kind == operation_pb2.OPERATION_KIND_UPLOAD_DOCUMENTS
    done = uploader.wait_done(operation.name)
    assert done.state == operation_pb2.OPERATION_STATE_SUCCEEDED, done
    assert done.progress.documents_done == 3
    area = mesh.data_dir / "uploads" / "up-notes"
    assert (area / "energy" / "tides.txt").read_bytes() == long_note
    assert _search(uploader, "collections/up-notes", "how do barn owls hunt")[0].endswith(
        "birds/owls.md"
    )
    # Nothing but the files: no partial file is left in the area.
    assert sorted(p.name for p in area.rglob("*") if p.is_file()) == [
        "empty.txt",
        "owls.md",
        "tides.txt",
    ]


def test_files_completed_before_a_stream_broke_are_kept(uploader: Api, mesh: Mesh) -> None:
    # The stream breaks in the middle of second.txt: a new file begins
    # before its last part (a client that lost its place).
    broken = [
        *_parts("kept/first.txt", b"Glaciers carve U-shaped valleys.\n", 8,
                parent="collections/up-notes"),
        Part(file_name="kept/second.txt", data=b"half of a file"),
        Part(file_name="kept/other.txt", data=b"x", last=True),
    ]  # fmt: skip
    with pytest.raises(grpc.RpcError) as raised:
        uploader.documents.UploadDocuments(iter(broken), timeout=60)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    area = mesh.data_dir / "uploads" / "up-notes" / "kept"
    assert (area / "first.txt").is_file() and not (area / "second.txt").exists()
    assert not [p for p in area.iterdir() if p.name not in ("first.txt",)]
    # The next upload indexes the area: the kept file becomes a document too.
    operation = uploader.documents.UploadDocuments(
        iter(
            _parts(
                "kept/third.txt",
                b"Moraines mark where glaciers stopped.\n",
                64,
                parent="collections/up-notes",
            )
        ),
        timeout=60,
    )
    done = uploader.wait_done(operation.name)
    assert done.state == operation_pb2.OPERATION_STATE_SUCCEEDED, done
    assert _search(uploader, "collections/up-notes", "U-shaped valleys")[0].endswith(
        "kept/first.txt"
    )


@pytest.mark.parametrize(
    "name", ["../escape.txt", "/etc/escape.txt", "a/../../escape.txt", "run.exe", "", "a\x00.txt"]
)
def test_file_names_that_leave_the_area_are_refused(uploader: Api, mesh: Mesh, name: str) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        uploader.documents.UploadDocuments(
            iter([Part(parent="collections/up-notes", file_name=name, data=b"x", last=True)]),
            timeout=30,
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    assert not (mesh.data_dir / "uploads" / "escape.txt").exists()
    assert not list(mesh.data_dir.glob("**/escape.txt"))


def test_a_reader_cannot_upload_and_a_stream_stays_in_one_collection(
    uploader: Api, api: Api
) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        uploader.documents.UploadDocuments(
            iter(_parts("r.txt", b"read only", 64, parent="collections/up-read")), timeout=30
        )
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # Authorised for up-notes, then naming up-read: refused, nothing indexed there.
    with pytest.raises(grpc.RpcError) as raised:
        uploader.documents.UploadDocuments(
            iter([
                *_parts("ok.txt", b"fine", 64, parent="collections/up-notes"),
                *_parts("sneak.txt", b"sneaky", 64, parent="collections/up-read"),
            ]),
            timeout=30,
        )  # fmt: skip
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    listed = api.documents.ListDocuments(
        document_pb2.ListDocumentsRequest(parent="collections/up-read"), timeout=30
    )
    assert not listed.documents


def test_json_upload_through_envoy(uploader: Api, mesh: Mesh, json_api: JsonApi) -> None:
    token = login(mesh.grpc_target, "up-user", PASSWORD).access_token
    request = urllib.request.Request(
        f"{mesh.json_url}/v1/collections/up-notes/documents:upload?fileName=json/kites.md",
        data=b"# Kites\n\nA kite flies because wind pushes against its tilted face.\n",
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/markdown"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        operation = json.loads(response.read())
    assert operation["kind"] == "OPERATION_KIND_UPLOAD_DOCUMENTS"
    done = uploader.wait_done(operation["name"])
    assert done.state == operation_pb2.OPERATION_STATE_SUCCEEDED, done
    assert _search(uploader, "collections/up-notes", "why does a kite fly")[0].endswith(
        "json/kites.md"
    )


def test_the_cli_uploads_what_the_server_cannot_see_and_resumes(
    uploader: Api, mesh: Mesh, tmp_path: Path
) -> None:
    """An editor's `semantik index ./folder` with no source holding it uploads;
    a second run sends only what is not indexed with the same content."""
    folder = tmp_path / "laptop"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("Volcanoes vent magma through the crust.\n", "utf-8")
    (folder / "sub" / "b.md").write_text("# Geysers\n\nGeysers erupt hot water.\n", "utf-8")
    env = {
        **os.environ,
        "SEMANTIK_TARGET": mesh.grpc_target,
        "SEMANTIK_TOKEN": login(mesh.grpc_target, "up-user", PASSWORD).access_token,
    }

    def index() -> str:
        result = subprocess.run(
            [str(REPO / ".venv" / "bin" / "semantik"), "index", str(folder),
             "--collection", "up-cli"],
            env=env, capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    assert "uploading 2 of 2 files" in index()
    (folder / "a.txt").write_text("Volcanoes vent magma and ash.\n", "utf-8")
    (folder / "c.txt").write_text("Hot springs warm the valley.\n", "utf-8")
    assert "uploading 2 of 3 files (1 indexed)" in index()
    assert _search(uploader, "collections/up-cli", "geysers erupt")[0].endswith("sub/b.md")


def test_a_deleted_collections_uploads_go_with_it(uploader: Api, api: Api, mesh: Mesh) -> None:
    """Another collection of the same id later must not import them."""

    def fresh() -> None:
        uploader.collections.CreateCollection(
            collection_pb2.CreateCollectionRequest(
                collection_id="up-reused", collection=collection_pb2.Collection()
            ),
            timeout=30,
        )

    def upload(name: str, text: bytes) -> operation_pb2.Operation:
        operation = uploader.documents.UploadDocuments(
            iter(_parts(name, text, 64, parent="collections/up-reused")), timeout=60
        )
        done: operation_pb2.Operation = uploader.wait_done(operation.name)
        return done

    fresh()
    upload("private.txt", b"The old collection's private ledger.\n")
    uploader.collections.DeleteCollection(
        collection_pb2.DeleteCollectionRequest(name="collections/up-reused"), timeout=30
    )
    assert not (mesh.data_dir / "uploads" / "up-reused").exists()
    fresh()
    done = upload("new.txt", b"A new beginning.\n")
    assert done.state == operation_pb2.OPERATION_STATE_SUCCEEDED
    listed = uploader.documents.ListDocuments(
        document_pb2.ListDocumentsRequest(parent="collections/up-reused"), timeout=30
    )
    assert [d.source_path.rsplit("/", 1)[-1] for d in listed.documents] == ["new.txt"]
