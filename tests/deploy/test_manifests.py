"""deploy/: the Kubernetes manifests against the API schemas, and the files against the server's settings."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from museforge.config import Settings, load_settings

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
        "StatefulSet",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }


@pytest.mark.parametrize("workload", ["deployment.yaml", "jobs.yaml"])
def test_the_configmap_is_a_valid_museforge_config_that_matches_the_pods(workload: str) -> None:
    [config_map] = documents(DEPLOY / "k8s" / "configmap.yaml")
    settings = Settings.model_validate(tomllib.loads(config_map["data"]["museforge.toml"]))
    assert settings.auth and settings.tls_cert and settings.metrics_address.endswith(":8002")
    [pod_owner] = documents(DEPLOY / "k8s" / workload)
    spec = pod_owner["spec"]["template"]["spec"]
    container = spec["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    port_of = {"grpc": settings.address, "http": settings.http_address, "metrics": settings.metrics_address}
    assert ports == {name: int(address.rsplit(":", 1)[1]) for name, address in port_of.items()}
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        # TLS is on: the probe must go through `museforge health` (the built-in gRPC probe is plaintext).
        command = container[probe]["exec"]["command"]
        assert command[:2] == ["museforge", "health"] and f"127.0.0.1:{ports['grpc']}" in command
        assert str(Path(command[command.index("--tls-ca") + 1]).parent) in mounts
        assert container[probe].get("timeoutSeconds", 1) >= 5, probe  # the command takes seconds when busy
    for path in (settings.api_keys_file, settings.tls_cert, settings.tls_key):
        assert str(Path(path).parent) in mounts, path
    assert {settings.data_dir, *settings.job_input_roots, *settings.job_output_roots} <= mounts
    assert spec["terminationGracePeriodSeconds"] >= settings.grace_seconds + 20  # drain, then stop jobs
    env = {e["name"]: e["value"] for e in container.get("env", [])}
    if pod_owner["kind"] == "Deployment":  # an emptyDir per replica: jobs are refused there, not lost
        data = next(v for v in spec["volumes"] if v["name"] == next(
            m["name"] for m in container["volumeMounts"] if m["mountPath"] == settings.data_dir))
        assert "emptyDir" in data and env.get("MUSEFORGE_JOB_INPUT_ROOTS") == ""
    if pod_owner["kind"] == "StatefulSet":  # the job store must outlive the pod
        [claim] = pod_owner["spec"]["volumeClaimTemplates"]
        data_mount = next(m for m in container["volumeMounts"] if m["mountPath"] == settings.data_dir)
        assert claim["metadata"]["name"] == data_mount["name"] and pod_owner["spec"]["replicas"] == 1


def test_the_health_command_the_probes_run_works_over_tls(tmp_path: Path) -> None:
    import subprocess

    from tests.core.certs import make_pki
    from tests.servers import ServerThread

    paths = make_pki().write(tmp_path)
    settings = Settings(
        address="127.0.0.1:0",
        plugins=[],
        tls_cert=str(paths["server_cert"]),
        tls_key=str(paths["server_key"]),
    )
    with ServerThread(settings) as server:
        port = server.address.rsplit(":", 1)[1]
        command = [
            sys.executable,
            "-m",
            "museforge.cli",
            "health",
            "--server",
            f"127.0.0.1:{port}",
            "--tls-ca",
            str(paths["ca_cert"]),
            "--tls-server-name",
            "localhost",
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and result.stdout.strip() == "SERVING", result.stderr
        plain = subprocess.run(command[:6], capture_output=True, text=True, timeout=60)
        assert plain.returncode != 0  # without TLS the port does not answer


def test_compose_and_ray_config_use_real_settings() -> None:
    [compose] = documents(DEPLOY / "compose.yaml")
    service = compose["services"]["museforge"]
    env = service["environment"]
    settings = load_settings(environ={key: str(value) for key, value in env.items()})  # as serve reads them
    assert settings.job_input_roots == ["/plates"]
    # The gateway is 0.0.0.0 in the container: without API keys it is told the host's loopback names.
    assert set(settings.http_allowed_hosts) == {"localhost", "127.0.0.1", "[::1]"}
    assert all(port.startswith("127.0.0.1:") for port in service["ports"])  # insecure only on loopback
    # A healthcheck that reads the status (NOT_SERVING during a drain fails it), and a stop
    # that waits longer than the drain.
    assert service["healthcheck"]["test"][1:3] == ["museforge", "health"]
    assert int(service["stop_grace_period"].removesuffix("s")) > Settings().grace_seconds
    [cluster] = documents(DEPLOY / "ray" / "cluster.yaml")
    # The nodes install the job server's own build (museforge is installed from source).
    assert any(".whl" in command and "[ray]" in command for command in cluster["setup_commands"])
    assert "./wheel" in cluster["file_mounts"].values()


def test_the_readme_makes_the_secret_the_pods_read() -> None:
    [secret] = documents(DEPLOY / "k8s" / "secret.yaml")
    readme = (DEPLOY / "README.md").read_text("utf-8")
    command = readme[readme.index("kubectl create secret"):].split("\n\n", 1)[0]
    for key in secret["stringData"]:
        assert f"--from-file={key}=" in command, key


@pytest.mark.parametrize("dockerfile", ["Dockerfile.cpu", "Dockerfile.cuda"])
def test_images_run_as_a_user_and_serve_what_the_manifests_expect(dockerfile: str) -> None:
    text = (DEPLOY / dockerfile).read_text("utf-8")
    assert "USER museforge" in text and "EXPOSE 50051 8002" in text
    assert '"--metrics-address", "0.0.0.0:8002"' in text
