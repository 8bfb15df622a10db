"""deploy/docker/Dockerfile: pinned bases, locked installs, an unprivileged user, tini, health
checks, the commands the services expect, and a build context with the models but no photos."""

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from jobstore.celery_wiring import QUEUE

from .manifests import (
    DOCKERFILE,
    REPO,
    dockerfile_stages,
    dockerignore_patterns,
    in_build_context,
    inherited,
    stage_env,
    tracked_files,
    workload_running,
)

TARGETS = ["gateway", "worker", "all-in-one"]
STAGES = dockerfile_stages(DOCKERFILE)
WORKSPACE_MEMBERS = ["libs/blurcore", "libs/jobstore", "services/api", "services/worker"]


def json_form(args: str) -> list[str]:
    """``CMD [...]`` / ``HEALTHCHECK ... CMD [...]`` -> the list (fails on the shell form)."""
    words: list[str] = json.loads(args[args.index("[") :])
    return words


def pyproject(member: str) -> dict[str, object]:
    with (REPO / member / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)


def member_names() -> set[str]:
    return {str(pyproject(member)["project"]["name"]) for member in WORKSPACE_MEMBERS}  # type: ignore[index]


def test_bases_are_pinned_slim_bookworm_and_uv_is_pinned():
    external = {stage.base for stage in STAGES.values() if stage.base not in STAGES}
    assert external == {"python:3.11.14-slim-bookworm"}, external
    copies = [args for stage in STAGES.values() for args in stage.all("COPY")]
    uv = [args for args in copies if "astral-sh/uv" in args]
    assert uv
    assert all(re.search(r"--from=ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+ ", a) for a in uv)


@pytest.mark.parametrize("target", TARGETS)
def test_target_runs_unprivileged_under_tini_with_a_json_healthcheck(target):
    assert inherited(STAGES, target, "USER") == "10001:10001"
    assert json_form(inherited(STAGES, target, "ENTRYPOINT") or "") == ["/usr/bin/tini", "--"]
    healthcheck = inherited(STAGES, target, "HEALTHCHECK") or ""
    assert " CMD [" in f" {healthcheck}", healthcheck
    json_form(healthcheck)
    json_form(inherited(STAGES, target, "CMD") or "")
    assert "/app/.venv/bin" in stage_env(STAGES, target)["PATH"]


def test_builds_install_the_locked_packages_without_dev_tools():
    syncs = [args for stage in STAGES.values() for args in stage.all("RUN") if "uv sync" in args]
    assert syncs
    for args in syncs:
        for flag in ("--frozen", "--no-dev", "--no-editable"):
            assert flag in args, args
        for package in re.findall(r"--package (\S+)", args):
            assert package in member_names(), package
    runtime_copies = [
        args for target in TARGETS for args in STAGES[target].all("COPY") if "/app/.venv" in args
    ]
    assert len(runtime_copies) == len(TARGETS)


def test_gateway_command_serves_the_guarded_gateway_on_8080():
    command = json_form(STAGES["gateway"].last("CMD") or "")
    assert " ".join(command).startswith("fpg-gateway --host 0.0.0.0 --port 8080")
    pyproject = tomllib.loads((REPO / "services/api/pyproject.toml").read_text())
    scripts = pyproject["project"]["scripts"]
    assert scripts["fpg-gateway"] == "fpg_api.serve:main"
    assert STAGES["gateway"].last("EXPOSE") == "8080"
    healthcheck = " ".join(json_form(STAGES["gateway"].last("HEALTHCHECK") or ""))
    assert "127.0.0.1:8080/healthz" in healthcheck


INGRESS_NGINX_UPSTREAM_KEEPALIVE_SECONDS = 60  # its ConfigMap's upstream-keepalive-timeout


def test_gateway_keeps_idle_connections_longer_than_the_ingress_proxy():
    """The side that closes an idle connection first must be the proxy, or it can reuse one the
    gateway is closing and answer an upload with 502."""
    command = json_form(STAGES["gateway"].last("CMD") or "")
    keep_alive = int(command[command.index("--timeout-keep-alive") + 1])
    assert keep_alive > INGRESS_NGINX_UPSTREAM_KEEPALIVE_SECONDS


def test_worker_command_runs_celery_prefork_on_the_worker_app():
    command = " ".join(json_form(STAGES["worker"].last("CMD") or ""))
    assert "exec celery -A fpg_worker.celery_app worker --pool prefork" in command
    assert '--concurrency "$FPG_WORKER_CONCURRENCY"' in command
    assert stage_env(STAGES, "worker")["FPG_WORKER_CONCURRENCY"] == "1"
    assert importlib.util.find_spec("fpg_worker.celery_app") is not None
    healthcheck = " ".join(json_form(STAGES["worker"].last("HEALTHCHECK") or ""))
    assert "inspect ping" in healthcheck
    assert "celery@$HOSTNAME" in healthcheck


def test_worker_takes_the_lists_it_is_given_and_photos_by_default():
    """A video worker is the same image with FPG_WORKER_QUEUES=video (deploy/k8s, compose)."""
    command = " ".join(json_form(STAGES["worker"].last("CMD") or ""))
    assert '--queues "$FPG_WORKER_QUEUES"' in command
    assert stage_env(STAGES, "worker")["FPG_WORKER_QUEUES"] == QUEUE


# What python:3.11-slim-bookworm has of the libraries a wheel may link to (glibc, libgcc,
# libstdc++, zlib); anything else must travel inside the wheel.
SLIM_BASE_LIBRARIES = {
    "ld-linux-x86-64.so.2",
    "libc.so.6",
    "libdl.so.2",
    "libgcc_s.so.1",
    "libm.so.6",
    "libmvec.so.1",
    "libpthread.so.0",
    "librt.so.1",
    "libstdc++.so.6",
    "libz.so.1",
}


def test_video_needs_no_ffmpeg_in_the_worker_image():
    """PyAV's wheel carries its FFmpeg libraries (av.libs): the worker image needs no ffmpeg
    package, only what the slim base already has. (No code runs an ffmpeg program.)"""
    readelf = shutil.which("readelf")
    if readelf is None:
        pytest.skip("readelf (binutils) is not installed")
    package = Path(importlib.util.find_spec("av").origin or "").parent  # type: ignore[union-attr]
    bundled = package.parent / "av.libs"
    libraries = [*package.rglob("*.so"), *bundled.glob("*.so*")]
    assert libraries
    needed = set()
    for library in libraries:
        dynamic = subprocess.run(
            [readelf, "-d", str(library)], capture_output=True, text=True, check=True, timeout=60
        ).stdout
        needed |= set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic))
    assert any(name.startswith("libavcodec") for name in needed)
    missing = needed - {path.name for path in bundled.iterdir()} - SLIM_BASE_LIBRARIES
    assert not missing, f"the worker image would need system libraries: {sorted(missing)}"


def test_all_in_one_starts_fpg_local_with_its_own_redis_on_all_interfaces():
    stage = STAGES["all-in-one"]
    assert json_form(stage.last("CMD") or "") == ["fpg-local"]
    scripts = pyproject("services/api")["project"]["scripts"]  # type: ignore[index]
    assert "fpg-local" in scripts
    assert any("redis-server" in args for args in stage.all("RUN"))
    assert stage_env(STAGES, "all-in-one")["FPG_HOST"] == "0.0.0.0"
    assert stage_env(STAGES, "all-in-one")["FPG_PORT"] == stage.last("EXPOSE") == "8080"


def test_all_in_one_keeps_its_queue_and_blobs_on_its_volume():
    # Its root is read-only and /app belongs to root: var/ under the working directory would
    # not even be writable, and anything outside the volume dies with the container.
    stage = STAGES["all-in-one"]
    volume = stage.last("VOLUME")
    env = stage_env(STAGES, "all-in-one")
    for path in (env["FPG_REDIS_DIR"], env["FPG_BLOB_URL"].removeprefix("file://")):
        assert path.startswith(f"{volume}/"), path


def test_kubernetes_uses_the_image_ports_and_health_checks(rendered):
    for docs in rendered.values():
        gateway = workload_running(docs, "fpg-gateway")
        container = gateway.pod["containers"][0]
        assert str(container["ports"][0]["containerPort"]) == STAGES["gateway"].last("EXPOSE")
        # SIGTERM after the preStop sleep, then uvicorn's graceful shutdown: both fit the grace.
        command = json_form(STAGES["gateway"].last("CMD") or "")
        graceful = int(command[command.index("--timeout-graceful-shutdown") + 1])
        sleep = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
        assert gateway.pod["terminationGracePeriodSeconds"] >= graceful + sleep
        worker = workload_running(docs, "fpg-worker").pod["containers"][0]
        ping = json_form(STAGES["worker"].last("HEALTHCHECK") or "")
        assert worker["livenessProbe"]["exec"]["command"] == ping


def test_build_context_holds_the_sources_and_models_and_nothing_else():
    patterns = dockerignore_patterns()
    files = list(tracked_files())
    models = [f for f in files if f.startswith("libs/blurcore/src/blurcore/models/")]
    assert any(f.endswith(".onnx") for f in models)
    assert any(f.endswith(".tflite") for f in models)
    for stage in STAGES.values():
        for args in stage.all("COPY"):
            if "--from=" in args:
                continue
            *sources, _ = args.split()
            for source in sources:
                under = [f for f in files if f == source or f.startswith(source.rstrip("/") + "/")]
                assert under, f"COPY {source}: nothing tracked there"
                for path in under:
                    assert in_build_context(path, patterns), f"{path} is not in the build context"
    for path in files:
        if path.startswith(("tests/", "bench/", "docs/", "deploy/", ".ci/")):
            assert not in_build_context(path, patterns), f"{path} enters the build context"
    for path in (".venv/bin/python", ".git/HEAD", "README.md", "../shared/data/faces/x.jpg"):
        assert not in_build_context(path, patterns), path
    assert not in_build_context("libs/blurcore/src/blurcore/__pycache__/x.pyc", patterns)


def test_nothing_installs_mediapipe():
    """The gateway image must not carry MediaPipe, and no image does: it is not in the lock."""
    with (REPO / "uv.lock").open("rb") as handle:
        packages = {package["name"] for package in tomllib.load(handle)["package"]}
    assert "mediapipe" not in packages
    assert "fpg-api" in packages
    assert "fpg-worker" in packages


GATEWAY_FORBIDDEN = ("onnxruntime", "ai_edge_litert", "av", "blurcore.pipeline", "blurcore.finder")


def _dependencies_of(package: dict[str, object]) -> dict[str, list[str]]:
    """Name -> extras asked for, from a uv.lock package entry."""
    rows = package.get("dependencies", [])
    assert isinstance(rows, list)
    return {row["name"]: row.get("extra", []) for row in rows}


def test_gateway_depends_on_blurcore_without_its_runtimes():
    """The runtimes are blurcore's extras; only the worker asks for them. The gateway asks for
    PyAV (the extra ``video``) to read a video's container header before accepting it, and
    imports it on the first video only (next test)."""
    with (REPO / "uv.lock").open("rb") as handle:
        packages = {package["name"]: package for package in tomllib.load(handle)["package"]}
    assert _dependencies_of(packages["fpg-api"])["blurcore"] == ["video"]
    assert set(_dependencies_of(packages["fpg-worker"])["blurcore"]) == {"inference", "video"}
    blurcore_base = set(_dependencies_of(packages["blurcore"]))
    assert not blurcore_base & {"onnxruntime", "ai-edge-litert", "av"}


def test_gateway_import_loads_no_inference_runtime():
    """What the gateway process imports, in a fresh interpreter: no model runtime, no video I/O."""
    probe = (
        "import sys, json, fpg_api.main; "
        f"print(json.dumps([m for m in {list(GATEWAY_FORBIDDEN)!r} if m in sys.modules]))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(loaded.stdout) == []
