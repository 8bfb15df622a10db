"""deploy/compose: one entry point, scalable workers, limits and read-only filesystems everywhere,
and settings that agree with the code, the nginx config and the Kubernetes manifests."""

import copy
import re
from collections.abc import Callable
from urllib.parse import urlparse

import pytest

from fpg_api.settings import GatewaySettings
from fpg_worker.settings import WorkerSettings
from jobstore.celery_wiring import QUEUE, VIDEO_QUEUE, video_time_limits
from jobstore.settings import StoreSettings

from .manifests import (
    DEPLOY,
    DOCKERFILE,
    IMAGE_ONLY_ENV,
    NGINX_CONF,
    Doc,
    compose_default,
    dockerfile_stages,
    duration_seconds,
    fpg_env,
    load_compose,
    max_wait_seconds,
    nginx_directives,
    nginx_location,
    nginx_server_level,
    option,
    project_version,
    size_bytes,
    video_scratch_needed,
    video_segment_seconds,
    video_worker_memory_needed,
    worker_memory_needed,
    worker_queues,
)

COMPOSE = DEPLOY / "compose" / "compose.yaml"
S3_OVERRIDE = DEPLOY / "compose" / "compose.s3.yaml"
ENTRY_POINT = "nginx"
# The services that read the blob store, Redis and the audit trail, and the image target each runs.
SERVICES = {"gateway": "gateway", "worker": "worker", "worker-video": "worker"}
WORKERS = {"worker": QUEUE, "worker-video": VIDEO_QUEUE}  # and the Redis list each takes


@pytest.fixture
def compose() -> Doc:
    return load_compose(COMPOSE)


def merged(base: Doc, override: Doc) -> Doc:
    """``docker compose -f base -f override``, for what these files override: mappings
    (services, environment, depends_on, volumes) merge key by key, anything else is replaced."""
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            result[key] = merged(base[key], value)
        else:
            result[key] = value
    return result


@pytest.fixture
def compose_s3() -> Doc:
    return merged(load_compose(COMPOSE), load_compose(S3_OVERRIDE))


def service_env(compose: Doc, name: str) -> dict[str, str]:
    return {key: str(value) for key, value in compose["services"][name]["environment"].items()}


def hardening_violations(compose: Doc) -> list[str]:
    problems = []
    for name, service in compose["services"].items():
        limits = service.get("deploy", {}).get("resources", {}).get("limits", {})
        if "cpus" not in limits or "memory" not in limits:
            problems.append(f"{name}: no CPU and memory limits")
        if service.get("read_only") is not True:
            problems.append(f"{name}: root filesystem is writable")
        if not any(str(mount).split(":")[0] == "/tmp" for mount in service.get("tmpfs", [])):
            problems.append(f"{name}: no tmpfs at /tmp")
        if "ALL" not in service.get("cap_drop", []):
            problems.append(f"{name}: keeps capabilities")
        if "no-new-privileges:true" not in service.get("security_opt", []):
            problems.append(f"{name}: may gain privileges")
        if service.get("privileged") or service.get("network_mode") == "host":
            problems.append(f"{name}: privileged or on the host network")
        if name != ENTRY_POINT and service.get("ports"):
            problems.append(f"{name}: publishes a port; only {ENTRY_POINT} may")
    if not compose["services"][ENTRY_POINT].get("ports"):
        problems.append(f"{ENTRY_POINT} publishes no port")
    return problems


def scaling_violations(compose: Doc) -> list[str]:
    """`--scale worker=N` needs no fixed name or port; each worker fits its CPU limit."""
    problems = []
    for name in WORKERS:
        worker = compose["services"][name]
        problems += [f"{name} sets {key}" for key in ("container_name", "ports") if key in worker]
        if "replicas" in worker.get("deploy", {}):
            problems.append(f"{name} sets deploy.replicas: --scale is the way to size it")
    worker = compose["services"]["worker"]
    concurrency = int(worker["environment"].get("FPG_WORKER_CONCURRENCY", 0))
    cpus = float(worker["deploy"]["resources"]["limits"]["cpus"])
    if not 1 <= concurrency <= cpus:
        problems.append(f"worker concurrency {concurrency} does not fit {cpus} CPUs")
    needed = worker_memory_needed(concurrency, int(worker["environment"]["FPG_MAX_PIXELS"]))
    if size_bytes(worker["deploy"]["resources"]["limits"]["memory"]) < needed:
        problems.append(f"worker memory limit below its processes' peak ({needed:,} bytes)")
    hard = int(worker["environment"]["FPG_TASK_HARD_TIME_LIMIT"])
    grace = duration_seconds(worker.get("stop_grace_period", "10s"))
    if grace < max(hard, int(str(StoreSettings.model_fields["task_hard_time_limit"].default))):
        problems.append(f"worker stop_grace_period {grace} s < hard time limit {hard} s")
    return problems


def settings_violations(compose: Doc) -> list[str]:
    problems = []
    models = {"gateway": GatewaySettings, "worker": WorkerSettings}
    fields = {name for model in models.values() for name in model.model_fields}
    known = {f"FPG_{name.upper()}" for name in fields} | IMAGE_ONLY_ENV
    shared = None
    for name, target in SERVICES.items():
        model = models[target]
        env = {k: v for k, v in service_env(compose, name).items() if k.startswith("FPG_")}
        problems += [f"{name}: {key} is not a setting" for key in sorted(set(env) - known)]
        values = {k[4:].lower(): v for k, v in env.items() if k[4:].lower() in model.model_fields}
        try:
            model(**values)  # type: ignore[arg-type]
        except ValueError as error:
            problems.append(f"{name}: {error}")
        common = {k: v for k, v in env.items() if k[4:].lower() in StoreSettings.model_fields}
        if shared is not None and common != shared:
            problems.append(f"{name} sees other shared settings than the gateway")
        shared = common
    url = urlparse(service_env(compose, "gateway")["FPG_REDIS_URL"])
    if url.hostname not in compose["services"]:
        problems.append(f"FPG_REDIS_URL names {url.hostname}, not a compose service")
    return problems


def redis_violations(compose: Doc) -> list[str]:
    redis = compose["services"]["redis"]
    command = redis["command"]
    problems = []
    if option(command, "--appendonly") != "yes" or option(command, "--appendfsync") != "everysec":
        problems.append("Redis does not log every write to its append-only file, every second")
    if option(command, "--maxmemory-policy") != "noeviction":
        problems.append("Redis may evict queued tasks")
    limit = size_bytes(str(redis["deploy"]["resources"]["limits"]["memory"]))
    maxmemory = option(command, "--maxmemory")
    if maxmemory is None or size_bytes(maxmemory) > 0.8 * limit:
        problems.append("Redis maxmemory not below 80% of its memory limit")
    if "healthcheck" not in redis:
        problems.append("Redis has no healthcheck")
    if named_volume_at(compose, "redis", "/data") is None:
        problems.append("Redis keeps its append-only file in the container: a restart loses it")
    for name in SERVICES:
        depends = compose["services"][name].get("depends_on", {})
        if depends.get("redis", {}).get("condition") != "service_healthy":
            problems.append(f"{name} does not wait for a healthy Redis")
    return problems


def access_control_violations(compose: Doc) -> list[str]:
    """API keys on; the audit trail in the compose PostgreSQL, which gateway and workers await."""
    problems = []
    if service_env(compose, "gateway").get("FPG_REQUIRE_API_KEYS") != "true":
        problems.append("the gateway does not require API keys (FPG_REQUIRE_API_KEYS)")
    for name in SERVICES:
        # ${FPG_AUDIT_DB_PASSWORD:?...} holds a "?": a placeholder keeps it out of the parse.
        raw = service_env(compose, name).get("FPG_AUDIT_DATABASE_URL", "")
        url = urlparse(re.sub(r"\$\{[^}]*\}", "password", raw))
        if not url.scheme.startswith("postgresql") or url.hostname not in compose["services"]:
            problems.append(f"{name}: the audit database is not the compose PostgreSQL")
        depends = compose["services"][name].get("depends_on", {})
        if depends.get(url.hostname or "", {}).get("condition") != "service_healthy":
            problems.append(f"{name} does not wait for a healthy audit database")
    postgres = compose["services"].get("postgres", {})
    if not any(str(v).endswith(":/var/lib/postgresql/data") for v in postgres.get("volumes", [])):
        problems.append("the audit database keeps no volume: the trail would die with it")
    return problems


def named_volume_at(compose: Doc, service: str, directory: str | None) -> str | None:
    """The named volume ``service`` mounts at ``directory``, if any."""
    mounts = [str(v).split(":") for v in compose["services"][service].get("volumes", [])]
    volume = next((source for source, target, *_ in mounts if target == directory), None)
    return volume if volume in compose.get("volumes", {}) else None


REQUIRED_FROM_THE_SHELL = r"\$\{[A-Z0-9_]+:\?[^}]*\}"


def bucket_violations(compose: Doc) -> list[str]:
    """Gateway and workers use one bucket on a server they wait for, with keys that come from
    the shell that starts compose, never from the file."""
    problems = []
    envs = {name: service_env(compose, name) for name in SERVICES}
    for key in ("FPG_BLOB_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION"):
        if len({env.get(key) for env in envs.values()}) > 1:
            problems.append(f"gateway and workers see different {key}")
    for name, env in envs.items():
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            if not re.fullmatch(REQUIRED_FROM_THE_SHELL, env.get(key, "")):
                problems.append(f"{name}: {key} is not required from the environment")
        server = urlparse(env.get("AWS_ENDPOINT_URL_S3", "")).hostname or ""
        if server in compose["services"]:
            depends = compose["services"][name].get("depends_on", {})
            if depends.get(server, {}).get("condition") != "service_healthy":
                problems.append(f"{name} does not wait for a healthy {server}")
    return problems


def blob_violations(compose: Doc) -> list[str]:
    """Gateway and workers keep originals and results in one directory on one named volume (a
    container's own disk would hide each upload from the workers), and nothing else mounts it;
    or in one bucket (bucket_violations)."""
    urls = {name: service_env(compose, name).get("FPG_BLOB_URL", "") for name in SERVICES}
    if any(urlparse(url).scheme == "s3" for url in urls.values()):
        if len(set(urls.values())) > 1:
            return [f"gateway and workers use different blob stores: {urls}"]
        return bucket_violations(compose)
    problems = []
    volumes = set()
    for name in SERVICES:
        url = urlparse(service_env(compose, name).get("FPG_BLOB_URL", ""))
        volume = named_volume_at(compose, name, url.path) if url.scheme == "file" else None
        if volume is None:
            problems.append(f"{name}: FPG_BLOB_URL is not a directory on a named volume")
        volumes.add(volume)
    if len(volumes) > 1:
        problems.append(f"gateway and workers keep blobs apart: {sorted(map(str, volumes))}")
    for name, service in compose["services"].items():
        mounted = {str(mount).split(":")[0] for mount in service.get("volumes", [])}
        if name not in SERVICES and mounted & volumes:
            problems.append(f"{name} mounts the blob volume")
    return problems


def checkpoint_violations(compose: Doc) -> list[str]:
    """The checkpoint key comes from the environment of whoever starts compose, never the file;
    gateway and workers keep checkpoints on one named volume that PostgreSQL does not mount."""
    problems = []
    volumes = set()
    for name in SERVICES:
        env = service_env(compose, name)
        if not re.fullmatch(
            r"\$\{FPG_AUDIT_CHECKPOINT_KEY:\?[^}]*\}", env.get("FPG_AUDIT_CHECKPOINT_KEY", "")
        ):
            problems.append(
                f"{name}: FPG_AUDIT_CHECKPOINT_KEY is not required from the environment"
            )
        volume = named_volume_at(compose, name, env.get("FPG_AUDIT_CHECKPOINT_DIR"))
        if volume is None:
            problems.append(f"{name}: FPG_AUDIT_CHECKPOINT_DIR is not on a named volume")
        volumes.add(volume)
    if len(volumes) > 1:
        problems.append(f"gateway and workers keep checkpoints apart: {sorted(map(str, volumes))}")
    postgres_mounts = compose["services"].get("postgres", {}).get("volumes", [])
    if any(str(mount).split(":")[0] in volumes for mount in postgres_mounts):
        problems.append("PostgreSQL mounts the checkpoint volume")
    return problems


def network_violations(compose: Doc) -> list[str]:
    """Everything but nginx sits on internal networks only: no route to the internet."""
    networks = compose.get("networks", {})
    problems = []
    for name, service in compose["services"].items():
        attached = service.get("networks", ["default"])
        if name != ENTRY_POINT and not all(
            (networks.get(n) or {}).get("internal") for n in attached
        ):
            problems.append(f"{name} is on a network with a way out")
    return problems


def nginx_violations(compose: Doc) -> list[str]:
    """Body size and timeouts fit the gateway; it proxies to the gateway service; no disk spool."""
    text = NGINX_CONF.read_text()
    directives = nginx_directives(text)
    batch = int(service_env(compose, "gateway")["FPG_MAX_BATCH_BYTES"])
    problems = []
    body = nginx_directives(nginx_server_level(text)).get("client_max_body_size", ["1m"])[-1]
    if size_bytes(body) < batch:
        problems.append(f"client_max_body_size {body} < FPG_MAX_BATCH_BYTES {batch}")
    videos = nginx_directives(nginx_location(text, "/v1/videos"))
    video_bytes = int(service_env(compose, "gateway")["FPG_MAX_VIDEO_BYTES"])
    video_body = videos.get("client_max_body_size", [body])[-1]
    if size_bytes(video_body) < video_bytes:
        problems.append(f"/v1/videos body {video_body} < FPG_MAX_VIDEO_BYTES {video_bytes}")
    if "proxy_pass" not in videos:
        problems.append("/v1/videos is not passed to the gateway")
    for timeout in ("proxy_read_timeout", "proxy_send_timeout", "client_body_timeout"):
        seconds = duration_seconds(directives.get(timeout, ["60s"])[-1])
        if seconds <= max_wait_seconds():
            problems.append(f"{timeout} {seconds} s <= the gateway's max wait")
    if directives.get("proxy_request_buffering") != ["off"]:
        problems.append("nginx spools request bodies (originals) to disk")
    upstream = [v.split()[-1] for v in directives.get("set", []) if "gateway" in v]
    target = urlparse(upstream[0] if upstream else directives.get("proxy_pass", [""])[0])
    if target.hostname not in compose["services"] or target.hostname == ENTRY_POINT:
        problems.append(f"nginx proxies to {target.hostname}, not the gateway service")
    stages = dockerfile_stages(DOCKERFILE)
    exposed = stages["gateway"].last("EXPOSE")
    if str(target.port) != exposed:
        problems.append(f"nginx proxies to port {target.port}, the gateway image exposes {exposed}")
    published = str(compose["services"][ENTRY_POINT]["ports"][0])
    if not compose_default(published).endswith(":8080"):
        problems.append(f"nginx publishes {published}, but listens on 8080")
    return problems


def image_violations(compose: Doc) -> list[str]:
    """Built from the one Dockerfile, tagged with the package version like the k8s overlays."""
    problems = []
    for name, target in SERVICES.items():
        service = compose["services"][name]
        build = service.get("build", {})
        built_from = COMPOSE.parent / build.get("context", ".") / build.get("dockerfile", "")
        if built_from.resolve() != DOCKERFILE.resolve():
            problems.append(f"{name} is not built from {DOCKERFILE.name}")
        if build.get("target") != target:
            problems.append(f"{name} is not built from the stage {target}")
        image = compose_default(service["image"])
        if image != f"fpg-{target}:{project_version()}":
            problems.append(f"{name}: image {image} is not fpg-{target}:{project_version()}")
    for name, service in compose["services"].items():
        image = compose_default(service["image"])
        if ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
            problems.append(f"{name}: image {image} has no fixed tag")
    return problems


def video_worker_violations(compose: Doc) -> list[str]:
    """Each worker takes its own Redis list; the video worker fits its processes (CPU, memory for
    1080p plus its RAM-backed scratch), has scratch for its segments, and a grace period that lets
    a running segment finish."""
    problems = []
    for name, queue in WORKERS.items():
        service = compose["services"][name]
        if "command" in service or "entrypoint" in service:
            problems.append(f"{name} replaces the worker image's command")
        queues = worker_queues(dict(service_env(compose, name)))
        if queues != [queue]:
            problems.append(f"{name} takes tasks from {queues}, not [{queue!r}]")
    service = compose["services"]["worker-video"]
    env = service_env(compose, "worker-video")
    limits = service["deploy"]["resources"]["limits"]
    concurrency = int(env.get("FPG_WORKER_CONCURRENCY", 0))
    if not 1 <= concurrency <= float(limits["cpus"]):
        problems.append(f"video worker concurrency {concurrency} does not fit its CPUs")
    scratch = next(
        (
            str(m)
            for m in service.get("tmpfs", [])
            if str(m).split(":")[0] == env.get("FPG_WORKER_SCRATCH_DIR")
        ),
        None,
    )
    size = re.search(r"size=(\w+)", scratch or "")
    segment = video_segment_seconds(dict(env))
    if size is None:
        problems.append("FPG_WORKER_SCRATCH_DIR is not a tmpfs with a size")
    elif size_bytes(size.group(1)) < video_scratch_needed(concurrency, segment):
        problems.append(f"scratch {size.group(1)} below {concurrency} x two {segment} s segments")
    needed = video_worker_memory_needed(concurrency) + (size_bytes(size.group(1)) if size else 0)
    if size_bytes(str(limits["memory"])) < needed:
        problems.append(f"video worker memory limit below its peak and scratch ({needed:,} bytes)")
    grace = duration_seconds(service.get("stop_grace_period", "10s"))
    if grace < video_time_limits(segment)[1]:
        problems.append(f"video worker stop_grace_period {grace} s < a segment's hard limit")
    return problems


CHECKS: dict[str, Callable[[Doc], list[str]]] = {
    "hardening": hardening_violations,
    "scaling": scaling_violations,
    "settings": settings_violations,
    "redis": redis_violations,
    "network": network_violations,
    "access control": access_control_violations,
    "checkpoints": checkpoint_violations,
    "blobs": blob_violations,
    "nginx": nginx_violations,
    "images": image_violations,
    "video worker": video_worker_violations,
}


@pytest.mark.parametrize("check", CHECKS)
def test_compose_keeps_invariant(compose, check):
    assert CHECKS[check](compose) == []


@pytest.mark.parametrize("check", CHECKS)
def test_compose_with_s3_keeps_invariant(compose_s3, check):
    assert CHECKS[check](compose_s3) == []


def test_s3_override_points_every_service_at_the_bucket_it_creates(compose_s3):
    server = compose_s3["services"]["s3"]
    bucket = urlparse(service_env(compose_s3, "gateway")["FPG_BLOB_URL"]).hostname
    assert f"-bucket={bucket}" in server["command"]
    endpoint = urlparse(service_env(compose_s3, "worker-video")["AWS_ENDPOINT_URL_S3"])
    assert endpoint.hostname == "s3"
    assert endpoint.port == 8333  # SeaweedFS's S3 port: the command keeps the default
    assert not any(str(arg).startswith("-s3.port=") for arg in server["command"])
    assert f"{endpoint.port}/healthz" in " ".join(server["healthcheck"]["test"])
    assert (
        server["environment"]["AWS_SECRET_ACCESS_KEY"]
        == (service_env(compose_s3, "gateway")["AWS_SECRET_ACCESS_KEY"])
    )


def test_compose_and_kubernetes_share_the_settings(compose, rendered):
    """The same FPG_ values on both deployments (the Redis and database addresses aside)."""
    for service, target in SERVICES.items():
        k8s = fpg_env(rendered["dev"], f"fpg-{target}", f"fpg-{service}")
        here = {k: v for k, v in service_env(compose, service).items() if k.startswith("FPG_")}
        different = {
            "FPG_REDIS_URL",
            "FPG_AUDIT_DATABASE_URL",
            "FPG_AUDIT_CHECKPOINT_KEY",  # a Secret in Kubernetes, the shell's variable here
            "FPG_WORKER_CONCURRENCY",
        }
        for key in set(k8s) & set(here) - different:
            assert here[key] == k8s[key], key


BREAKS: dict[str, tuple[str, Callable[[Doc], object]]] = {
    "worker port": ("hardening", lambda c: c["services"]["worker"].update(ports=["8081:8080"])),
    "gateway writable": ("hardening", lambda c: c["services"]["gateway"].pop("read_only")),
    "no limit": (
        "hardening",
        lambda c: c["services"]["redis"]["deploy"]["resources"]["limits"].pop("memory"),
    ),
    "worker name": ("scaling", lambda c: c["services"]["worker"].update(container_name="w")),
    "short grace": ("scaling", lambda c: c["services"]["worker"].update(stop_grace_period="10s")),
    "pixel limit beyond the worker's memory": (
        "scaling",
        lambda c: c["services"]["worker"]["environment"].update(FPG_MAX_PIXELS="200000000"),
    ),
    "typo": ("settings", lambda c: c["services"]["worker"]["environment"].update(FPG_RETENTION=1)),
    "segments of no length": (
        "settings",
        lambda c: _video_env(c).update(FPG_VIDEO_SEGMENT_SECONDS="0"),
    ),
    "redis forgets": (
        "redis",
        lambda c: c["services"]["redis"]["command"].remove("--appendfsync"),
    ),
    "redis data in the container": ("redis", lambda c: c["services"]["redis"].pop("volumes")),
    "worker online": ("network", lambda c: c["networks"]["backend"].pop("internal")),
    "latest": ("images", lambda c: c["services"]["redis"].update(image="redis:latest")),
    "keys off": (
        "access control",
        lambda c: c["services"]["gateway"]["environment"].update(FPG_REQUIRE_API_KEYS="false"),
    ),
    "audit in a container file": (
        "access control",
        lambda c: c["services"]["worker"]["environment"].update(
            FPG_AUDIT_DATABASE_URL="sqlite:///./var/fpg-audit.db"
        ),
    ),
    "checkpoint key in the file": (
        "checkpoints",
        lambda c: c["services"]["worker"]["environment"].update(FPG_AUDIT_CHECKPOINT_KEY="k" * 64),
    ),
    "checkpoints in the container": (
        "checkpoints",
        lambda c: c["services"]["gateway"].pop("volumes"),
    ),
    "postgres mounts the checkpoints": (
        "checkpoints",
        lambda c: c["services"]["postgres"]["volumes"].append(
            "audit-checkpoints:/var/lib/fpg/audit-checkpoints"
        ),
    ),
    "blobs in the container": (
        "blobs",
        lambda c: c["services"]["worker"]["volumes"].remove("blobs:/var/lib/fpg/blobs"),
    ),
    "blobs elsewhere for the gateway": (
        "blobs",
        lambda c: c["services"]["gateway"]["environment"].update(FPG_BLOB_URL="file:/tmp/blobs"),
    ),
    "nginx mounts the blobs": (
        "blobs",
        lambda c: c["services"]["nginx"]["volumes"].append("blobs:/srv/blobs:ro"),
    ),
    "postgres online": (
        "network",
        lambda c: c["services"]["postgres"].update(networks=["frontend", "backend"]),
    ),
    "video worker takes photos too": (
        "video worker",
        lambda c: _video_env(c).update(FPG_WORKER_QUEUES="celery,video"),
    ),
    "photo worker takes videos too": (
        "video worker",
        lambda c: c["services"]["worker"]["environment"].update(FPG_WORKER_QUEUES="celery,video"),
    ),
    "scratch too small for a segment": (
        "video worker",
        lambda c: c["services"]["worker-video"].update(
            tmpfs=["/tmp:size=64m,mode=1777", "/var/lib/fpg/scratch:size=100m,mode=1777"]
        ),
    ),
    "scratch on the read-only root": (
        "video worker",
        lambda c: c["services"]["worker-video"].update(tmpfs=["/tmp:size=64m,mode=1777"]),
    ),
    "video memory for 540p only": (
        "video worker",
        lambda c: c["services"]["worker-video"]["deploy"]["resources"]["limits"].update(
            memory="1g"
        ),
    ),
    "video grace of a photo task": (
        "video worker",
        lambda c: c["services"]["worker-video"].update(stop_grace_period="180s"),
    ),
    "video worker with a fixed name": (
        "scaling",
        lambda c: c["services"]["worker-video"].update(container_name="video"),
    ),
    "videos above nginx's limit": (
        "nginx",
        lambda c: c["services"]["gateway"]["environment"].update(
            FPG_MAX_VIDEO_BYTES=str(8 * 2**30)
        ),
    ),
    "video worker from the gateway stage": (
        "images",
        lambda c: c["services"]["worker-video"].update(
            build={**c["services"]["worker-video"]["build"], "target": "gateway"}
        ),
    ),
    "video worker's blobs in the container": (
        "blobs",
        lambda c: c["services"]["worker-video"]["volumes"].remove("blobs:/var/lib/fpg/blobs"),
    ),
}


def _video_env(compose: Doc) -> Doc:
    env: Doc = compose["services"]["worker-video"]["environment"]
    return env


S3_BREAKS: dict[str, tuple[str, Callable[[Doc], object]]] = {
    "s3 key in the file": (
        "blobs",
        lambda c: c["services"]["worker"]["environment"].update(AWS_SECRET_ACCESS_KEY="secret"),
    ),
    "video worker on the volume": (
        "blobs",
        lambda c: _video_env(c).update(FPG_BLOB_URL="file:///var/lib/fpg/blobs"),
    ),
    "gateway starts before the bucket": (
        "blobs",
        lambda c: c["services"]["gateway"]["depends_on"].pop("s3"),
    ),
    "s3 server online": ("network", lambda c: c["services"]["s3"].update(networks=["frontend"])),
    "s3 server published": ("hardening", lambda c: c["services"]["s3"].update(ports=["8333:8333"])),
    "s3 server latest": (
        "images",
        lambda c: c["services"]["s3"].update(image="chrislusf/seaweedfs:latest"),
    ),
}


# Each break on the files it applies to: the S3 ones need compose.s3.yaml.
BROKEN_FILES = {"compose": BREAKS, "compose_s3": S3_BREAKS}


@pytest.mark.parametrize(
    ("files", "name"), [(files, name) for files, breaks in BROKEN_FILES.items() for name in breaks]
)
def test_a_broken_compose_file_is_caught(request, files, name):
    check, breaking = BROKEN_FILES[files][name]
    broken = copy.deepcopy(request.getfixturevalue(files))
    breaking(broken)
    assert CHECKS[check](broken) != [], f"{check} did not notice: {name}"
