"""Authentication, scopes, TLS and mutual TLS, and the safe-bind rule, on real servers."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from museforge.client import Client
from museforge.config import Settings
from museforge.inference import grpc_service_pb2 as oip
from museforge.inference import grpc_service_pb2_grpc as oip_grpc
from museforge.server.auth import KeyFile
from museforge.server.unsafe_setup import UnsafeSetup
from museforge.v1 import jobs_pb2
from tests.core.certs import Pki, make_pki
from tests.servers import ServeProcess, ServerThread, code_of


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("keys") / "api_keys.json"
    store = KeyFile(path)
    made = {
        name: store.create(name, scopes)[0]
        for name, scopes in (
            ("generate", ["generate"]),
            ("jobs", ["jobs"]),
            ("infer", ["infer"]),
            ("admin", ["admin"]),
        )
    }
    revoked, record = store.create("revoked", ["admin"])
    store.revoke(record.id)
    made["revoked"] = revoked
    return path, made


@pytest.fixture(scope="module")
def guarded(keys: tuple[Path, dict[str, str]]) -> Iterator[ServerThread]:
    settings = Settings(address="127.0.0.1:0", http_address="127.0.0.1:0", auth=True,
                        api_keys_file=str(keys[0]), plugins=["image"])
    with ServerThread(settings) as server:
        yield server


def infer_request() -> oip.ModelInferRequest:
    request = oip.ModelInferRequest(model_name="image.digits")
    for name, shape, dtype in (("z", [1, 100], np.float32), ("label", [1], np.int64)):
        tensor = request.inputs.add(
            name=name, datatype="FP32" if dtype == np.float32 else "INT64", shape=shape
        )
        data = np.zeros(shape, dtype).ravel().tolist()
        (tensor.contents.fp32_contents if dtype == np.float32 else tensor.contents.int64_contents).extend(
            data
        )
    return request


def test_every_service_needs_a_key_with_the_right_scope(
    guarded: ServerThread, keys: tuple[Path, dict[str, str]]
) -> None:
    made = keys[1]

    def calls(client: Client) -> dict[str, object]:
        infer = oip_grpc.GRPCInferenceServiceStub(client.channel)
        return {
            "list": lambda: client.generators(),
            "generate": lambda: client.generate("image.digits", {"digit": 3}, seed=1),
            "jobs": lambda: client.list_jobs(),
            "infer": lambda: infer.ModelInfer(infer_request(), timeout=30),
            "metadata": lambda: infer.ModelMetadata(
                oip.ModelMetadataRequest(name="image.digits"), timeout=30
            ),
        }

    ok, denied, unknown = (
        grpc.StatusCode.OK,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
    )
    expected = {
        None: dict.fromkeys(("list", "generate", "jobs", "infer", "metadata"), unknown),
        "revoked": dict.fromkeys(("list", "generate", "jobs", "infer", "metadata"), unknown),
        "generate": {"list": ok, "generate": ok, "jobs": denied, "infer": denied, "metadata": ok},
        "jobs": {"list": ok, "generate": denied, "jobs": ok, "infer": denied, "metadata": ok},
        "infer": {"list": ok, "generate": denied, "jobs": denied, "infer": ok, "metadata": ok},
        "admin": dict.fromkeys(("list", "generate", "jobs", "infer", "metadata"), ok),
    }
    for who, outcomes in expected.items():
        with Client(guarded.address, timeout=60, api_key=made[who] if who else None) as client:
            got = {name: code_of(call) for name, call in calls(client).items()}
        assert got == outcomes, who
    # Reflection (what grpcurl lists services with) is a listing: any key's, a generate key's too.
    for who, outcome in ((None, unknown), ("generate", ok), ("jobs", ok)):
        with Client(guarded.address, timeout=60, api_key=made[who] if who else None) as client:
            listing = reflection_pb2_grpc.ServerReflectionStub(client.channel).ServerReflectionInfo
            asked = [reflection_pb2.ServerReflectionRequest(list_services="")]
            assert code_of(partial(lambda call, ask: list(call(iter(ask))), listing, asked)) == outcome, who
    with Client(guarded.address, timeout=30, api_key=made["admin"][:-2] + "xx") as client:
        assert code_of(client.generators) == unknown  # a key's id with a wrong secret


def test_health_stays_open_and_reflection_needs_a_key(guarded: ServerThread) -> None:
    with grpc.insecure_channel(guarded.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        with pytest.raises(grpc.RpcError) as caught:
            list(reflection.ServerReflectionInfo(iter([request])))
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # The OIP's liveness and readiness are health checks too (what /v2/health/* probes ask);
        # the rest of that service is not.
        infer = oip_grpc.GRPCInferenceServiceStub(channel)
        assert infer.ServerLive(oip.ServerLiveRequest(), timeout=30).live
        assert infer.ServerReady(oip.ServerReadyRequest(), timeout=30).ready
        with pytest.raises(grpc.RpcError) as caught:
            infer.ServerMetadata(oip.ServerMetadataRequest(), timeout=30)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert guarded.running is not None and guarded.running.gateway is not None
    base = f"http://{guarded.running.gateway.address}"
    for path in ("/v2/health/live", "/v2/health/ready"):
        with urllib.request.urlopen(base + path, timeout=30) as reply:
            assert reply.status == 200, path
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(base + "/v2", timeout=30)
    assert refused.value.code == 401


def test_auth_without_keys_refuses_to_start(tmp_path: Path) -> None:
    settings = Settings(
        address="127.0.0.1:0", auth=True, api_keys_file=str(tmp_path / "none.json"), plugins=[]
    )
    with pytest.raises(UnsafeSetup, match="holds no API key"), ServerThread(settings):
        pass


def test_keys_cli_creates_lists_and_revokes(tmp_path: Path) -> None:
    env = {**os.environ, "MUSEFORGE_API_KEYS_FILE": str(tmp_path / "keys.json")}

    def museforge(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "museforge.cli", "keys", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )

    created = museforge("create", "--scopes", "generate,jobs", "--name", "farm")
    key = created.stdout.strip()
    assert created.returncode == 0 and key.startswith("mf_")
    stored = (tmp_path / "keys.json").read_text()
    assert key not in stored and key.split("_")[1] in stored  # the digest and id, never the key
    listing = museforge("list")
    assert "farm" in listing.stdout and "generate,jobs" in listing.stdout and key not in listing.stdout
    assert museforge("create", "--scopes", "root").returncode == 2
    assert museforge("revoke", key.split("_")[1]).returncode == 0
    assert museforge("revoke", "nope").returncode == 1
    assert "farm" not in museforge("list").stdout


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Pki, dict[str, Path]]:
    made = make_pki()
    return made, made.write(tmp_path_factory.mktemp("pki"))


def tls_settings(paths: dict[str, Path], mutual: bool) -> Settings:
    return Settings(
        address="127.0.0.1:0",
        plugins=["image"],
        tls_cert=str(paths["server_cert"]),
        tls_key=str(paths["server_key"]),
        tls_client_ca=str(paths["ca_cert"]) if mutual else "",
    )


def reachable(address: str, **tls: bytes | bool | None) -> grpc.StatusCode:
    with Client(address, timeout=10, **tls) as client:
        return code_of(client.plugins)


def test_tls_serves_only_clients_that_trust_it(pki: tuple[Pki, dict[str, Path]]) -> None:
    made, paths = pki
    with ServerThread(tls_settings(paths, mutual=False)) as server:
        assert reachable(server.address, tls_ca=made.ca.cert) == grpc.StatusCode.OK
        assert reachable(server.address) == grpc.StatusCode.UNAVAILABLE  # plaintext to a TLS port
        assert reachable(server.address, tls_ca=made.foreign_ca.cert) == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_needs_a_current_certificate_from_the_ca(pki: tuple[Pki, dict[str, Path]]) -> None:
    made, paths = pki
    with ServerThread(tls_settings(paths, mutual=True)) as server:
        good = {"tls_ca": made.ca.cert, "tls_cert": made.client.cert, "tls_key": made.client.key}
        assert reachable(server.address, **good) == grpc.StatusCode.OK
        assert reachable(server.address, tls_ca=made.ca.cert) == grpc.StatusCode.UNAVAILABLE
        for pem in (made.expired_client, made.foreign_client):
            assert (
                reachable(server.address, tls_ca=made.ca.cert, tls_cert=pem.cert, tls_key=pem.key)
                == grpc.StatusCode.UNAVAILABLE
            )


def test_the_command_line_says_a_refused_handshake_may_want_a_client_certificate(
        pki: tuple[Pki, dict[str, Path]]) -> None:
    from tests.core.test_cli import museforge

    _, paths = pki
    with ServerThread(tls_settings(paths, mutual=True)) as server:
        refused = museforge("generators", "--server", server.address, "--tls-ca", str(paths["ca_cert"]))
    assert refused.returncode == 3, refused.stderr
    assert "TLS handshake" in refused.stderr and "--tls-cert" in refused.stderr  # not "no server answered"


def test_the_command_line_says_which_side_of_a_tls_connection_is_wrong(
        pki: tuple[Pki, dict[str, Path]], tmp_path: Path) -> None:
    from tests.core.test_cli import museforge

    made, paths = pki
    foreign = tmp_path / "foreign.pem"
    foreign.write_bytes(made.foreign_ca.cert)
    with ServerThread(tls_settings(paths, mutual=False)) as server:
        for flags, said in (
                ([], "if it serves TLS, give --tls-ca"),
                (["--tls-ca", str(foreign)], "not signed by the CA given in --tls-ca"),
                (["--tls-ca", str(paths["ca_cert"]), "--tls-cert", str(paths["client_cert"]),
                  "--tls-key", str(paths["server_key"])], "its own private key")):
            result = museforge("generators", "--server", server.address, *flags)
            assert result.returncode == 3 and said in result.stderr, (flags, result.stderr)


def test_tls_settings_that_cannot_work_are_refused(pki: tuple[Pki, dict[str, Path]], tmp_path: Path) -> None:
    _, paths = pki
    for settings, words in (
        (Settings(address="127.0.0.1:0", plugins=[], tls_cert=str(paths["server_cert"])), "go together"),
        (Settings(address="127.0.0.1:0", plugins=[], tls_client_ca=str(paths["ca_cert"])), "needs tls_cert"),
        (
            Settings(
                address="127.0.0.1:0",
                plugins=[],
                tls_cert=str(tmp_path / "no.pem"),
                tls_key=str(tmp_path / "no.key"),
            ),
            "cannot read tls_cert",
        ),
    ):
        with pytest.raises(UnsafeSetup, match=words), ServerThread(settings):
            pass


def test_serving_beyond_loopback_needs_tls_and_keys_or_insecure(
    pki: tuple[Pki, dict[str, Path]], keys: tuple[Path, dict[str, str]]
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "museforge.cli", "serve", "--address", "0.0.0.0:0", "--plugins", ""],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "refusing to serve on 0.0.0.0 without TLS (tls_cert, tls_key) and authentication" in result.stderr
    with ServeProcess("--address", "0.0.0.0:0", "--plugins", "", "--insecure") as server:  # the way out
        assert server.address
    _, paths = pki
    env = {
        "MUSEFORGE_TLS_CERT": str(paths["server_cert"]),
        "MUSEFORGE_TLS_KEY": str(paths["server_key"]),
        "MUSEFORGE_AUTH": "true",
        "MUSEFORGE_API_KEYS_FILE": str(keys[0]),
    }
    with ServeProcess("--address", "0.0.0.0:0", "--plugins", "", env=env) as server:  # TLS and keys: fine
        assert server.address.startswith("0.0.0.0:")


def test_jobs_need_the_jobs_scope_even_to_watch(
    guarded: ServerThread, keys: tuple[Path, dict[str, str]]
) -> None:
    with Client(guarded.address, timeout=30, api_key=keys[1]["generate"]) as client:
        assert code_of(lambda: list(client.watch_job("jobs/x"))) == grpc.StatusCode.PERMISSION_DENIED
        assert code_of(lambda: client.submit_job(jobs_pb2.JobSpec())) == grpc.StatusCode.PERMISSION_DENIED


def test_a_client_certificate_needs_its_key() -> None:
    with pytest.raises(ValueError, match="both tls_cert and tls_key"):
        Client("127.0.0.1:1", tls_key=b"key only")


def test_method_names_cannot_be_probed_without_a_key(
    guarded: ServerThread, keys: tuple[Path, dict[str, str]]
) -> None:
    channel: Any  # raw bytes in and out: no serializers
    with grpc.insecure_channel(guarded.address) as channel:
        for method in ("/museforge.v1.Museforge/Generate", "/museforge.v1.Museforge/Nope", "/no.Such/Method"):
            assert code_of(lambda m=method: channel.unary_unary(m)(b"", timeout=10)) == \
                grpc.StatusCode.UNAUTHENTICATED
        admin = [("authorization", f"Bearer {keys[1]['admin']}")]
        assert code_of(lambda: channel.unary_unary("/no.Such/Method")(b"", metadata=admin, timeout=10)) == \
            grpc.StatusCode.UNIMPLEMENTED


def _change_keys(role: str, path: str, start: Any) -> None:
    keys = KeyFile(Path(path))
    start.wait()
    if role == "revoke":
        keys.revoke(next(k.id for k in keys.load() if k.name == "leaked"))
    else:
        keys.create("new", ["read"])


def test_a_create_beside_a_revoke_neither_loses_a_key_nor_brings_a_revoked_one_back(tmp_path: Path) -> None:
    import multiprocessing

    context = multiprocessing.get_context("fork")
    path = tmp_path / "api_keys.json"
    for _ in range(25):
        path.unlink(missing_ok=True)
        KeyFile(path).create("leaked", ["admin"])
        start = context.Barrier(2)
        both = [context.Process(target=_change_keys, args=(role, str(path), start))
                for role in ("revoke", "create")]
        for process in both:
            process.start()
        for process in both:
            process.join(30)
            assert process.exitcode == 0
        assert sorted(k.name for k in KeyFile(path).load()) == ["new"]
