"""`python -m services.embedder` as the runner starts it: real bootstrap, env, signals."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from semantik.internal.v1 import embedder_pb2, embedder_pb2_grpc
from semantik_runner.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


async def start(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.embedder",
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TORCH_NUM_THREADS": "1", **env},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_process_serves_after_warm_up_and_stops_on_sigterm() -> None:
    address = f"127.0.0.1:{free_port()}"
    process = await start({"EMBEDDER_ADDRESS": address})
    statuses: list[int] = []
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            async with asyncio.timeout(90):
                while not statuses or statuses[-1] != health_pb2.HealthCheckResponse.SERVING:
                    try:
                        answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=2)
                    except grpc.aio.AioRpcError:  # not listening yet
                        await asyncio.sleep(0.05)
                        continue
                    if not statuses or statuses[-1] != answer.status:
                        statuses.append(answer.status)
                    await asyncio.sleep(0.05)
            stub = embedder_pb2_grpc.EmbedderServiceStub(channel)
            answer = await stub.Embed(embedder_pb2.EmbedRequest(texts=["hello"]), timeout=10)
            assert len(answer.embeddings[0].values) == 384
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    # The model loads for seconds after the port opens: NOT_SERVING first.
    assert statuses == [
        health_pb2.HealthCheckResponse.NOT_SERVING,
        health_pb2.HealthCheckResponse.SERVING,
    ]


async def test_unsupported_precision_refuses_to_start() -> None:
    process = await start(
        {
            "EMBEDDER_ADDRESS": f"127.0.0.1:{free_port()}",
            "EMBEDDER_DEVICE": "cpu",
            "DEFAULT_QUANTIZATION": "float16",
        }
    )
    async with asyncio.timeout(60):
        _, stderr = await process.communicate()
    assert process.returncode == 2
    assert b"DEFAULT_QUANTIZATION=float16 is not supported on cpu: CPU kernels" in stderr
