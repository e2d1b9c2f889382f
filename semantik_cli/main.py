"""`semantik`: index folders, search, and follow operations over the public API.

    semantik index ./docs --collection notes      # creates the collection if needed, waits
    semantik index --source sources/shared-docs --path team --collection notes
    semantik index ./docs --upload --collection notes  # send the files (another machine)
    semantik sources                                   # the sources you may import from
    semantik source-add shared-docs /srv/docs          # admins: register a folder
    semantik source-grant shared-docs --user ann       # let ann import from it
    semantik search "how do wings lift" --collection notes
    semantik operation operations/<id>                 # as JSON
    semantik watch operations/<id>                     # a progress bar until it is done
    semantik cancel operations/<id>
    semantik retry operations/<id>                     # its failed documents, again
    semantik collections
    semantik bootstrap --user admin --token <bootstrap token>   # the first admin, once
    export SEMANTIK_TOKEN=$(semantik login --user admin)        # an access token
    semantik api-key --collection notes --verb read            # prints a new key once

Talks gRPC to `--target` (env `SEMANTIK_TARGET`, default 127.0.0.1:50051),
the gateway or Envoy; both serve the same public services. Calls carry
`SEMANTIK_TOKEN` (an access token) or `SEMANTIK_API_KEY`; passwords come from
`SEMANTIK_PASSWORD` or a prompt.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format

from semantik.v1 import (
    api_key_pb2,
    api_key_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    collection_pb2,
    collection_pb2_grpc,
    document_pb2,
    document_pb2_grpc,
    operation_pb2,
    operation_pb2_grpc,
    search_pb2,
    search_pb2_grpc,
    source_pb2,
    source_pb2_grpc,
    user_pb2,
)
from semantik_cli import upload
from semantik_cli.channels import public_channel
from semantik_cli.progress import progress_line

TIMEOUT_S = 30.0
# An upload streams whole files: its deadline is a bound on a stuck transfer.
UPLOAD_TIMEOUT_S = 3600.0
RECONNECT_CODES = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
RECONNECT_DELAY_S = 1.0


class Client:
    def __init__(self, target: str, credential: str) -> None:
        self.channel = public_channel(target, credential)
        self.auth = auth_pb2_grpc.AuthServiceStub(self.channel)
        self.api_keys = api_key_pb2_grpc.ApiKeyServiceStub(self.channel)
        self.collections = collection_pb2_grpc.CollectionServiceStub(self.channel)
        self.documents = document_pb2_grpc.DocumentServiceStub(self.channel)
        self.operations = operation_pb2_grpc.OperationServiceStub(self.channel)
        self.search = search_pb2_grpc.SearchServiceStub(self.channel)
        self.sources = source_pb2_grpc.SourceServiceStub(self.channel)


def _ensure_collection(client: Client, collection_id: str) -> None:
    name = f"collections/{collection_id}"
    try:
        client.collections.GetCollection(
            collection_pb2.GetCollectionRequest(name=name), timeout=TIMEOUT_S
        )
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.NOT_FOUND:
            raise
        client.collections.CreateCollection(
            collection_pb2.CreateCollectionRequest(
                collection_id=collection_id, collection=collection_pb2.Collection()
            ),
            timeout=TIMEOUT_S,
        )
        print(f"created {name}")


def _follow(client: Client, name: str) -> Any:
    """Draws the operation's progress from WatchOperation until it is done;
    a stream that breaks (a restart, a proxy's idle timeout) is opened again."""
    interactive = sys.stdout.isatty()
    line = ""
    while True:
        try:
            for operation in client.operations.WatchOperation(
                operation_pb2.WatchOperationRequest(name=name)
            ):
                line = progress_line(operation)
                if interactive:
                    print("\r" + line + "\033[K", end="", flush=True)
                if operation.done:
                    print(("\n" if interactive else "") + line)
                    return operation
        except grpc.RpcError as exc:
            if exc.code() not in RECONNECT_CODES:
                raise
        time.sleep(RECONNECT_DELAY_S)


def _report_failures(operation: Any) -> None:
    for error in operation.document_errors:
        print(f"  failed: {error.source_path}: {error.reason}")
    for letter in operation.dead_letters:
        print(f"  dead letter ({letter.attempts} tries): {letter.source_path}: {letter.reason}")
    if operation.document_errors or operation.dead_letters:
        print(f"  retry them with: semantik retry {operation.name}")


def _finished(client: Client, operation: Any, wait: bool) -> int:
    print(f"started {operation.name}")
    if not wait:
        return 0
    finished = _follow(client, operation.name)
    _report_failures(finished)
    return 0 if finished.state == operation_pb2.OPERATION_STATE_SUCCEEDED else 1


def _every(list_page: Callable[..., Any], request: Any, field: str) -> Iterator[Any]:
    """Every item of a paged listing (AIP-158), page after page."""
    while True:
        page = list_page(request, timeout=TIMEOUT_S)
        yield from getattr(page, field)
        if not page.next_page_token:
            return
        request.page_token = page.next_page_token


def _my_sources(client: Client) -> list[Any]:
    """The sources this caller may import from; none for API keys (their
    scope is collections)."""
    try:
        return list(
            _every(
                client.sources.ListSources, source_pb2.ListSourcesRequest(page_size=1000), "sources"
            )
        )
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.PERMISSION_DENIED:
            return []
        raise


def _import_request(client: Client, args: argparse.Namespace) -> Any:
    """Names a source: the one given, else the deepest registered source
    holding the folder (when the server sees this machine's paths), else
    the folder itself, which only an admin may name (it becomes a source)."""
    request = document_pb2.ImportDocumentsRequest(parent=f"collections/{args.collection}")
    if args.source:
        request.source = args.source
        request.path = args.path or ""
        return request
    if not args.folder:
        raise SystemExit("error: name a folder, or --source (and --path)")
    folder = Path(args.folder).resolve()
    holders = [s for s in _my_sources(client) if folder.is_relative_to(s.path)]
    if not holders:
        request.source_path = str(folder)
        return request
    source = max(holders, key=lambda s: len(s.path))
    request.source = source.name
    relative = folder.relative_to(source.path).as_posix()
    request.path = "" if relative == "." else relative
    return request


def _is_admin(client: Client) -> bool:
    try:
        user = client.auth.GetCurrentUser(auth_pb2.GetCurrentUserRequest(), timeout=TIMEOUT_S)
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.PERMISSION_DENIED:
            return False  # an API key: never an admin's server path
        raise
    return bool(user.role == user_pb2.ROLE_ADMIN)


def _not_on_the_server(exc: grpc.RpcError) -> bool:
    """The server has no such folder (this client is on another machine)."""
    return exc.code() == grpc.StatusCode.INVALID_ARGUMENT and "does not exist" in (
        exc.details() or ""
    )


def _upload(client: Client, args: argparse.Namespace) -> int:
    folder = Path(args.folder).resolve()
    if not folder.is_dir():
        raise SystemExit(f"error: {folder} is not a folder")
    parent = f"collections/{args.collection}"
    documents = _every(
        client.documents.ListDocuments,
        document_pb2.ListDocumentsRequest(parent=parent, page_size=1000),
        "documents",
    )
    indexed = upload.indexed_hashes(documents, args.collection)
    files = upload.local_files(folder)
    pending = [f for f in files if indexed.get(f.name) != f.sha256]
    print(f"uploading {len(pending)} of {len(files)} files ({len(files) - len(pending)} indexed)")
    if not pending:
        return 0
    operation = client.documents.UploadDocuments(
        upload.messages(parent, pending), timeout=UPLOAD_TIMEOUT_S
    )
    return _finished(client, operation, not args.no_wait)


def cmd_index(client: Client, args: argparse.Namespace) -> int:
    """A source's folder is imported; a folder no source holds is uploaded,
    except by an admin, whose server path it may be (registered as a source)."""
    _ensure_collection(client, args.collection)
    if args.upload:
        return _upload(client, args)
    request = _import_request(client, args)
    if request.source_path and not _is_admin(client):
        return _upload(client, args)
    try:
        operation = client.documents.ImportDocuments(request, timeout=TIMEOUT_S)
    except grpc.RpcError as exc:
        if not (request.source_path and _not_on_the_server(exc)):
            raise
        return _upload(client, args)
    return _finished(client, operation, not args.no_wait)


def cmd_sources(client: Client, args: argparse.Namespace) -> int:
    for source in _my_sources(client):
        role = source_pb2.SourceRole.Name(source.caller_role).removeprefix("SOURCE_ROLE_")
        print(f"{source.name}\t{role.lower()}\t{source.path}")
    return 0


def cmd_source_add(client: Client, args: argparse.Namespace) -> int:
    source = client.sources.CreateSource(
        source_pb2.CreateSourceRequest(
            source_id=args.id, source=source_pb2.Source(path=str(Path(args.folder).resolve()))
        ),
        timeout=TIMEOUT_S,
    )
    print(f"registered {source.name} at {source.path}")
    return 0


def cmd_source_grant(client: Client, args: argparse.Namespace) -> int:
    role = source_pb2.SOURCE_ROLE_OWNER if args.owner else source_pb2.SOURCE_ROLE_READER
    grant = client.sources.SetSourceGrant(
        source_pb2.SetSourceGrantRequest(
            parent=f"sources/{args.id}", user=f"users/{args.user}", role=role
        ),
        timeout=TIMEOUT_S,
    )
    print(f"{grant.name}: {source_pb2.SourceRole.Name(grant.role)}")
    return 0


def cmd_search(client: Client, args: argparse.Namespace) -> int:
    response = client.search.Search(
        search_pb2.SearchRequest(
            collection=f"collections/{args.collection}", query=args.query, top_k=args.top_k
        ),
        timeout=TIMEOUT_S,
    )
    if args.json:
        print(json_format.MessageToJson(response))
        return 0
    for rank, result in enumerate(response.results, start=1):
        snippet = " ".join(result.text.split())[:160]
        print(f"{rank:>2}. {result.score:.3f}  {result.source_path}")
        print(f"    [{result.start_offset}:{result.end_offset}] {snippet}")
    if not response.results:
        print("no results")
    return 0


def cmd_operation(client: Client, args: argparse.Namespace) -> int:
    operation = client.operations.GetOperation(
        operation_pb2.GetOperationRequest(name=args.name), timeout=TIMEOUT_S
    )
    print(json_format.MessageToJson(operation))
    return 0


def cmd_watch(client: Client, args: argparse.Namespace) -> int:
    finished = _follow(client, args.name)
    _report_failures(finished)
    return 0 if finished.state == operation_pb2.OPERATION_STATE_SUCCEEDED else 1


def cmd_cancel(client: Client, args: argparse.Namespace) -> int:
    operation = client.operations.CancelOperation(
        operation_pb2.CancelOperationRequest(name=args.name), timeout=TIMEOUT_S
    )
    if operation.done:
        print(f"{operation.name} cancelled")
    else:
        print(f"{operation.name} stops after the documents in flight")
    return 0


def cmd_retry(client: Client, args: argparse.Namespace) -> int:
    operation = client.operations.RetryOperation(
        operation_pb2.RetryOperationRequest(name=args.name), timeout=TIMEOUT_S
    )
    return _finished(client, operation, not args.no_wait)


def cmd_collections(client: Client, args: argparse.Namespace) -> int:
    listing = collection_pb2.ListCollectionsRequest()
    for collection in _every(client.collections.ListCollections, listing, "collections"):
        print(
            f"{collection.name}  {collection.document_count} documents, "
            f"{collection.chunk_count} chunks, model {collection.embedding_model}"
        )
    return 0


def _password(prompt: str) -> str:
    return os.environ.get("SEMANTIK_PASSWORD") or getpass.getpass(prompt)


def cmd_bootstrap(client: Client, args: argparse.Namespace) -> int:
    user = client.auth.BootstrapAdmin(
        auth_pb2.BootstrapAdminRequest(
            bootstrap_token=args.token,
            user_id=args.user,
            password=_password(f"new password for {args.user}: "),
        ),
        timeout=TIMEOUT_S,
    )
    print(f"created admin {user.name}")
    return 0


def cmd_login(client: Client, args: argparse.Namespace) -> int:
    tokens = client.auth.Login(
        auth_pb2.LoginRequest(user_id=args.user, password=_password(f"password for {args.user}: ")),
        timeout=TIMEOUT_S,
    )
    print(tokens.access_token)
    return 0


VERBS = {
    "read": api_key_pb2.API_KEY_VERB_READ,
    "write": api_key_pb2.API_KEY_VERB_WRITE,
    "manage": api_key_pb2.API_KEY_VERB_MANAGE,
}


def cmd_api_key(client: Client, args: argparse.Namespace) -> int:
    key = api_key_pb2.ApiKey(
        display_name=args.name,
        collections=[f"collections/{c}" for c in args.collection],
        verbs=[VERBS[v] for v in args.verb],
    )
    if args.expires_in_days:
        key.expire_time.seconds = int(time.time() + args.expires_in_days * 86400)
    created = client.api_keys.CreateApiKey(
        api_key_pb2.CreateApiKeyRequest(api_key=key), timeout=TIMEOUT_S
    )
    print(f"created {created.api_key.name}; the key is shown only now:", file=sys.stderr)
    print(created.secret)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="semantik", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--target",
        default=os.environ.get("SEMANTIK_TARGET", "127.0.0.1:50051"),
        help="gRPC address of the gateway or Envoy",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    index = commands.add_parser("index", help="index a folder into a collection")
    index.add_argument("folder", nargs="?", help="a folder on the server (or in a source)")
    index.add_argument("--source", help="sources/<id>: import from this source")
    index.add_argument("--path", help="with --source: a folder inside it")
    index.add_argument("--collection", required=True)
    index.add_argument("--upload", action="store_true", help="upload the folder's files")
    index.add_argument("--no-wait", action="store_true", help="return once the job is queued")
    index.set_defaults(run=cmd_index)
    sources = commands.add_parser("sources", help="list the sources you may import from")
    sources.set_defaults(run=cmd_sources)
    source_add = commands.add_parser("source-add", help="register a server folder (admins)")
    source_add.add_argument("id")
    source_add.add_argument("folder")
    source_add.set_defaults(run=cmd_source_add)
    source_grant = commands.add_parser("source-grant", help="let a user import from a source")
    source_grant.add_argument("id")
    source_grant.add_argument("--user", required=True)
    source_grant.add_argument("--owner", action="store_true", help="owner, not reader")
    source_grant.set_defaults(run=cmd_source_grant)
    search = commands.add_parser("search", help="search a collection")
    search.add_argument("query")
    search.add_argument("--collection", required=True)
    search.add_argument("-k", "--top-k", type=int, default=10)
    search.add_argument("--json", action="store_true")
    search.set_defaults(run=cmd_search)
    operation = commands.add_parser("operation", help="show an operation")
    operation.add_argument("name", help="operations/<id>")
    operation.set_defaults(run=cmd_operation)
    watch = commands.add_parser("watch", help="follow an operation's progress until it is done")
    watch.add_argument("name", help="operations/<id>")
    watch.set_defaults(run=cmd_watch)
    cancel = commands.add_parser("cancel", help="stop a pending or running operation")
    cancel.add_argument("name", help="operations/<id>")
    cancel.set_defaults(run=cmd_cancel)
    retry = commands.add_parser("retry", help="index again what an operation did not")
    retry.add_argument("name", help="operations/<id>")
    retry.add_argument("--no-wait", action="store_true", help="return once the job is queued")
    retry.set_defaults(run=cmd_retry)
    listing = commands.add_parser("collections", help="list collections")
    listing.set_defaults(run=cmd_collections)
    bootstrap = commands.add_parser("bootstrap", help="create the first admin (once)")
    bootstrap.add_argument("--user", required=True)
    bootstrap.add_argument("--token", required=True, help="the bootstrap token")
    bootstrap.set_defaults(run=cmd_bootstrap)
    signin = commands.add_parser("login", help="print an access token for SEMANTIK_TOKEN")
    signin.add_argument("--user", required=True)
    signin.set_defaults(run=cmd_login)
    key = commands.add_parser("api-key", help="create an API key (printed once)")
    key.add_argument("--collection", action="append", required=True, help="repeatable")
    key.add_argument("--verb", action="append", choices=sorted(VERBS), required=True)
    key.add_argument("--name", default="", help="display name")
    key.add_argument("--expires-in-days", type=float, default=0.0)
    key.set_defaults(run=cmd_api_key)
    args = parser.parse_args(argv)

    credential = os.environ.get("SEMANTIK_TOKEN") or os.environ.get("SEMANTIK_API_KEY", "")
    client = Client(args.target, credential)
    try:
        code: int = args.run(client, args)
    except grpc.RpcError as exc:
        print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 2
    finally:
        client.channel.close()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
