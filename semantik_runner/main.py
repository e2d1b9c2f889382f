"""`semantik-run`: the whole product on this machine, with no containers.

Starts PostgreSQL and Redis (embedded), the four services and Envoy, waits
until every one is ready, prints the addresses, and on Ctrl-C or SIGTERM
stops everything in order. The data directory survives restarts.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from semantik_runner.mesh import Mesh, MeshPorts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="semantik-run", description=__doc__)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("SEMANTIK_DATA_DIR", "data")),
        help="where PostgreSQL, Redis, vectors and logs live (default: ./data)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s semantik-run %(message)s")

    mesh = Mesh(args.data_dir, MeshPorts.from_env())
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    print(f"starting Semantik in {mesh.data_dir} (logs in {mesh.data_dir / 'logs'}) ...")
    try:
        mesh.start()
    except Exception as exc:
        print(f"start failed: {exc}", file=sys.stderr)
        return 1
    print("Semantik is ready.")
    print(f"  JSON API (Envoy): {mesh.json_url}")
    print(f"  gRPC (gateway):   {mesh.grpc_target}")
    print(f"  gRPC via Envoy:   127.0.0.1:{mesh.ports.envoy}")
    print(f"  HTTPS (Envoy):    {mesh.json_tls_url} (certificate {mesh.envoy.tls_cert})")
    if mesh.first_start:
        # Printed at the first start only; it is kept in
        # <data>/secrets/bootstrap-token and is spent once an admin exists.
        print("First start: create the admin account with this one-time bootstrap token:")
        print(f"  semantik bootstrap --user admin --token {mesh.bootstrap_token}")
    print("Press Ctrl-C to stop.")
    code = 0
    while not stop.wait(1.0):
        failed = mesh.failed_child()
        if failed is not None:
            print(f"{failed} exited unexpectedly; stopping (see logs)", file=sys.stderr)
            code = 1
            break
    print("stopping ...")
    mesh.stop()
    print("stopped.")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
