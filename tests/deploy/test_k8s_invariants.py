"""What the rendered Kubernetes manifests must keep true, in every overlay.

Each invariant is a function returning its violations. The tests assert that the real overlays
have none, and ``test_a_broken_manifest_is_caught`` breaks a copy in one place per invariant to
prove that the check notices.
"""

import copy
import ipaddress
import re
from collections import Counter
from collections.abc import Callable
from urllib.parse import urlparse

import pytest

from fpg_api.settings import GatewaySettings
from fpg_worker.settings import WorkerSettings
from jobstore.celery_wiring import QUEUE, VIDEO_QUEUE, make_celery, video_time_limits
from jobstore.settings import StoreSettings

from .manifests import (
    IMAGE_ONLY_ENV,
    INTERNET,
    OVERLAYS,
    Doc,
    Peer,
    Workload,
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
    outside,
    pod,
    pod_peer,
    probe_violations,
    project_version,
    redis_args,
    resource_violations,
    security_violations,
    size_bytes,
    video_scratch_needed,
    video_segment_seconds,
    video_worker_memory_needed,
    worker_memory_needed,
    worker_queues,
    workload_named,
    workload_running,
)

OVERLAY_NAMES = [overlay.name for overlay in OVERLAYS]
Check = Callable[[list[Doc]], list[str]]
# The Deployments that read the blob store, Redis and the audit trail, and the image each runs.
SERVICES = {
    "fpg-gateway": "fpg-gateway",
    "fpg-worker": "fpg-worker",
    "fpg-worker-video": "fpg-worker",
}
WORKERS = {"fpg-worker": QUEUE, "fpg-worker-video": VIDEO_QUEUE}  # and the list each takes
VIDEO_PATH = "/v1/videos"
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
    models = {"fpg-gateway": GatewaySettings, "fpg-worker": WorkerSettings}
    # One ConfigMap feeds all, so a worker may see a gateway-only setting and the reverse.
    fields = {name for model in models.values() for name in model.model_fields}
    known = {f"FPG_{name.upper()}" for name in fields} | IMAGE_ONLY_ENV
    for name, image in SERVICES.items():
        model = models[image]
        env = fpg_env(docs, image, name)
        problems += [f"{name}: {key} is not a setting" for key in sorted(set(env) - known)]
        values = {
            key[4:].lower(): value
            for key, value in env.items()
            if key[4:].lower() in model.model_fields and value is not None and "$(" not in value
        }
        try:
            model(**values)  # type: ignore[arg-type]
        except ValueError as error:
            problems.append(f"{name}: {error}")
    return problems


def redis_url_violations(docs: list[Doc]) -> list[str]:
    """Gateway and worker reach Redis through its Service; $(VAR)s are defined before use."""
    problems = []
    _, redis_argv = redis_args(docs)
    service = named(docs, "Service", "fpg-redis")
    for image in SERVICES:
        container = workload_named(docs, image).pod["containers"][0]
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
    if claim_at(workload_running(docs, "redis"), "/data") is None:
        problems.append("Redis keeps its append-only file on the pod's disk: a restart loses it")
    return problems


def keda_violations(docs: list[Doc]) -> list[str]:
    """KEDA scales each worker Deployment on the list it takes tasks from, on the Redis Service
    the workers use, as they authenticate."""
    problems = []
    service = named(docs, "Service", "fpg-redis")
    _, redis_argv = redis_args(docs)
    scaled_objects = of_kind(docs, "ScaledObject")
    targets = [scaled["spec"]["scaleTargetRef"]["name"] for scaled in scaled_objects]
    if scaled_objects and sorted(targets) != sorted(WORKERS):
        problems.append(f"KEDA scales {sorted(targets)}, not each worker Deployment once")
    for scaled in scaled_objects:
        spec = scaled["spec"]
        target = spec["scaleTargetRef"]["name"]
        if target not in WORKERS:
            problems.append(f"ScaledObject targets {target}")
            continue
        worker_env = fpg_env(docs, "fpg-worker", target)
        worker_url = urlparse(worker_env["FPG_REDIS_URL"] or "")
        if spec.get("minReplicaCount", 0) > spec.get("maxReplicaCount", 100):
            problems.append("ScaledObject minReplicaCount > maxReplicaCount")
        triggers = [t for t in spec["triggers"] if t["type"] == "redis"]
        if not triggers:
            problems.append("ScaledObject has no redis trigger")
        for trigger in triggers:
            meta = trigger["metadata"]
            if [meta.get("listName")] != worker_queues(worker_env):
                problems.append(
                    f"KEDA scales {target} on list {meta.get('listName')}, "
                    f"it takes tasks from {worker_queues(worker_env)}"
                )
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
    return problems + video_ingress_violations(docs)


def video_ingress_violations(docs: list[Doc]) -> list[str]:
    """/v1/videos has an Ingress path of its own whose body limit takes FPG_MAX_VIDEO_BYTES."""
    video_bytes = int(fpg_env(docs, "fpg-gateway").get("FPG_MAX_VIDEO_BYTES") or 0)
    if not video_bytes:
        return ["the gateway has no FPG_MAX_VIDEO_BYTES"]
    ingresses = [
        ingress
        for ingress in of_kind(docs, "Ingress")
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
        if path["path"] == VIDEO_PATH and path["pathType"] == "Prefix"
    ]
    if not ingresses:
        return [f"no Ingress routes {VIDEO_PATH} with its own body limit"]
    notes = ingresses[0]["metadata"].get("annotations", {})
    body = notes.get("nginx.ingress.kubernetes.io/proxy-body-size", "1m")
    if size_bytes(body) < video_bytes:
        return [f"{VIDEO_PATH} ingress body size {body} < FPG_MAX_VIDEO_BYTES {video_bytes}"]
    return []


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


def blob_store_endpoint(docs: list[Doc]) -> tuple[Peer, int] | None:
    """An address and port of the S3 endpoint, as the NetworkPolicy fpg-blob-store allows it."""
    policies = [
        p for p in of_kind(docs, "NetworkPolicy") if p["metadata"]["name"] == "fpg-blob-store"
    ]
    if not policies:
        return None
    rule = policies[0]["spec"]["egress"][0]
    network = ipaddress.ip_network(rule["to"][0]["ipBlock"]["cidr"])
    address = next(network.hosts(), network.network_address)
    return outside(str(address)), int(rule["ports"][0]["port"])


Connection = tuple[Peer, Peer, int, str, bool]  # source, destination, port, protocol, allowed


def blob_store_paths(docs: list[Doc], services: list[Peer], others: list[Peer]) -> list[Connection]:
    """With the blob store in a bucket: the gateway and workers reach it, nothing else does."""
    endpoint = blob_store_endpoint(docs)
    if endpoint is None:
        return []
    store, port = endpoint
    return [(peer, store, port, "TCP", True) for peer in services] + [
        (peer, store, port, "TCP", False) for peer in others
    ]


def network_violations(docs: list[Doc]) -> list[str]:
    """Who may talk to whom, evaluated from the policies (the other direction must be denied)."""
    gateway, worker = pod_peer(docs, "fpg-gateway"), pod_peer(docs, "fpg-worker")
    video = pod("face-privacy-guard", **workload_named(docs, "fpg-worker-video").pod_labels)
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
        (video, redis, 6379, "TCP", True),
        (video, postgres, 5432, "TCP", True),
        (video, KUBE_DNS, 53, "UDP", True),
        (video, INTERNET, 443, "TCP", False),
        (INGRESS_CONTROLLER, video, 8080, "TCP", False),
        (gateway, video, 8080, "TCP", False),
        (STRANGER, video, 8080, "TCP", False),
        *blob_store_paths(docs, [gateway, worker, video], [redis, postgres]),
    ]
    problems = []
    url = urlparse(fpg_env(docs, "fpg-gateway").get("FPG_BLOB_URL") or "")
    if url.scheme == "s3" and blob_store_endpoint(docs) is None:
        problems.append(
            "the blob store is a bucket, and no NetworkPolicy fpg-blob-store leads there"
        )
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
        for image in SERVICES:
            entries = workload_named(docs, image).pod["containers"][0].get("env", [])
            entry = next((e for e in entries if e["name"] == variable), None)
            reference = (entry or {}).get("valueFrom", {}).get("secretKeyRef")
            if reference is None:
                problems.append(f"{image}: {variable} does not come from a Secret")
            else:
                sources.add((reference["name"], reference["key"]))
        if len(sources) > 1:
            problems.append(f"gateway and workers read {variable} from different Secrets")
    return problems


def claim_at(load: Workload, directory: str | None) -> str | None:
    """The PersistentVolumeClaim ``load``'s pod mounts at ``directory``, if any."""
    pod = load.pod
    mount = next(
        (m for m in pod["containers"][0].get("volumeMounts", []) if m["mountPath"] == directory),
        None,
    )
    volume = next((v for v in pod.get("volumes", []) if mount and v["name"] == mount["name"]), {})
    claim = volume.get("persistentVolumeClaim", {}).get("claimName")
    return None if claim is None else str(claim)


def blob_store_violations(docs: list[Doc]) -> list[str]:
    """Gateway and workers keep originals and results in one store. A directory: on one shared
    claim (a pod's own disk would hide each upload from the workers) that no other pod mounts.
    A bucket: no claim at all, and endpoint and credentials from one Secret, never in the open."""
    urls = {
        name: fpg_env(docs, image, name).get("FPG_BLOB_URL") or ""
        for name, image in SERVICES.items()
    }
    if len(set(urls.values())) > 1:
        return [f"gateway and workers use different blob stores: {urls}"]
    scheme = urlparse(next(iter(urls.values()))).scheme
    if scheme == "s3":
        return _bucket_violations(docs)
    problems = []
    claims = set()
    for name in SERVICES:
        url = urlparse(urls[name])
        load = workload_named(docs, name)
        claim = claim_at(load, url.path) if url.scheme == "file" else None
        if claim is None:
            problems.append(f"{name}: FPG_BLOB_URL is not a directory on a PersistentVolumeClaim")
        claims.add(claim)
    if len(claims) > 1:
        problems.append(f"gateway and workers keep blobs apart: {sorted(map(str, claims))}")
    for other in ("postgres", "redis"):
        for volume in workload_running(docs, other).pod.get("volumes", []):
            if volume.get("persistentVolumeClaim", {}).get("claimName") in claims:
                problems.append(f"{other} mounts the blob volume")
    return problems


S3_SETTINGS = ("AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def _bucket_violations(docs: list[Doc]) -> list[str]:
    problems = []
    if any(
        doc["metadata"]["name"] == "fpg-blobs" for doc in of_kind(docs, "PersistentVolumeClaim")
    ):
        problems.append("the blob store is a bucket, yet the claim fpg-blobs is still made")
    secrets = set()
    for name in SERVICES:
        load = workload_named(docs, name)
        container = load.pod["containers"][0]
        claims = [v for v in load.pod.get("volumes", []) if "persistentVolumeClaim" in v]
        if any(v["persistentVolumeClaim"]["claimName"] == "fpg-blobs" for v in claims):
            problems.append(f"{name} still mounts fpg-blobs")
        entries = {entry["name"]: entry for entry in container.get("env", [])}
        for variable in S3_SETTINGS:
            reference = entries.get(variable, {}).get("valueFrom", {}).get("secretKeyRef")
            if reference is None:
                problems.append(f"{name}: {variable} does not come from a Secret")
            else:
                secrets.add(reference["name"])
        if set(S3_SETTINGS) & set(container_env({**container, "env": []}, docs)):
            problems.append(f"{name}: S3 settings in a ConfigMap, in the open")
    if len(secrets) > 1:
        problems.append(f"the S3 settings come from several Secrets: {sorted(secrets)}")
    return problems


def checkpoint_volume_violations(docs: list[Doc]) -> list[str]:
    """Gateway and workers write the audit checkpoints to one shared claim, none to a pod's own
    disk, and nothing else mounts it (PostgreSQL's administrators have no way in)."""
    problems = []
    claims = set()
    for name, image in SERVICES.items():
        directory = fpg_env(docs, image, name).get("FPG_AUDIT_CHECKPOINT_DIR")
        claim = claim_at(workload_named(docs, name), directory)
        if claim is None:
            problems.append(f"{name}: FPG_AUDIT_CHECKPOINT_DIR is not on a PersistentVolumeClaim")
        claims.add(claim)
    if len(claims) > 1:
        problems.append(f"gateway and workers keep checkpoints apart: {sorted(map(str, claims))}")
    postgres = workload_running(docs, "postgres").pod
    for volume in postgres.get("volumes", []):
        if volume.get("persistentVolumeClaim", {}).get("claimName") in claims:
            problems.append("PostgreSQL mounts the checkpoint volume")
    return problems


def queue_violations(docs: list[Doc]) -> list[str]:
    """Photo workers take photos only and video workers videos only, each through the worker
    image's own command (which reads FPG_WORKER_QUEUES)."""
    problems = []
    for name, queue in WORKERS.items():
        container = workload_named(docs, name).pod["containers"][0]
        if "command" in container or "args" in container:
            problems.append(f"{name} replaces the worker image's command")
        queues = worker_queues(fpg_env(docs, "fpg-worker", name))
        if queues != [queue]:
            problems.append(f"{name} takes tasks from {queues}, not [{queue!r}]")
    return problems


def segment_hard_time_limit(segment_seconds: float) -> int:
    """The hard time limit the worker gives one segment's task."""
    return video_time_limits(segment_seconds)[1]


def _scratch_volume(load: Workload, directory: str | None) -> Doc | None:
    mounts = load.pod["containers"][0].get("volumeMounts", [])
    mount = next((m for m in mounts if m["mountPath"] == directory), None)
    volumes = load.pod.get("volumes", [])
    return next((v for v in volumes if mount and v["name"] == mount["name"]), None)


def video_worker_violations(docs: list[Doc]) -> list[str]:
    """The video worker fits its processes: CPU, memory for 1080p, a scratch emptyDir with a
    size limit for its segments (counted in its ephemeral-storage limit when on disk), and a
    grace period that lets a running segment finish."""
    load = workload_named(docs, "fpg-worker-video")
    container = load.pod["containers"][0]
    env = fpg_env(docs, "fpg-worker", load.name)
    limits = container["resources"]["limits"]
    concurrency = int(container_env(container, docs).get("FPG_WORKER_CONCURRENCY") or 0)
    problems = []
    if not 1 <= concurrency <= cpu_cores(limits["cpu"]):
        problems.append(f"video worker concurrency {concurrency} does not fit its CPU limit")
    scratch = _scratch_volume(load, env.get("FPG_WORKER_SCRATCH_DIR"))
    size_limit = (scratch or {}).get("emptyDir", {}).get("sizeLimit")
    segment = video_segment_seconds(env)
    if size_limit is None:
        problems.append("FPG_WORKER_SCRATCH_DIR is not an emptyDir with a sizeLimit")
    elif memory_bytes(size_limit) < video_scratch_needed(concurrency, segment):
        problems.append(f"scratch {size_limit} below {concurrency} x two {segment} s segments")
    in_memory = (scratch or {}).get("emptyDir", {}).get("medium") == "Memory"
    memory = video_worker_memory_needed(concurrency) + (
        memory_bytes(size_limit) if in_memory and size_limit else 0
    )
    if memory_bytes(limits["memory"]) < memory:
        problems.append(f"video worker memory limit below its processes' peak ({memory:,} bytes)")
    if not in_memory and size_limit:
        storage = limits.get("ephemeral-storage")
        requested = container["resources"].get("requests", {}).get("ephemeral-storage")
        if storage is None or requested is None:
            problems.append("video worker has no ephemeral-storage request and limit")
        elif memory_bytes(requested) < memory_bytes(size_limit):
            problems.append("video worker's ephemeral-storage request below its scratch")
    grace = load.pod.get("terminationGracePeriodSeconds", 30)
    if grace < segment_hard_time_limit(segment):
        problems.append(f"video worker grace {grace} s < a segment's hard time limit")
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
    "blob store": blob_store_violations,
    "queues": queue_violations,
    "video worker": video_worker_violations,
}


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_overlay_keeps_invariant(rendered, overlay, check):
    assert CHECKS[check](rendered[overlay]) == []


def test_prod_scales_workers_with_keda_and_dev_by_hand(rendered):
    hpa, keda = autoscaler_targets(rendered["prod"])
    assert sorted(keda) == ["fpg-worker", "fpg-worker-video"]
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
        for name in ("max_image_bytes", "max_batch_bytes", "max_video_bytes", "max_video_seconds"):
            assert float(env[f"FPG_{name.upper()}"] or 0) == default(GatewaySettings, name)
        segment_seconds = default(WorkerSettings, "video_segment_seconds")
        assert float(env["FPG_VIDEO_SEGMENT_SECONDS"] or 0) == segment_seconds


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
    "segments of no length": (
        "settings",
        lambda d: _configmap(d).update(FPG_VIDEO_SEGMENT_SECONDS="0"),
    ),
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
        "blob store",
        lambda d: _set_env(d, "fpg-gateway", "FPG_BLOB_URL", "file:///tmp/blobs"),
    ),
    "redis mounts the blobs": (
        "blob store",
        lambda d: (
            workload_running(d, "redis")
            .pod["volumes"]
            .append({"name": "b", "persistentVolumeClaim": {"claimName": "fpg-blobs"}})
        ),
    ),
}


def _video_pod(docs: list[Doc]) -> Doc:
    return workload_named(docs, "fpg-worker-video").pod


def _video_container(docs: list[Doc]) -> Doc:
    container: Doc = _video_pod(docs)["containers"][0]
    return container


def _set_video_env(docs: list[Doc], name: str, value: str) -> None:
    env = _video_container(docs)["env"]
    env[:] = [entry for entry in env if entry["name"] != name] + [{"name": name, "value": value}]


def _scratch(docs: list[Doc]) -> Doc:
    volume: Doc = next(v for v in _video_pod(docs)["volumes"] if v["name"] == "scratch")
    return volume


def _video_scaled(docs: list[Doc]) -> Doc:
    return named(docs, "ScaledObject", "fpg-worker-video")


VIDEO_BREAKS: dict[str, tuple[str, Callable[[list[Doc]], object]]] = {
    "video worker takes photos too": (
        "queues",
        lambda d: _set_video_env(d, "FPG_WORKER_QUEUES", "celery,video"),
    ),
    "photo worker takes videos too": (
        "queues",
        lambda d: _set_env(d, "fpg-worker", "FPG_WORKER_QUEUES", "celery,video"),
    ),
    "video worker on the image's default list": (
        "queues",
        lambda d: _video_container(d).update(
            env=[e for e in _video_container(d)["env"] if e["name"] != "FPG_WORKER_QUEUES"]
        ),
    ),
    "video worker's own command": (
        "queues",
        lambda d: _video_container(d).update(args=["celery", "-A", "fpg_worker.celery_app"]),
    ),
    "keda scales videos on the photo list": (
        "keda",
        lambda d: _video_scaled(d)["spec"]["triggers"][0]["metadata"].update(listName="celery"),
    ),
    "no keda for the video workers": ("keda", lambda d: d.remove(_video_scaled(d))),
    "scratch without a size limit": (
        "video worker",
        lambda d: _scratch(d)["emptyDir"].pop("sizeLimit"),
    ),
    "scratch too small for a segment": (
        "video worker",
        lambda d: _scratch(d)["emptyDir"].update(sizeLimit="100Mi"),
    ),
    "longer segments, same scratch": (
        "video worker",
        lambda d: _set_video_env(d, "FPG_VIDEO_SEGMENT_SECONDS", "600"),
    ),
    "scratch on the read-only root": (
        "video worker",
        lambda d: _set_video_env(d, "FPG_WORKER_SCRATCH_DIR", "/var/tmp"),
    ),
    "large scratch in memory, memory not raised": (
        "video worker",
        lambda d: _scratch(d)["emptyDir"].update(medium="Memory", sizeLimit="4Gi"),
    ),
    "no ephemeral-storage request": (
        "video worker",
        lambda d: _video_container(d)["resources"]["requests"].pop("ephemeral-storage"),
    ),
    "more video processes than CPUs": (
        "video worker",
        lambda d: _set_video_env(d, "FPG_WORKER_CONCURRENCY", "3"),
    ),
    "video memory for 540p only": (
        "video worker",
        lambda d: _video_container(d)["resources"]["limits"].update(memory="1Gi"),
    ),
    "video grace of a photo task": (
        "video worker",
        lambda d: _video_pod(d).update(terminationGracePeriodSeconds=180),
    ),
    "video uploads capped at the batch size": (
        "capacity",
        lambda d: named(d, "Ingress", "fpg-gateway-videos")["metadata"]["annotations"].update(
            {"nginx.ingress.kubernetes.io/proxy-body-size": "512m"}
        ),
    ),
    "no video path": ("capacity", lambda d: d.remove(named(d, "Ingress", "fpg-gateway-videos"))),
    "video worker outside the workers' policy": (
        "network paths",
        lambda d: (
            workload_named(d, "fpg-worker-video")
            .doc["spec"]["template"]["metadata"]["labels"]
            .update({"app.kubernetes.io/component": "video"})
        ),
    ),
    "video worker without the redis password": (
        "redis url",
        lambda d: _set_video_env(d, "FPG_REDIS_URL", "redis://fpg-redis:6379/0"),
    ),
    "video worker's audit url in plain text": (
        "access control",
        lambda d: _set_video_env(d, "FPG_AUDIT_DATABASE_URL", "sqlite:///x.db"),
    ),
    "video worker's blobs elsewhere": (
        "blob store",
        lambda d: _set_video_env(d, "FPG_BLOB_URL", "file:///var/lib/fpg/scratch"),
    ),
}
BREAKS |= VIDEO_BREAKS


def _s3_env(docs: list[Doc], image: str) -> list[Doc]:
    env: list[Doc] = workload_named(docs, image).pod["containers"][0]["env"]
    return env


S3_BREAKS: dict[str, tuple[str, Callable[[list[Doc]], object]]] = {
    "s3 secret key in the open": (
        "blob store",
        lambda d: _s3_env(d, "fpg-worker-video").append(
            {"name": "AWS_SECRET_ACCESS_KEY", "value": "plain"}
        ),
    ),
    "s3 credentials left out": (
        "blob store",
        lambda d: _s3_env(d, "fpg-gateway").remove(
            next(e for e in _s3_env(d, "fpg-gateway") if e["name"] == "AWS_ACCESS_KEY_ID")
        ),
    ),
    "blob claim still made": (
        "blob store",
        lambda d: d.append(
            {"kind": "PersistentVolumeClaim", "metadata": {"name": "fpg-blobs"}, "spec": {}}
        ),
    ),
    "one worker on the volume": (
        "blob store",
        lambda d: _set_env(d, "fpg-worker", "FPG_BLOB_URL", "file:///var/lib/fpg/blobs"),
    ),
    "no way to the store": ("network paths", lambda d: d.remove(_policy(d, "fpg-blob-store"))),
    "workers cut off from the store": (
        "network paths",
        lambda d: _policy(d, "fpg-blob-store")["spec"]["podSelector"]["matchExpressions"][0].update(
            values=["gateway"]
        ),
    ),
    "store egress open to the internet": (
        "network paths",
        lambda d: _policy(d, "fpg-blob-store")["spec"]["egress"][0]["to"][0]["ipBlock"].update(
            cidr="0.0.0.0/0"
        ),
    ),
    "redis reaches the store": (
        "network paths",
        lambda d: _policy(d, "fpg-blob-store")["spec"]["podSelector"]["matchExpressions"][0][
            "values"
        ].append("redis"),
    ),
}


# Each break on the overlay it applies to: the S3 ones need the blob store in a bucket.
BROKEN_OVERLAYS = {"prod": BREAKS, "prod-s3": S3_BREAKS}


@pytest.mark.parametrize(
    ("overlay", "name"),
    [(overlay, name) for overlay, breaks in BROKEN_OVERLAYS.items() for name in breaks],
)
def test_a_broken_manifest_is_caught(rendered, overlay, name):
    check, breaking = BROKEN_OVERLAYS[overlay][name]
    docs = copy.deepcopy(rendered[overlay])
    assert CHECKS[check](docs) == []
    breaking(docs)
    assert CHECKS[check](docs) != [], f"{check} did not notice: {name}"


def test_the_s3_overlay_keeps_blobs_in_a_bucket_and_prod_on_the_volume(rendered):
    assert fpg_env(rendered["prod-s3"], "fpg-gateway")["FPG_BLOB_URL"] == (
        "s3://fpg-blobs/fpg?sse=AES256"
    )
    assert blob_store_endpoint(rendered["prod-s3"]) is not None
    assert urlparse(fpg_env(rendered["prod"], "fpg-gateway")["FPG_BLOB_URL"] or "").scheme == "file"
    assert blob_store_endpoint(rendered["prod"]) is None
