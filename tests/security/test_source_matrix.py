"""The source matrix: every RPC that names a source x role x source relation x credential.

Sources are folders on the server; a user may import from the sources they
own or were granted (security/policy.py, security/source_access.py,
services/gateway/imports.py). Subjects are users with the global roles admin,
editor and viewer; each holds one relation to three sources (owner, reader
grant, or none: a foreign source, owned by a bystander) and calls with an
access token or with an API key scoped to a collection they own; anonymous
calls complete the matrix. The expected outcome is derived here from the
relation, independently of the gateway's code, and each case is a real call
through the real mesh.

ImportDocuments is in twice: naming a source (the collection is the
subject's own, so the source is what decides), and naming a server path
(`source_path`), which only an admin signed in as a user may do.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from semantik.v1 import (
    api_key_pb2,
    collection_pb2,
    document_pb2,
    grant_pb2,
    source_pb2,
    user_pb2,
)
from semantik_runner.mesh import Mesh
from tests.conftest import login
from tests.e2e.conftest import Api, api_for
from tests.security.conftest import REPORT, outcome

PASSWORD = "source matrix password 0123"
ROLES = {
    "admin": user_pb2.ROLE_ADMIN,
    "editor": user_pb2.ROLE_EDITOR,
    "viewer": user_pb2.ROLE_VIEWER,
}
RELATIONS = ("own", "granted", "foreign")
OK = grpc.StatusCode.OK
NOT_FOUND = grpc.StatusCode.NOT_FOUND
DENIED = grpc.StatusCode.PERMISSION_DENIED
BYSTANDER = "sx-bystander"
SPARE = "sx-spare"  # granted and ungranted by the calls under test


@dataclass
class Subject:
    user_id: str
    role: str
    collection_id: str
    sources: dict[str, str]  # relation -> source id
    tokens: str = ""
    key: str = ""


@dataclass
class World:
    mesh: Mesh
    admin: Api
    root: Path
    subjects: dict[str, Subject]
    counter: itertools.count[int] = field(default_factory=itertools.count)

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{next(self.counter)}"

    def folder(self, name: str) -> Path:
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "note.txt").write_text(f"Source matrix note in {name}.\n", encoding="utf-8")
        return folder

    def new_source(self, owner: str) -> str:
        source_id = self.unique("sx-src")
        self.admin.sources.CreateSource(
            source_pb2.CreateSourceRequest(
                source_id=source_id,
                source=source_pb2.Source(path=str(self.folder(source_id)), owner=f"users/{owner}"),
            ),
            timeout=30,
        )
        return source_id

    def source_for(self, subject: Subject, relation: str) -> str:
        """A fresh source in `relation` to the subject (for calls that change it)."""
        if relation == "own":
            return self.new_source(subject.user_id)
        source_id = self.new_source(BYSTANDER)
        if relation == "granted":
            self.admin.sources.SetSourceGrant(
                source_pb2.SetSourceGrantRequest(
                    parent=f"sources/{source_id}",
                    user=f"users/{subject.user_id}",
                    role=source_pb2.SOURCE_ROLE_READER,
                ),
                timeout=30,
            )
        return source_id

    def credential(self, subject: Subject, cred: str) -> str:
        if cred == "none":
            return ""
        if not subject.tokens:
            subject.tokens = login(self.mesh.grpc_target, subject.user_id, PASSWORD).access_token
        if cred == "token":
            return subject.tokens
        if not subject.key:
            owner = api_for(self.mesh.grpc_target, subject.tokens)
            subject.key = owner.api_keys.CreateApiKey(
                api_key_pb2.CreateApiKeyRequest(
                    api_key=api_key_pb2.ApiKey(
                        collections=[f"collections/{subject.collection_id}"],
                        verbs=[
                            api_key_pb2.API_KEY_VERB_READ,
                            api_key_pb2.API_KEY_VERB_WRITE,
                            api_key_pb2.API_KEY_VERB_MANAGE,
                        ],
                    )
                ),
                timeout=30,
            ).secret
            owner.channel.close()
        return subject.key


@pytest.fixture(scope="module")
def world(mesh: Mesh, api: Api, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    world = World(mesh, api, tmp_path_factory.mktemp("source-matrix"), {})
    for user_id in (BYSTANDER, SPARE, *(f"sx-{role}" for role in ROLES)):
        global_role = ROLES.get(user_id.removeprefix("sx-"), user_pb2.ROLE_EDITOR)
        api.users.CreateUser(
            user_pb2.CreateUserRequest(
                user_id=user_id, user=user_pb2.User(role=global_role), password=PASSWORD
            ),
            timeout=60,
        )
    for role in ROLES:
        user_id = f"sx-{role}"
        collection_id = f"sx-col-{role}"
        api.collections.CreateCollection(
            collection_pb2.CreateCollectionRequest(
                collection_id=collection_id, collection=collection_pb2.Collection()
            ),
            timeout=30,
        )
        api.grants.SetGrant(
            grant_pb2.SetGrantRequest(
                parent=f"collections/{collection_id}",
                user=f"users/{user_id}",
                role=grant_pb2.COLLECTION_ROLE_OWNER,
            ),
            timeout=30,
        )
        subject = Subject(user_id, role, collection_id, {})
        subject.sources = {relation: world.source_for(subject, relation) for relation in RELATIONS}
        world.subjects[role] = subject
    yield world


Call = tuple[Callable[[Api], Any], Any]
RequestFactory = Callable[[World, Subject, str], Call]


def _stable(world: World, subject: Subject, relation: str) -> str:
    return subject.sources[relation]


def _delete_grant(world: World, subject: Subject, relation: str) -> Call:
    source_id = subject.sources[relation]
    world.admin.sources.SetSourceGrant(
        source_pb2.SetSourceGrantRequest(
            parent=f"sources/{source_id}",
            user="users/sx-spare",
            role=source_pb2.SOURCE_ROLE_READER,
        ),
        timeout=30,
    )
    return (
        lambda a: a.sources.DeleteSourceGrant,
        source_pb2.DeleteSourceGrantRequest(name=f"sources/{source_id}/grants/sx-spare"),
    )


REQUESTS: dict[str, RequestFactory] = {
    "CreateSource": lambda w, s, r: (
        lambda a: a.sources.CreateSource,
        source_pb2.CreateSourceRequest(
            source_id=w.unique("sx-created"),
            source=source_pb2.Source(path=str(w.folder(w.unique("sx-created-folder")))),
        ),
    ),
    "ListSources": lambda w, s, r: (
        lambda a: a.sources.ListSources,
        source_pb2.ListSourcesRequest(page_size=1000),
    ),
    "GetSource": lambda w, s, r: (
        lambda a: a.sources.GetSource,
        source_pb2.GetSourceRequest(name=f"sources/{_stable(w, s, r)}"),
    ),
    # A fresh source each time: an allowed delete must not disturb the next case.
    "DeleteSource": lambda w, s, r: (
        lambda a: a.sources.DeleteSource,
        source_pb2.DeleteSourceRequest(name=f"sources/{w.source_for(s, r)}"),
    ),
    "SetSourceGrant": lambda w, s, r: (
        lambda a: a.sources.SetSourceGrant,
        source_pb2.SetSourceGrantRequest(
            parent=f"sources/{_stable(w, s, r)}",
            user="users/sx-spare",
            role=source_pb2.SOURCE_ROLE_READER,
        ),
    ),
    "ListSourceGrants": lambda w, s, r: (
        lambda a: a.sources.ListSourceGrants,
        source_pb2.ListSourceGrantsRequest(parent=f"sources/{_stable(w, s, r)}"),
    ),
    "DeleteSourceGrant": _delete_grant,
    "ImportFromSource": lambda w, s, r: (
        lambda a: a.documents.ImportDocuments,
        document_pb2.ImportDocumentsRequest(
            parent=f"collections/{s.collection_id}", source=f"sources/{_stable(w, s, r)}"
        ),
    ),
    "ImportServerPath": lambda w, s, r: (
        lambda a: a.documents.ImportDocuments,
        document_pb2.ImportDocumentsRequest(
            parent=f"collections/{s.collection_id}",
            source_path=str(w.folder(w.unique("sx-server-path"))),
        ),
    ),
}
# What each call needs on the source: READ (use it) or MANAGE (owner).
NEEDS = {
    "GetSource": "read",
    "DeleteSource": "manage",
    "SetSourceGrant": "manage",
    "ListSourceGrants": "manage",
    "DeleteSourceGrant": "manage",
    "ImportFromSource": "read",
}
RELATION_CAN = {"own": {"read", "manage"}, "granted": {"read"}, "foreign": set()}


def expected(call: str, role: str | None, relation: str, cred: str) -> grpc.StatusCode:
    """The promised outcome, from the rules as the issue states them."""
    if role is None:
        return grpc.StatusCode.UNAUTHENTICATED
    if call == "ImportServerPath":
        # Admins, who run the server, signed in as users; never a key.
        return OK if role == "admin" and cred == "token" else DENIED
    if call != "ImportFromSource" and cred == "key":
        return DENIED  # a key's scope is collections: source management needs a user
    if call == "CreateSource":
        return OK if role == "admin" else DENIED
    if call == "ListSources":
        return OK
    can = {"read", "manage"} if role == "admin" else RELATION_CAN[relation]
    if "read" not in can:
        return NOT_FOUND  # a source you may not use is one that does not exist
    return OK if NEEDS[call] in can else DENIED


CASES = [
    (call, role, relation, cred)
    for call in REQUESTS
    for role, relation, cred in [
        *itertools.product(ROLES, RELATIONS, ("token", "key")),
        (None, "foreign", "none"),
    ]
]


def test_every_source_rpc_is_in_the_matrix() -> None:
    rpcs = set(source_pb2.DESCRIPTOR.services_by_name["SourceService"].methods_by_name)
    assert rpcs <= set(REQUESTS), rpcs - set(REQUESTS)


@pytest.mark.parametrize(("call", "role", "relation", "cred"), CASES)
def test_source_matrix(world: World, call: str, role: str | None, relation: str, cred: str) -> None:
    want = expected(call, role, relation, cred)
    subject = world.subjects[role or "viewer"]
    stub, request = REQUESTS[call](world, subject, relation)
    credential = world.credential(subject, cred)
    response, got, detail = outcome(world.mesh.grpc_target, credential, stub, request)
    REPORT["source_matrix_cases"] += 1
    assert got == want, f"{call} as {role}/{relation}/{cred}: {got} {detail}"
    if got == OK and call == "ListSources" and role != "admin":
        listed = {source.name.removeprefix("sources/") for source in response.sources}
        usable = {subject.sources["own"], subject.sources["granted"]}
        assert usable <= listed
        assert subject.sources["foreign"] not in listed, "a foreign source was listed"
        assert all(s.caller_role != source_pb2.SOURCE_ROLE_UNSPECIFIED for s in response.sources)
    if got == NOT_FOUND:
        # The same answer as for a source that does not exist at all.
        assert detail.endswith(" not found"), detail
