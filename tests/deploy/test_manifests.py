"""deploy/: the Kubernetes manifests against the API schemas, and the files against the server's settings."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from museforge.config import Settings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KUBERNETES = "1.30.0"  # the oldest release we promise to deploy on


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text("utf-8")) if d]


@pytest.mark.parametrize("manifest", sorted((DEPLOY / "k8s").glob("*.yaml")), ids=lambda p: p.name)
def test_every_manifest_is_valid_kubernetes(manifest: Path) -> None:
    for document in documents(manifest):
        kubernetes_validate.validate(document, KUBERNETES, strict=True)  # raises on any error


def test_the_kubernetes_set_is_complete() -> None:
    kinds = {d["kind"] for path in (DEPLOY / "k8s").glob("*.yaml") for d in documents(path)}
    assert kinds == {
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }


def test_the_configmap_is_a_valid_museforge_config_that_matches_the_pod() -> None:
    [config_map] = documents(DEPLOY / "k8s" / "configmap.yaml")
    settings = Settings.model_validate(tomllib.loads(config_map["data"]["museforge.toml"]))
    assert settings.auth and settings.tls_cert and settings.metrics_address.endswith(":8002")
    [deployment] = documents(DEPLOY / "k8s" / "deployment.yaml")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": int(settings.address.rsplit(":", 1)[1]), "metrics": 8002}
    assert container["readinessProbe"]["grpc"]["port"] == ports["grpc"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    for path in (settings.api_keys_file, settings.tls_cert, settings.tls_key):
        assert str(Path(path).parent) in mounts, path
    assert {settings.data_dir, *settings.job_input_roots, *settings.job_output_roots} <= mounts
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > settings.grace_seconds  # Kubernetes must not kill a draining server


def test_compose_and_ray_config_use_real_settings() -> None:
    [compose] = documents(DEPLOY / "compose.yaml")
    service = compose["services"]["museforge"]
    env = service["environment"]
    overrides = {key.removeprefix("MUSEFORGE_").lower(): value for key, value in env.items()}
    Settings.model_validate({k: ([v] if k.endswith("_roots") else v) for k, v in overrides.items()})
    assert all(port.startswith("127.0.0.1:") for port in service["ports"])  # insecure only on loopback
    [cluster] = documents(DEPLOY / "ray" / "cluster.yaml")
    assert any("museforge[ray]" in command for command in cluster["setup_commands"])


@pytest.mark.parametrize("dockerfile", ["Dockerfile.cpu", "Dockerfile.cuda"])
def test_images_run_as_a_user_and_serve_what_the_manifests_expect(dockerfile: str) -> None:
    text = (DEPLOY / dockerfile).read_text("utf-8")
    assert "USER museforge" in text and "EXPOSE 50051 8002" in text
    assert '"--metrics-address", "0.0.0.0:8002"' in text
