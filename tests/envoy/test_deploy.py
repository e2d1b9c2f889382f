"""Deployment files agree with the template, the code and each other.

No Docker engine or cluster is needed: the rendered Envoy configs are checked
by the real Envoy in validate mode, the rest structurally.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # no types-PyYAML in the pins

from semantik_runner.envoy import (
    DESCRIPTOR_PATH,
    PUBLIC_SERVICES,
    EdgeSettings,
    check_descriptor,
    envoy_binary,
    render_config,
    render_k8s_configmap,
    render_preset,
)
from semantik_runner.tls import ensure_dev_certificate

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


def _validate(config: dict[str, Any], tmp_path: Path) -> None:
    """`envoy --mode validate` on `config`, with files that exist on this machine."""
    listeners = config["static_resources"]["listeners"]
    for listener in listeners:
        for chain in listener["filter_chains"]:
            # The deployed paths are inside the container; validate with ours.
            manager = chain["filters"][0]["typed_config"]
            for http_filter in manager["http_filters"]:
                if http_filter["name"].endswith("grpc_json_transcoder"):
                    assert http_filter["typed_config"]["services"] == list(PUBLIC_SERVICES)
                    http_filter["typed_config"]["proto_descriptor"] = str(DESCRIPTOR_PATH)
            if "transport_socket" in chain:
                cert, key = ensure_dev_certificate(tmp_path / "secrets")
                context = chain["transport_socket"]["typed_config"]["common_tls_context"]
                [pair] = context["tls_certificates"]
                pair["certificate_chain"]["filename"] = str(cert)
                pair["private_key"]["filename"] = str(key)
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


def _listeners(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {listener["name"]: listener for listener in config["static_resources"]["listeners"]}


@pytest.mark.parametrize("preset", ["compose", "k8s"])
@pytest.mark.parametrize("tls", [False, True])
def test_envoy_accepts_the_deployed_configs(preset: str, tls: bool, tmp_path: Path) -> None:
    config = yaml.safe_load(render_preset(preset, tls=tls))
    _validate(config, tmp_path)
    # The admin interface never leaves the loopback interface.
    assert config["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    listeners = _listeners(config)
    assert sorted(listeners) == (["public", "public_tls"] if tls else ["public"])
    if tls:
        tls_listener = listeners["public_tls"]
        assert tls_listener["address"]["socket_address"]["port_value"] == 8443
        [chain] = tls_listener["filter_chains"]
        context = chain["transport_socket"]["typed_config"]["common_tls_context"]
        assert context["alpn_protocols"] == ["h2", "http/1.1"]
        # One connection manager for both listeners: same routes, limits and filters.
        [plain_chain] = listeners["public"]["filter_chains"]
        assert chain["filters"] == plain_chain["filters"]


def test_envoy_accepts_every_option(tmp_path: Path) -> None:
    cert, key = ensure_dev_certificate(tmp_path / "dev")
    settings = EdgeSettings(
        rate_limit_per_address=7,
        rate_limit_per_address_burst=9,
        rate_limit_per_key=3,
        rate_limit_per_key_burst=3,
        rate_limit_interval_s=0.5,
        rate_limit_max_clients=50,
        cors_origins=("https://a.example", "http://localhost:3000"),
        max_request_bytes=1024,
        max_request_headers_kb=8,
        route_timeout_s=5,
        stream_idle_timeout_s=30,
        request_headers_timeout_s=2,
        trusted_proxy_hops=1,
    )
    text = render_config(
        tls_port=8443, tls_cert=cert, tls_key=key, access_log=True, **settings.render_kwargs()
    )
    config = yaml.safe_load(text)
    _validate(config, tmp_path)
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    manager = manager["typed_config"]
    assert manager["max_request_headers_kb"] == 8
    assert manager["stream_idle_timeout"] == "30s"
    assert manager["request_headers_timeout"] == "2s"
    assert manager["xff_num_trusted_hops"] == 1
    cors = manager["route_config"]["virtual_hosts"][0]["typed_per_filter_config"]
    assert cors["envoy.filters.http.cors"]["allow_origin_string_match"] == [
        {"exact": "https://a.example"},
        {"exact": "http://localhost:3000"},
    ]
    filters = {f["name"]: f["typed_config"] for f in manager["http_filters"]}
    limits = filters["envoy.filters.http.local_ratelimit"]
    assert limits["rate_limited_as_resource_exhausted"] is True
    assert limits["max_dynamic_descriptors"] == 50
    buckets = {
        tuple(entry["key"] for entry in d["entries"]): d["token_bucket"]
        for d in limits["descriptors"]
    }
    assert buckets[("remote_address",)] == {
        "max_tokens": 9,
        "tokens_per_fill": 7,
        "fill_interval": "0.5s",
    }
    assert buckets[("api_key",)]["max_tokens"] == 3
    assert buckets[("api_key_absent", "bearer")]["max_tokens"] == 3
    assert (
        filters["envoy.filters.http.buffer"]["extension_config"]["typed_config"][
            "max_request_bytes"
        ]
        == 1024
    )


def test_edge_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SEMANTIK_"):
            monkeypatch.delenv(name)
    assert EdgeSettings.from_env() == EdgeSettings()
    monkeypatch.setenv("SEMANTIK_RATE_LIMIT_PER_ADDRESS", "10")
    monkeypatch.setenv("SEMANTIK_RATE_LIMIT_PER_KEY", "4")
    monkeypatch.setenv("SEMANTIK_RATE_LIMIT_BURST", "3")
    monkeypatch.setenv("SEMANTIK_CORS_ORIGINS", "https://a.example, https://b.example:8443,")
    monkeypatch.setenv("SEMANTIK_MAX_REQUEST_BYTES", "2048")
    monkeypatch.setenv("SEMANTIK_TLS_CERT", "/etc/tls/c.pem")
    monkeypatch.setenv("SEMANTIK_TLS_KEY", "/etc/tls/k.pem")
    settings = EdgeSettings.from_env()
    assert (settings.rate_limit_per_address, settings.rate_limit_per_address_burst) == (10, 30)
    assert (settings.rate_limit_per_key, settings.rate_limit_per_key_burst) == (4, 12)
    assert settings.cors_origins == ("https://a.example", "https://b.example:8443")
    assert settings.max_request_bytes == 2048
    assert (settings.tls_cert, settings.tls_key) == (Path("/etc/tls/c.pem"), Path("/etc/tls/k.pem"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cors_origins": ["https://a.example/path"]},
        {"cors_origins": ["*"]},
        {"cors_origins": "https://a.example"},
        {"rate_limit_per_key": 0},
        {"rate_limit_per_address": 10, "rate_limit_per_address_burst": 5},
        {"rate_limit_interval_s": 0.01},
        {"max_request_headers_kb": 0},
        {"tls_port": 8443},
    ],
)
def test_bad_options_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        render_config(**kwargs)


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
