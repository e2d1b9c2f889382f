"""Deployment files agree with the template, the code and each other.

No Docker engine or cluster is needed: the rendered Envoy configs are checked
by the real Envoy in validate mode, the rest structurally.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # no types-PyYAML in the pins

from semantik_runner.envoy import (
    DESCRIPTOR_PATH,
    PUBLIC_SERVICES,
    check_descriptor,
    envoy_binary,
    render_k8s_configmap,
    render_preset,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
COMPOSE = DEPLOY / "compose" / "docker-compose.yml"
PORTS = {"gateway": 50051, "embedder": 50052, "indexer": 50053, "metadata": 50054}


def _load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def test_rendered_copies_match_the_template() -> None:
    compose_copy = (DEPLOY / "compose" / "envoy.yaml").read_text(encoding="utf-8")
    assert compose_copy == render_preset("compose"), "re-render deploy/compose/envoy.yaml"
    k8s_copy = (DEPLOY / "k8s" / "envoy-config.yaml").read_text(encoding="utf-8")
    assert k8s_copy == render_k8s_configmap(), "re-render deploy/k8s/envoy-config.yaml"
    [configmap] = _load_all(DEPLOY / "k8s" / "envoy-config.yaml")
    assert configmap["data"]["envoy.yaml"] == render_preset("k8s")


@pytest.mark.parametrize("preset", ["compose", "k8s"])
def test_envoy_accepts_the_deployed_configs(preset: str, tmp_path: Path) -> None:
    config = yaml.safe_load(render_preset(preset))
    # The deployed descriptor path is inside the container; validate with ours.
    filters = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
    http_filters = filters[0]["typed_config"]["http_filters"]
    [transcoder] = [f for f in http_filters if f["name"].endswith("grpc_json_transcoder")]
    assert transcoder["typed_config"]["services"] == list(PUBLIC_SERVICES)
    transcoder["typed_config"]["proto_descriptor"] = str(DESCRIPTOR_PATH)
    path = tmp_path / "envoy.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = subprocess.run(
        [str(envoy_binary()), "--mode", "validate", "-c", str(path), "--log-level", "warn"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The admin interface never leaves the loopback interface.
    assert config["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"


def test_descriptor_has_public_services_and_error_details() -> None:
    check_descriptor(DESCRIPTOR_PATH)


def test_compose_services_probe_their_own_ports() -> None:
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    services = compose["services"]
    for name, port in PORTS.items():
        service = services[name]
        assert service["command"] == ["python", "-m", f"services.{name}"]
        assert service["environment"][f"{name.upper()}_ADDRESS"] == f"0.0.0.0:{port}"
        assert service["healthcheck"]["test"][-1] == f"127.0.0.1:{port}"
        assert service["user"] == "1000:1000"
        assert service["read_only"] is True
        assert "limits" in service["deploy"]["resources"]
    assert services["worker"]["command"] == ["python", "-m", "services.indexer.worker"]
    assert services["indexer"]["environment"]["INDEXER_RUN_WORKER"] == "false"
    # Only Envoy is published.
    assert [name for name, service in services.items() if "ports" in service] == ["envoy"]
    envoy_mounts = services["envoy"]["volumes"]
    assert "./envoy.yaml:/etc/envoy/envoy.yaml:ro" in envoy_mounts
    assert "../../gen/envoy/api.binpb:/etc/envoy/api.binpb:ro" in envoy_mounts


def test_compose_gpu_override_reserves_a_gpu() -> None:
    override = yaml.safe_load((DEPLOY / "compose" / "docker-compose.gpu.yml").read_text())
    embedder = override["services"]["embedder"]
    [device] = embedder["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert "gpu" in device["capabilities"]
    assert embedder["environment"]["DEFAULT_QUANTIZATION"].endswith("float16}")


def test_k8s_deployments_probe_readiness_and_liveness() -> None:
    seen = set()
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in _load_all(path):
            assert "kind" in doc, f"{path.name}: kubectl apply -f needs a kind"
            if doc["kind"] != "Deployment" or doc["metadata"]["name"] not in PORTS:
                continue
            name = doc["metadata"]["name"]
            port = PORTS[name]
            pod = doc["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            [container] = pod["containers"]
            assert container["command"] == ["python", "-m", f"services.{name}"]
            assert container["readinessProbe"]["grpc"] == {"port": port, "service": ""}
            assert container["livenessProbe"]["grpc"] == {"port": port, "service": "liveness"}
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert {"requests", "limits"} <= set(container["resources"])
            seen.add(name)
    assert seen == set(PORTS)
