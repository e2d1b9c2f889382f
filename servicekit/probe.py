"""`grpc.health.v1` probe for container health checks.

    python -m servicekit.probe HOST:PORT [--service NAME] [--timeout SECONDS]

Exits 0 when the service answers SERVING, 1 otherwise (NOT_SERVING, unknown
service, unreachable, timeout). The empty service name (the default) is the
server's readiness; `--service liveness` only asks whether the process serves.
"""

from __future__ import annotations

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check(target: str, service: str = "", timeout_s: float = 3.0) -> tuple[bool, str]:
    """(serving, what was seen) for one Check call."""
    with grpc.insecure_channel(target) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
            )
        except grpc.RpcError as exc:
            return False, f"{exc.code().name}: {exc.details()}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    return response.status == health_pb2.HealthCheckResponse.SERVING, status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m servicekit.probe", description="grpc.health.v1 Check; exit 0 if SERVING"
    )
    parser.add_argument("target", help="HOST:PORT of the gRPC server")
    parser.add_argument("--service", default="", help='service name (default "": readiness)')
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    args = parser.parse_args(argv)
    serving, seen = check(args.target, args.service, args.timeout)
    if not args.quiet:
        print(f"{args.target} {args.service or '(server)'}: {seen}", file=sys.stderr)
    return 0 if serving else 1


if __name__ == "__main__":
    raise SystemExit(main())
