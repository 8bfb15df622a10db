"""What the rendered Kubernetes manifests must keep true, in every overlay.

Each invariant is a function returning its violations. The tests assert that the real overlays
have none, and ``test_a_broken_manifest_is_caught`` breaks a copy in one place per invariant to
prove that the check notices.
"""

import copy
import re
from collections import Counter
from collections.abc import Callable
from urllib.parse import urlparse

import pytest

from fpg_api.settings import GatewaySettings
from fpg_worker.settings import WorkerSettings
from jobstore.celery_wiring import QUEUE, make_celery
from jobstore.settings import StoreSettings

from .manifests import (
    IMAGE_ONLY_ENV,
    INTERNET,
    OVERLAYS,
    Doc,
    autoscaler_targets,
    connection_allowed,
    container_env,
    cpu_cores,
    fpg_env,
    image_violations,
    max_wait_seconds,
    memory_bytes,
    named,
    of_kind,
    option,
    pod,
    pod_peer,
    probe_violations,
    project_version,
    redis_args,
    resource_violations,
    security_violations,
    size_bytes,
    worker_memory_needed,
    workload_running,
)

OVERLAY_NAMES = [overlay.name for overlay in OVERLAYS]
Check = Callable[[list[Doc]], list[str]]
INGRESS_CONTROLLER = pod("ingress-nginx", **{"app.kubernetes.io/name": "ingress-nginx"})
KEDA_OPERATOR = pod("keda", app="keda-operator")
KUBE_DNS = pod("kube-system", **{"k8s-app": "kube-dns"})
STRANGER = pod("default", app="anything")


def default(model: type[StoreSettings], name: str) -> object:
    """A settings default as the code declares it (not as this process's environment sets it)."""
    return model.model_fields[name].default


# ---------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------
def time_limit_violations(docs: list[Doc]) -> list[str]:
    """The worker's grace period covers the hard time limit it runs with, which is the code's."""
    problems = []
    worker = workload_running(docs, "fpg-worker")
    env = fpg_env(docs, "fpg-worker")
    for name in ("task_soft_time_limit", "task_hard_time_limit"):
        variable = f"FPG_{name.upper()}"
        expected = str(default(StoreSettings, name))
        if env.get(variable) != expected:
            problems.append(f"worker {variable}={env.get(variable)}, the code says {expected}")
    hard = int(
        env.get("FPG_TASK_HARD_TIME_LIMIT") or default(StoreSettings, "task_hard_time_limit")
    )
    grace = worker.pod.get("terminationGracePeriodSeconds", 30)
    if grace < hard or grace < int(str(default(StoreSettings, "task_hard_time_limit"))):
        problems.append(f"worker terminationGracePeriodSeconds {grace} < hard time limit {hard}")
    gateway_env = fpg_env(docs, "fpg-gateway")
    for variable in (
        "FPG_TASK_SOFT_TIME_LIMIT",
        "FPG_TASK_HARD_TIME_LIMIT",
        "FPG_RETENTION_SECONDS",
    ):
        if gateway_env.get(variable) != env.get(variable):
            problems.append(f"{variable} differs between gateway and worker")
    return problems


def visibility_violations(docs: list[Doc]) -> list[str]:
    """Redis must not hand a running task to a second worker: visibility timeout > hard limit."""
    env = fpg_env(docs, "fpg-worker")
    try:
        settings = StoreSettings(
            task_soft_time_limit=int(env["FPG_TASK_SOFT_TIME_LIMIT"] or 0),
            task_hard_time_limit=int(env["FPG_TASK_HARD_TIME_LIMIT"] or 0),
        )
    except ValueError as error:
        return [f"the worker's time limits are refused: {error}"]
    conf = make_celery(settings).conf
    visibility = conf.broker_transport_options["visibility_timeout"]
    problems = []
    if not conf.task_soft_time_limit < conf.task_time_limit < visibility:
        problems.append(
            f"need soft {conf.task_soft_time_limit} < hard {conf.task_time_limit} "
            f"< visibility timeout {visibility}"
        )
    return problems


def settings_violations(docs: list[Doc]) -> list[str]:
    """Every FPG_ variable is a real setting of the process that reads it, with a valid value."""
    problems = []
    models = (("fpg-gateway", GatewaySettings), ("fpg-worker", WorkerSettings))
    # One ConfigMap feeds both, so a worker may see a gateway-only setting and the reverse.
    fields = {name for _, model in models for name in model.model_fields}
    known = {f"FPG_{name.upper()}" for name in fields} | IMAGE_ONLY_ENV
    for image, model in models:
        env = fpg_env(docs, image)
        problems += [f"{image}: {name} is not a setting" for name in sorted(set(env) - known)]
        values = {
            key[4:].lower(): value
            for key, value in env.items()
            if key[4:].lower() in model.model_fields and value is not None and "$(" not in value
        }
        try:
            model(**values)  # type: ignore[arg-type]
        except ValueError as error:
            problems.append(f"{image}: {error}")
    return problems


def redis_url_violations(docs: list[Doc]) -> list[str]:
    """Gateway and worker reach Redis through its Service; $(VAR)s are defined before use."""
    problems = []
    _, redis_argv = redis_args(docs)
    service = named(docs, "Service", "fpg-redis")
    for image in ("fpg-gateway", "fpg-worker"):
        container = workload_running(docs, image).pod["containers"][0]
        url = container_env(container, docs)["FPG_REDIS_URL"] or ""
        parsed = urlparse(url)
        if parsed.hostname != service["metadata"]["name"]:
            problems.append(f"{image}: FPG_REDIS_URL {url} is not the Service fpg-redis")
        if parsed.port != service["spec"]["ports"][0]["port"]:
            problems.append(f"{image}: FPG_REDIS_URL port differs from the Service's")
        if "--requirepass" in redis_argv and "$(REDIS_PASSWORD)" not in url:
            problems.append(f"{image}: Redis requires a password, FPG_REDIS_URL has none")
        defined = list(container_env({**container, "env": []}, docs))  # envFrom comes first
        for entry in container.get("env", []):
            for reference in _references(str(entry.get("value", ""))):
                if reference not in defined:
                    problems.append(f"{image}: {entry['name']} uses $({reference}) before it")
            defined.append(entry["name"])
    return problems


def _references(text: str) -> list[str]:
    return re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", text)


def redis_violations(docs: list[Doc]) -> list[str]:
    """Every write in the append-only file (flushed every second) on a claim of its own, no
    eviction of queued tasks, maxmemory below the container's limit."""
    container, argv = redis_args(docs)
    problems = []
    if option(argv, "--appendonly") != "yes" or option(argv, "--appendfsync") != "everysec":
        problems.append(f"Redis does not log every write to its append-only file: {argv}")
    if option(argv, "--maxmemory-policy") != "noeviction":
        problems.append("Redis may evict keys (queued tasks) when full")
    maxmemory = option(argv, "--maxmemory")
    limit = memory_bytes(container["resources"]["limits"]["memory"])
    if maxmemory is None or size_bytes(maxmemory) > 0.8 * limit:
        problems.append(f"Redis maxmemory {maxmemory} not below 80% of its memory limit {limit}")
    redis = workload_running(docs, "redis")
    if redis.doc["spec"].get("replicas", 1) != 1:
        problems.append("more than one Redis replica, each with its own queue")
    if claim_at(docs, "redis", "/data") is None:
        problems.append("Redis keeps its append-only file on the pod's disk: a restart loses it")
    return problems


def keda_violations(docs: list[Doc]) -> list[str]:
    """KEDA watches Celery's list on the Redis Service the workers use, as they authenticate."""
    problems = []
    worker = workload_running(docs, "fpg-worker")
    service = named(docs, "Service", "fpg-redis")
    _, redis_argv = redis_args(docs)
    worker_url = urlparse(fpg_env(docs, "fpg-worker")["FPG_REDIS_URL"] or "")
    for scaled in of_kind(docs, "ScaledObject"):
        spec = scaled["spec"]
        if spec["scaleTargetRef"]["name"] != worker.name:
            problems.append(f"ScaledObject targets {spec['scaleTargetRef']['name']}")
        if spec.get("minReplicaCount", 0) > spec.get("maxReplicaCount", 100):
            problems.append("ScaledObject minReplicaCount > maxReplicaCount")
        triggers = [t for t in spec["triggers"] if t["type"] == "redis"]
        if not triggers:
            problems.append("ScaledObject has no redis trigger")
        for trigger in triggers:
            meta = trigger["metadata"]
            if meta.get("listName") != QUEUE:
                problems.append(f"KEDA watches list {meta.get('listName')}, Celery uses {QUEUE}")
            for key in ("listLength", "activationListLength"):
                if not str(meta.get(key, "")).isdigit():
                    problems.append(f"KEDA trigger has no numeric {key}")
            host, _, port = meta.get("address", "").rpartition(":")
            expected = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc"
            if not (host == expected or host.startswith(expected + ".")):
                problems.append(f"KEDA address {host} is not the Service {expected}")
            if port != str(service["spec"]["ports"][0]["port"]):
                problems.append(f"KEDA port {port} is not the Service's")
            if meta.get("databaseIndex", "0") != (worker_url.path.strip("/") or "0"):
                problems.append("KEDA databaseIndex differs from FPG_REDIS_URL's database")
            if "--requirepass" in redis_argv:
                problems += _keda_auth_violations(docs, trigger)
    return problems


def _keda_auth_violations(docs: list[Doc], trigger: Doc) -> list[str]:
    reference = trigger.get("authenticationRef", {}).get("name")
    auths = [
        a for a in of_kind(docs, "TriggerAuthentication") if a["metadata"]["name"] == reference
    ]
    if not auths:
        return [f"Redis has a password but the KEDA trigger's authentication {reference} is absent"]
    redis_container, _ = redis_args(docs)
    password = next(e for e in redis_container["env"] if e["name"] == "REDIS_PASSWORD")
    secret = password["valueFrom"]["secretKeyRef"]
    targets = auths[0]["spec"].get("secretTargetRef", [])
    wanted = {"parameter": "password", "name": secret["name"], "key": secret["key"]}
    return [] if wanted in targets else [f"TriggerAuthentication does not read {wanted}"]


def autoscaler_violations(docs: list[Doc]) -> list[str]:
    """Never an HPA and KEDA on one Deployment; every target exists."""
    hpa, keda = autoscaler_targets(docs)
    deployments = {d["metadata"]["name"] for d in of_kind(docs, "Deployment")}
    problems = [f"{name} has both an HPA and a ScaledObject" for name in set(hpa) & set(keda)]
    problems += [f"autoscaler targets missing {name}" for name in set(hpa + keda) - deployments]
    counts = Counter(hpa + keda)
    problems += [f"{name} has {count} autoscalers" for name, count in counts.items() if count > 1]
    return problems


def capacity_violations(docs: list[Doc]) -> list[str]:
    """Worker processes fit the CPU limit; the ingress takes the largest batch and waits long."""
    problems = []
    worker = workload_running(docs, "fpg-worker").pod["containers"][0]
    concurrency = int(container_env(worker, docs).get("FPG_WORKER_CONCURRENCY") or 0)
    if not 1 <= concurrency <= cpu_cores(worker["resources"]["limits"]["cpu"]):
        problems.append(f"worker concurrency {concurrency} does not fit its CPU limit")
    max_pixels = int(container_env(worker, docs).get("FPG_MAX_PIXELS") or 0)
    needed = worker_memory_needed(concurrency, max_pixels)
    if memory_bytes(worker["resources"]["limits"]["memory"]) < needed:
        problems.append(f"worker memory limit below its processes' peak ({needed:,} bytes)")
    batch = int(fpg_env(docs, "fpg-gateway").get("FPG_MAX_BATCH_BYTES") or 0)
    if batch < int(str(default(GatewaySettings, "max_batch_bytes"))):
        problems.append("FPG_MAX_BATCH_BYTES below the code's default")
    for ingress in of_kind(docs, "Ingress"):
        notes = ingress["metadata"].get("annotations", {})
        body = notes.get("nginx.ingress.kubernetes.io/proxy-body-size", "1m")
        if size_bytes(body) < batch:
            problems.append(f"ingress body size {body} < FPG_MAX_BATCH_BYTES {batch}")
        for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
            seconds = int(notes.get(f"nginx.ingress.kubernetes.io/{timeout}", "60"))
            if seconds <= max_wait_seconds():
                problems.append(f"ingress {timeout} {seconds} s <= the gateway's max wait")
        if notes.get("nginx.ingress.kubernetes.io/proxy-request-buffering") != "off":
            problems.append("ingress buffers request bodies (originals) to the controller's disk")
    return problems


def default_deny_violations(docs: list[Doc]) -> list[str]:
    for policy in of_kind(docs, "NetworkPolicy"):
        spec = policy["spec"]
        if (
            spec["podSelector"] == {}
            and set(spec.get("policyTypes", [])) == {"Ingress", "Egress"}
            and not spec.get("ingress")
            and not spec.get("egress")
        ):
            return []
    return ["no default-deny NetworkPolicy (all pods, Ingress and Egress, no rule)"]


def network_violations(docs: list[Doc]) -> list[str]:
    """Who may talk to whom, evaluated from the policies (the other direction must be denied)."""
    gateway, worker = pod_peer(docs, "fpg-gateway"), pod_peer(docs, "fpg-worker")
    redis, postgres = pod_peer(docs, "redis"), pod_peer(docs, "postgres")
    keda_scales = bool(of_kind(docs, "ScaledObject"))
    expected = [
        (INGRESS_CONTROLLER, gateway, 8080, "TCP", True),
        (gateway, redis, 6379, "TCP", True),
        (worker, redis, 6379, "TCP", True),
        (gateway, KUBE_DNS, 53, "UDP", True),
        (worker, KUBE_DNS, 53, "UDP", True),
        (KEDA_OPERATOR, redis, 6379, "TCP", keda_scales),
        (STRANGER, gateway, 8080, "TCP", False),
        (STRANGER, redis, 6379, "TCP", False),
        (INGRESS_CONTROLLER, redis, 6379, "TCP", False),
        (INGRESS_CONTROLLER, worker, 8080, "TCP", False),
        (worker, gateway, 8080, "TCP", False),
        (gateway, worker, 8080, "TCP", False),
        (redis, gateway, 8080, "TCP", False),
        (gateway, INTERNET, 443, "TCP", False),
        (worker, INTERNET, 443, "TCP", False),
        (redis, INTERNET, 443, "TCP", False),
        (worker, INTERNET, 53, "UDP", False),
        (gateway, STRANGER, 80, "TCP", False),
        (gateway, postgres, 5432, "TCP", True),
        (worker, postgres, 5432, "TCP", True),
        (STRANGER, postgres, 5432, "TCP", False),
        (INGRESS_CONTROLLER, postgres, 5432, "TCP", False),
        (KEDA_OPERATOR, postgres, 5432, "TCP", False),
        (postgres, INTERNET, 443, "TCP", False),
        (postgres, redis, 6379, "TCP", False),
    ]
    problems = []
    for source, destination, port, protocol, allowed in expected:
        if connection_allowed(docs, source, destination, port, protocol) != allowed:
            verb = "is blocked" if allowed else "is open"
            problems.append(f"{source} -> {destination}:{port}/{protocol} {verb}")
    return problems


def access_control_violations(docs: list[Doc]) -> list[str]:
    """API keys on; gateway and workers read the audit database's URL and the checkpoint key
    from one Secret each."""
    problems = []
    if fpg_env(docs, "fpg-gateway").get("FPG_REQUIRE_API_KEYS") != "true":
        problems.append("the gateway does not require API keys (FPG_REQUIRE_API_KEYS)")
    for variable in ("FPG_AUDIT_DATABASE_URL", "FPG_AUDIT_CHECKPOINT_KEY"):
        sources = set()
        for image in ("fpg-gateway", "fpg-worker"):
            entries = workload_running(docs, image).pod["containers"][0].get("env", [])
            entry = next((e for e in entries if e["name"] == variable), None)
            reference = (entry or {}).get("valueFrom", {}).get("secretKeyRef")
            if reference is None:
                problems.append(f"{image}: {variable} does not come from a Secret")
            else:
                sources.add((reference["name"], reference["key"]))
        if len(sources) > 1:
            problems.append(f"gateway and worker read {variable} from different Secrets")
    return problems


def claim_at(docs: list[Doc], image: str, directory: str | None) -> str | None:
    """The PersistentVolumeClaim the pod running ``image`` mounts at ``directory``, if any."""
    pod = workload_running(docs, image).pod
    mount = next(
        (m for m in pod["containers"][0].get("volumeMounts", []) if m["mountPath"] == directory),
        None,
    )
    volume = next((v for v in pod.get("volumes", []) if mount and v["name"] == mount["name"]), {})
    claim = volume.get("persistentVolumeClaim", {}).get("claimName")
    return None if claim is None else str(claim)


def blob_volume_violations(docs: list[Doc]) -> list[str]:
    """Gateway and workers keep originals and results in one directory on one shared claim (a
    pod's own disk would hide each upload from the workers), and no other pod mounts it."""
    problems = []
    claims = set()
    for image in ("fpg-gateway", "fpg-worker"):
        url = urlparse(fpg_env(docs, image).get("FPG_BLOB_URL") or "")
        claim = claim_at(docs, image, url.path) if url.scheme == "file" else None
        if claim is None:
            problems.append(f"{image}: FPG_BLOB_URL is not a directory on a PersistentVolumeClaim")
        claims.add(claim)
    if len(claims) > 1:
        problems.append(f"gateway and worker keep blobs apart: {sorted(map(str, claims))}")
    for other in ("postgres", "redis"):
        for volume in workload_running(docs, other).pod.get("volumes", []):
            if volume.get("persistentVolumeClaim", {}).get("claimName") in claims:
                problems.append(f"{other} mounts the blob volume")
    return problems


def checkpoint_volume_violations(docs: list[Doc]) -> list[str]:
    """Gateway and workers write the audit checkpoints to one shared claim, none to a pod's own
    disk, and nothing else mounts it (PostgreSQL's administrators have no way in)."""
    problems = []
    claims = set()
    for image in ("fpg-gateway", "fpg-worker"):
        claim = claim_at(docs, image, fpg_env(docs, image).get("FPG_AUDIT_CHECKPOINT_DIR"))
        if claim is None:
            problems.append(f"{image}: FPG_AUDIT_CHECKPOINT_DIR is not on a PersistentVolumeClaim")
        claims.add(claim)
    if len(claims) > 1:
        problems.append(f"gateway and worker keep checkpoints apart: {sorted(map(str, claims))}")
    postgres = workload_running(docs, "postgres").pod
    for volume in postgres.get("volumes", []):
        if volume.get("persistentVolumeClaim", {}).get("claimName") in claims:
            problems.append("PostgreSQL mounts the checkpoint volume")
    return problems


CHECKS: dict[str, Check] = {
    "pod security": security_violations,
    "requests and limits": resource_violations,
    "probes": probe_violations,
    "images": lambda docs: image_violations(docs, project_version()),
    "time limits": time_limit_violations,
    "visibility timeout": visibility_violations,
    "settings": settings_violations,
    "redis url": redis_url_violations,
    "redis": redis_violations,
    "keda": keda_violations,
    "autoscalers": autoscaler_violations,
    "capacity": capacity_violations,
    "default deny": default_deny_violations,
    "network paths": network_violations,
    "access control": access_control_violations,
    "checkpoint volume": checkpoint_volume_violations,
    "blob volume": blob_volume_violations,
}


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_overlay_keeps_invariant(rendered, overlay, check):
    assert CHECKS[check](rendered[overlay]) == []


def test_prod_scales_workers_with_keda_and_dev_by_hand(rendered):
    hpa, keda = autoscaler_targets(rendered["prod"])
    assert keda == ["fpg-worker"]
    assert hpa == ["fpg-gateway"]
    hpa, keda = autoscaler_targets(rendered["dev"])
    assert hpa == keda == [], "dev: `kubectl scale` must not be undone by an autoscaler"


def test_prod_redis_requires_the_password_keda_uses(rendered):
    _, argv = redis_args(rendered["prod"])
    assert option(argv, "--requirepass") == "$(REDIS_PASSWORD)"
    assert of_kind(rendered["prod"], "TriggerAuthentication")


def test_settings_configmap_holds_the_code_defaults(rendered):
    """The deploy files spell out the defaults; if the code's change, they must follow."""
    for docs in rendered.values():
        env = fpg_env(docs, "fpg-gateway")
        for name in ("retention_seconds", "task_soft_time_limit", "task_hard_time_limit"):
            assert env[f"FPG_{name.upper()}"] == str(default(StoreSettings, name))
        for name in ("max_image_bytes", "max_batch_bytes"):
            assert env[f"FPG_{name.upper()}"] == str(default(GatewaySettings, name))


# ---------------------------------------------------------------------------------------------
# Each check notices a break
# ---------------------------------------------------------------------------------------------
def _container(docs: list[Doc], image: str) -> Doc:
    container: Doc = workload_running(docs, image).pod["containers"][0]
    return container


def _set_env(docs: list[Doc], image: str, name: str, value: str) -> None:
    env = _container(docs, image).setdefault("env", [])
    env[:] = [entry for entry in env if entry["name"] != name] + [{"name": name, "value": value}]


def _configmap(docs: list[Doc]) -> Doc:
    data: Doc = of_kind(docs, "ConfigMap")[0]["data"]
    return data


def _worker_pod(docs: list[Doc]) -> Doc:
    return workload_running(docs, "fpg-worker").pod


def _scaled(docs: list[Doc]) -> Doc:
    return of_kind(docs, "ScaledObject")[0]


def _policy(docs: list[Doc], name: str) -> Doc:
    return named(docs, "NetworkPolicy", name)


BREAKS: dict[str, tuple[str, Callable[[list[Doc]], object]]] = {
    "privilege escalation": (
        "pod security",
        lambda d: _container(d, "fpg-worker")["securityContext"].update(
            allowPrivilegeEscalation=True
        ),
    ),
    "root filesystem writable": (
        "pod security",
        lambda d: _container(d, "redis")["securityContext"].pop("readOnlyRootFilesystem"),
    ),
    "no /tmp": ("pod security", lambda d: _container(d, "fpg-gateway").pop("volumeMounts")),
    "capability kept": (
        "pod security",
        lambda d: _container(d, "fpg-gateway")["securityContext"].update(capabilities={}),
    ),
    "root user": (
        "pod security",
        lambda d: _container(d, "fpg-worker")["securityContext"].update(runAsUser=0),
    ),
    "no seccomp": (
        "pod security",
        lambda d: _worker_pod(d)["securityContext"].pop("seccompProfile"),
    ),
    "no memory limit": (
        "requests and limits",
        lambda d: _container(d, "fpg-worker")["resources"]["limits"].pop("memory"),
    ),
    "no readiness probe": ("probes", lambda d: _container(d, "fpg-gateway").pop("readinessProbe")),
    "liveness on /readyz": (
        "probes",
        lambda d: _container(d, "fpg-gateway")["livenessProbe"]["httpGet"].update(path="/readyz"),
    ),
    "latest tag": (
        "images",
        lambda d: _container(d, "fpg-worker").update(image="fpg-worker:latest"),
    ),
    "tags differ": (
        "images",
        lambda d: _container(d, "fpg-worker").update(
            image=_container(d, "fpg-worker")["image"].replace(project_version(), "9.9.9")
        ),
    ),
    "short grace period": (
        "time limits",
        lambda d: _worker_pod(d).update(terminationGracePeriodSeconds=60),
    ),
    "hard limit not the code's": (
        "time limits",
        lambda d: _configmap(d).update(FPG_TASK_HARD_TIME_LIMIT="300"),
    ),
    "worker's own hard limit": (
        "time limits",
        lambda d: _set_env(d, "fpg-worker", "FPG_TASK_HARD_TIME_LIMIT", "600"),
    ),
    "soft limit above hard": (
        "visibility timeout",
        lambda d: _configmap(d).update(FPG_TASK_SOFT_TIME_LIMIT="200"),
    ),
    "misspelt setting": ("settings", lambda d: _configmap(d).update(FPG_TASK_HARD_LIMIT="150")),
    "invalid setting": ("settings", lambda d: _configmap(d).update(FPG_RETENTION_SECONDS="10")),
    "blobs in Redis": ("settings", lambda d: _configmap(d).update(FPG_BLOB_URL="redis://r:6379")),
    "redis url host": (
        "redis url",
        lambda d: _set_env(d, "fpg-worker", "FPG_REDIS_URL", "redis://localhost:6379/0"),
    ),
    "password used before defined": (
        "redis url",
        lambda d: _container(d, "fpg-gateway")["env"].reverse(),
    ),
    "redis forgets": ("redis", lambda d: _container(d, "redis")["args"].remove("--appendfsync")),
    "redis data on the pod's disk": (
        "redis",
        lambda d: workload_running(d, "redis").pod.update(
            volumes=[{"name": "data", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]
        ),
    ),
    "redis evicts": (
        "redis",
        lambda d: _container(d, "redis").update(
            args=[a.replace("noeviction", "allkeys-lru") for a in _container(d, "redis")["args"]]
        ),
    ),
    "redis maxmemory above limit": (
        "redis",
        lambda d: _set_env(d, "redis", "REDIS_MAXMEMORY", "64gb"),
    ),
    "keda watches another list": (
        "keda",
        lambda d: _scaled(d)["spec"]["triggers"][0]["metadata"].update(listName="fpg"),
    ),
    "keda reads another redis": (
        "keda",
        lambda d: _scaled(d)["spec"]["triggers"][0]["metadata"].update(address="redis:6379"),
    ),
    "keda without auth": (
        "keda",
        lambda d: _scaled(d)["spec"]["triggers"][0].pop("authenticationRef"),
    ),
    "hpa on the workers": (
        "autoscalers",
        lambda d: d.append(
            {
                "kind": "HorizontalPodAutoscaler",
                "spec": {"scaleTargetRef": {"name": "fpg-worker"}},
            }
        ),
    ),
    "too many worker processes": (
        "capacity",
        lambda d: _set_env(d, "fpg-worker", "FPG_WORKER_CONCURRENCY", "16"),
    ),
    "pixel limit beyond the worker's memory": (
        "capacity",
        lambda d: _set_env(d, "fpg-worker", "FPG_MAX_PIXELS", "200000000"),
    ),
    "small ingress body": (
        "capacity",
        lambda d: of_kind(d, "Ingress")[0]["metadata"]["annotations"].update(
            {"nginx.ingress.kubernetes.io/proxy-body-size": "10m"}
        ),
    ),
    "no default deny": ("default deny", lambda d: d.remove(_policy(d, "default-deny-all"))),
    "worker reaches the internet": (
        "network paths",
        lambda d: _policy(d, "fpg-worker")["spec"]["egress"].append(
            {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}
        ),
    ),
    "redis open to the namespace": (
        "network paths",
        lambda d: _policy(d, "fpg-redis")["spec"]["ingress"][0].pop("from"),
    ),
    "gateway open to all": (
        "network paths",
        lambda d: _policy(d, "fpg-gateway")["spec"]["ingress"][0].pop("from"),
    ),
    "postgres open to the namespace": (
        "network paths",
        lambda d: _policy(d, "fpg-postgres")["spec"]["ingress"][0].pop("from"),
    ),
    "keys off": ("access control", lambda d: _configmap(d).update(FPG_REQUIRE_API_KEYS="false")),
    "database url in plain text": (
        "access control",
        lambda d: _set_env(d, "fpg-worker", "FPG_AUDIT_DATABASE_URL", "sqlite:///x.db"),
    ),
    "checkpoint key in plain text": (
        "access control",
        lambda d: _set_env(d, "fpg-gateway", "FPG_AUDIT_CHECKPOINT_KEY", "k" * 64),
    ),
    "checkpoints on the pod's disk": (
        "checkpoint volume",
        lambda d: _set_env(d, "fpg-worker", "FPG_AUDIT_CHECKPOINT_DIR", "/tmp/checkpoints"),
    ),
    "blobs on the pod's disk": (
        "blob volume",
        lambda d: _set_env(d, "fpg-gateway", "FPG_BLOB_URL", "file:///tmp/blobs"),
    ),
    "redis mounts the blobs": (
        "blob volume",
        lambda d: (
            workload_running(d, "redis")
            .pod["volumes"]
            .append({"name": "b", "persistentVolumeClaim": {"claimName": "fpg-blobs"}})
        ),
    ),
}


@pytest.mark.parametrize("name", BREAKS)
def test_a_broken_manifest_is_caught(rendered, name):
    check, breaking = BREAKS[name]
    docs = copy.deepcopy(rendered["prod"])
    assert CHECKS[check](docs) == []
    breaking(docs)
    assert CHECKS[check](docs) != [], f"{check} did not notice: {name}"
