"""Reading the deploy files: rendered Kustomize overlays, the compose file, the Dockerfile.

Each ``*_violations`` function returns what is wrong (an empty list when nothing is), so a test
can both assert that the real files are clean and that a deliberately broken copy is caught.
"""

import ipaddress
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from blurcore.image_memory import memory_budget
from fpg_api.settings import GatewaySettings
from fpg_worker.settings import WorkerSettings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = sorted(path for path in (K8S / "overlays").iterdir() if path.is_dir())
COMPOSE_FILES = sorted((DEPLOY / "compose").glob("*.y*ml"))
DOCKERFILES = sorted(DEPLOY.rglob("Dockerfile*"))
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
NGINX_CONF = DEPLOY / "compose" / "nginx" / "default.conf"
VENV_BIN = REPO / ".venv" / "bin"

Doc = dict[str, Any]
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
# Read by the image's CMD (deploy/docker/Dockerfile), not by a pydantic settings class.
IMAGE_ONLY_ENV = {"FPG_WORKER_CONCURRENCY", "FPG_WORKER_QUEUES"}


# A worker's memory as measured (docs/reliability.md, "Memory per image"): the Celery parent and
# the probe's process, then per process the models and the detectors' arena once warm, and the
# image budget with the tenth above it that the measured peaks took.
WORKER_PARENT_AND_PROBE_BYTES = 250 * 2**20
WORKER_PROCESS_WARM_BYTES = 1100 * 2**20


def worker_memory_needed(concurrency: int, max_pixels: int) -> int:
    per_process = WORKER_PROCESS_WARM_BYTES + memory_budget(max_pixels) * 11 // 10
    return WORKER_PARENT_AND_PROBE_BYTES + concurrency * per_process


# A video worker process (docs/deployment.md, "Sizing"): the peak RSS of `blurcore blur` on one
# thread was 441 MiB on a 960x540 clip and 1,083 MiB on a 1920x1080 one (a line through both:
# 230 MiB + 415 MiB per megapixel), with FFmpeg decoding on this machine's 2 threads; on a large
# node it takes 16, 47 MiB more per megapixel (97 MiB more on 1080p, measured). A tenth above
# that; the limits must take 1080p at least.
VIDEO_PROCESS_BYTES = 230 * 2**20
VIDEO_PROCESS_BYTES_PER_MEGAPIXEL = (415 + 47) * 2**20
VIDEO_SIZED_FOR_PIXELS = 1920 * 1080
# Scratch: 26.1 MB of output per minute of 960x540 measured; taken by pixels to 4K (x16). A
# process writes one segment's part at a time (encoded, stored from the file, removed), and a
# segment runs to the first keyframe FPG_VIDEO_SEGMENT_SECONDS after its start: room for two
# takes a keyframe interval as long as the segment itself.
VIDEO_OUTPUT_BYTES_PER_MINUTE = 26_100_000 * 16
SEGMENTS_ON_SCRATCH = 2


def video_worker_memory_needed(concurrency: int, pixels: int = VIDEO_SIZED_FOR_PIXELS) -> int:
    per_process = VIDEO_PROCESS_BYTES + VIDEO_PROCESS_BYTES_PER_MEGAPIXEL * pixels // 10**6
    return WORKER_PARENT_AND_PROBE_BYTES + concurrency * per_process * 11 // 10


def video_scratch_needed(concurrency: int, segment_seconds: float) -> int:
    per_segment = VIDEO_OUTPUT_BYTES_PER_MINUTE * segment_seconds / 60
    return round(concurrency * SEGMENTS_ON_SCRATCH * per_segment)


def video_segment_seconds(env: dict[str, str | None]) -> float:
    """The segment length of a video worker with this environment: FPG_VIDEO_SEGMENT_SECONDS
    (whose value the settings checks validate), or the code's default."""
    value = env.get("FPG_VIDEO_SEGMENT_SECONDS")
    default = WorkerSettings.model_fields["video_segment_seconds"].default
    return float(value or default)


def kubectl() -> str | None:
    return shutil.which("kubectl")


def render(directory: Path) -> list[Doc]:
    """``kubectl kustomize DIR``, parsed; the caller skips when kubectl is missing."""
    executable = kubectl()
    assert executable is not None
    result = subprocess.run(
        [executable, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def project_version() -> str:
    with (REPO / "services" / "api" / "pyproject.toml").open("rb") as handle:
        version: str = tomllib.load(handle)["project"]["version"]
    return version


# ---------------------------------------------------------------------------------------------
# Quantities and image references
# ---------------------------------------------------------------------------------------------
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_DECIMAL = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
# Redis and nginx units: 1k = 1000 in Redis but 1024 in nginx; both treat kb/mb/gb as 1024-based.
_SIZE_SUFFIX = {"": 1, "b": 1, "k": 2**10, "kb": 2**10, "m": 2**20, "mb": 2**20, "g": 2**30}
_SIZE_SUFFIX |= {"gb": 2**30}


def memory_bytes(quantity: str | int) -> int:
    text = str(quantity)
    for suffix, factor in (_BINARY | _DECIMAL).items():
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(text)


def cpu_cores(quantity: str | int | float) -> float:
    text = str(quantity)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def size_bytes(text: str) -> int:
    """Redis ``maxmemory`` or nginx ``client_max_body_size`` ("512m", "1536mb", "6gb")."""
    match = re.fullmatch(r"(\d+)([a-zA-Z]*)", text.strip())
    assert match, f"not a size: {text!r}"
    return int(match.group(1)) * _SIZE_SUFFIX[match.group(2).lower()]


def split_image(reference: str) -> tuple[str, str | None]:
    """``registry/name:tag`` -> (``registry/name``, tag); a digest counts as a tag."""
    if "@" in reference:
        name, digest = reference.split("@", 1)
        return name, digest
    last = reference.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = reference.rsplit(":", 1)
        return name, tag
    return reference, None


def image_basename(reference: str) -> str:
    return split_image(reference)[0].rsplit("/", 1)[-1]


# ---------------------------------------------------------------------------------------------
# Walking rendered manifests
# ---------------------------------------------------------------------------------------------
def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc.get("kind") == kind]


def named(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [doc for doc in of_kind(docs, kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


@dataclass
class Workload:
    doc: Doc

    @property
    def name(self) -> str:
        name: str = self.doc["metadata"]["name"]
        return name

    @property
    def pod(self) -> Doc:
        pod: Doc = self.doc["spec"]["template"]["spec"]
        return pod

    @property
    def pod_labels(self) -> dict[str, str]:
        labels: dict[str, str] = self.doc["spec"]["template"]["metadata"]["labels"]
        return labels

    def containers(self) -> list[Doc]:
        pod = self.pod
        return [*pod.get("initContainers", []), *pod["containers"]]


def workloads(docs: list[Doc]) -> list[Workload]:
    return [Workload(doc) for doc in docs if doc.get("kind") in WORKLOAD_KINDS]


def workload_running(docs: list[Doc], image: str) -> Workload:
    """The one workload whose main container runs the image named ``image`` (no registry/tag);
    where several do (the photo and video workers), the one named after the image."""
    found = [
        load
        for load in workloads(docs)
        if any(image_basename(c["image"]) == image for c in load.pod["containers"])
    ]
    if len(found) > 1:
        found = [load for load in found if load.name == image]
    assert len(found) == 1, f"expected one workload running {image}, found {len(found)}"
    return found[0]


def workload_named(docs: list[Doc], name: str) -> Workload:
    return Workload(named(docs, "Deployment", name))


def container_env(container: Doc, docs: list[Doc]) -> dict[str, str | None]:
    """The container's environment as Kubernetes builds it: envFrom ConfigMaps, then env.

    Values from Secrets or fields are ``None``; ``$(VAR)`` references are left as they are.
    """
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            config = named(docs, "ConfigMap", source["configMapRef"]["name"])
            env.update({key: str(value) for key, value in config.get("data", {}).items()})
    for entry in container.get("env", []):
        env[entry["name"]] = str(entry["value"]) if "value" in entry else None
    return env


def expand(text: str, env: dict[str, str | None]) -> str:
    """Kubernetes' ``$(VAR)`` expansion in args, for variables with a literal value."""
    return re.sub(
        r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1)) or m.group(0), text
    )


def fpg_env(docs: list[Doc], image: str, name: str | None = None) -> dict[str, str | None]:
    """The FPG_ settings of the workload running ``image`` (or of the Deployment ``name``)."""
    load = workload_running(docs, image) if name is None else workload_named(docs, name)
    container = load.pod["containers"][0]
    return {k: v for k, v in container_env(container, docs).items() if k.startswith("FPG_")}


def worker_queues(env: dict[str, str | None]) -> list[str]:
    """The Redis lists a worker container takes tasks from: FPG_WORKER_QUEUES, which the worker
    image's command passes to ``celery worker --queues``, or the image's default."""
    queues = env.get("FPG_WORKER_QUEUES")
    if queues is None:
        queues = stage_env(dockerfile_stages(DOCKERFILE), "worker")["FPG_WORKER_QUEUES"]
    return [queue.strip() for queue in queues.split(",")]


def max_wait_seconds() -> float:
    settings_default = GatewaySettings.model_fields.get("max_wait_seconds")
    if settings_default is not None:
        return float(settings_default.default)
    from fpg_api.schemas import MAX_WAIT_SECONDS

    return float(MAX_WAIT_SECONDS)


def redis_args(docs: list[Doc]) -> tuple[Doc, list[str]]:
    redis = workload_running(docs, "redis")
    container = redis.pod["containers"][0]
    env = container_env(container, docs)
    argv = [*container.get("command", []), *container.get("args", [])]
    return container, [expand(arg, env) for arg in argv]


def option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


# ---------------------------------------------------------------------------------------------
# Pod invariants
# ---------------------------------------------------------------------------------------------
def security_violations(docs: list[Doc]) -> list[str]:
    problems = []
    for load in workloads(docs):
        pod = load.pod
        pod_context = pod.get("securityContext", {})
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{load.name}: automountServiceAccountToken is not false")
        if pod.get("enableServiceLinks") is not False:
            problems.append(f"{load.name}: enableServiceLinks is not false (FPG_ env injection)")
        for container in load.containers():
            where = f"{load.name}/{container['name']}"
            context = container.get("securityContext", {})
            merged = pod_context | context
            if merged.get("runAsNonRoot") is not True:
                problems.append(f"{where}: runAsNonRoot is not true")
            if merged.get("runAsUser", 1) == 0:
                problems.append(f"{where}: runs as uid 0")
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if "ALL" not in context.get("capabilities", {}).get("drop", []):
                problems.append(f"{where}: capabilities do not drop ALL")
            if context.get("capabilities", {}).get("add"):
                problems.append(f"{where}: adds capabilities")
            if context.get("privileged"):
                problems.append(f"{where}: privileged")
            if context.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: readOnlyRootFilesystem is not true")
            if merged.get("seccompProfile", {}).get("type") != "RuntimeDefault":
                problems.append(f"{where}: seccompProfile is not RuntimeDefault")
            volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
            tmp = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
            if not tmp or "emptyDir" not in volumes.get(tmp[0]["name"], {}):
                problems.append(f"{where}: no emptyDir mounted at /tmp")
    return problems


def resource_violations(docs: list[Doc]) -> list[str]:
    problems = []
    for load in workloads(docs):
        for container in load.containers():
            where = f"{load.name}/{container['name']}"
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in resources.get(kind, {}):
                        problems.append(f"{where}: no {resource} {kind[:-1]}")
            requests, limits = resources.get("requests", {}), resources.get("limits", {})
            for resource, amount in (("cpu", cpu_cores), ("memory", memory_bytes)):
                both = resource in requests and resource in limits
                if both and amount(requests[resource]) > amount(limits[resource]):
                    problems.append(f"{where}: {resource} request above its limit")
    return problems


def probe_violations(docs: list[Doc]) -> list[str]:
    problems = []
    for load in workloads(docs):
        for container in load.pod["containers"]:
            where = f"{load.name}/{container['name']}"
            for probe in ("livenessProbe", "readinessProbe"):
                if probe not in container:
                    problems.append(f"{where}: no {probe}")
    gateway = workload_running(docs, "fpg-gateway").pod["containers"][0]
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        if gateway.get(probe, {}).get("httpGet", {}).get("path") != path:
            problems.append(f"gateway: {probe} does not GET {path}")
    return problems


def image_violations(docs: list[Doc], version: str) -> list[str]:
    """No ``latest`` or untagged image; gateway and worker are one release from one registry."""
    problems = []
    ours: dict[str, set[str]] = {"fpg-gateway": set(), "fpg-worker": set()}
    for load in workloads(docs):
        for container in load.containers():
            name, tag = split_image(container["image"])
            if tag is None or tag == "latest":
                problems.append(f"{load.name}: image {container['image']} has no fixed tag")
            if image_basename(name) in ours:
                ours[image_basename(name)].add(container["image"])
    for image, references in ours.items():
        if len(references) != 1:
            problems.append(f"{image}: expected one reference, found {sorted(references)}")
    references = [next(iter(refs)) for refs in ours.values() if len(refs) == 1]
    if len({split_image(ref)[1] for ref in references}) > 1:
        problems.append(f"gateway and worker tags differ: {references}")
    if len({split_image(ref)[0].rpartition("/")[0] for ref in references}) > 1:
        problems.append(f"gateway and worker come from different registries: {references}")
    for reference in references:
        if split_image(reference)[1] != version:
            problems.append(f"{reference}: tag is not the package version {version}")
    return problems


def autoscaler_targets(docs: list[Doc]) -> tuple[list[str], list[str]]:
    """(Deployments targeted by HPAs, Deployments targeted by KEDA ScaledObjects)."""
    hpa = [
        doc["spec"]["scaleTargetRef"]["name"] for doc in of_kind(docs, "HorizontalPodAutoscaler")
    ]
    keda = [doc["spec"]["scaleTargetRef"]["name"] for doc in of_kind(docs, "ScaledObject")]
    return hpa, keda


# ---------------------------------------------------------------------------------------------
# NetworkPolicy: a small evaluator (matchLabels selectors, ports, ipBlock = outside the cluster)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Peer:
    namespace: str | None  # None: an address outside the cluster
    labels: tuple[tuple[str, str], ...] = ()
    address: str | None = None  # outside the cluster only

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


def pod(namespace: str, **labels: str) -> Peer:
    return Peer(namespace, tuple(sorted(labels.items())))


def outside(address: str) -> Peer:
    return Peer(None, address=address)


INTERNET = outside("93.184.215.14")


def _selects(selector: Doc, labels: dict[str, str]) -> bool:
    """matchLabels, and matchExpressions with the operator In."""
    expressions = selector.get("matchExpressions", [])
    assert all(e["operator"] == "In" for e in expressions), "the evaluator handles In only"
    return all(
        labels.get(key) == value for key, value in selector.get("matchLabels", {}).items()
    ) and all(labels.get(e["key"]) in e["values"] for e in expressions)


def _in_block(block: Doc, address: str) -> bool:
    ip = ipaddress.ip_address(address)
    excepted = any(ip in ipaddress.ip_network(cidr) for cidr in block.get("except", []))
    return ip in ipaddress.ip_network(block["cidr"]) and not excepted


def _peer_matches(rule_peer: Doc, peer: Peer, policy_namespace: str) -> bool:
    if "ipBlock" in rule_peer:
        return peer.address is not None and _in_block(rule_peer["ipBlock"], peer.address)
    if peer.namespace is None:
        return False
    if "namespaceSelector" in rule_peer:
        namespace_labels = {"kubernetes.io/metadata.name": peer.namespace}
        if not _selects(rule_peer["namespaceSelector"], namespace_labels):
            return False
    elif peer.namespace != policy_namespace:
        return False
    return _selects(rule_peer.get("podSelector", {}), peer.label_map)


def _port_matches(rule: Doc, port: int, protocol: str) -> bool:
    ports = rule.get("ports")
    return not ports or any(
        p.get("port") in (None, port) and p.get("protocol", "TCP") == protocol for p in ports
    )


def _allowed(
    policies: list[Doc], pod_: Peer, other: Peer, port: int, protocol: str, direction: str
) -> bool:
    """Whether ``pod_`` may send (Egress) to / receive (Ingress) from ``other``."""
    if pod_.namespace is None:
        return True  # outside the cluster: no NetworkPolicy applies
    selecting = [
        policy
        for policy in policies
        if policy["metadata"]["namespace"] == pod_.namespace
        and direction in policy["spec"].get("policyTypes", ["Ingress"])
        and _selects(policy["spec"]["podSelector"], pod_.label_map)
    ]
    if not selecting:
        return True
    key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    for policy in selecting:
        for rule in policy["spec"].get(key, []):
            peers = rule.get(peers_key)
            namespace = policy["metadata"]["namespace"]
            if (not peers or any(_peer_matches(p, other, namespace) for p in peers)) and (
                _port_matches(rule, port, protocol)
            ):
                return True
    return False


def connection_allowed(
    docs: list[Doc], source: Peer, destination: Peer, port: int, protocol: str = "TCP"
) -> bool:
    policies = of_kind(docs, "NetworkPolicy")
    return _allowed(policies, source, destination, port, protocol, "Egress") and _allowed(
        policies, destination, source, port, protocol, "Ingress"
    )


def pod_peer(docs: list[Doc], image: str) -> Peer:
    load = workload_running(docs, image)
    return pod(load.doc["metadata"]["namespace"], **load.pod_labels)


# ---------------------------------------------------------------------------------------------
# Compose, nginx and the Dockerfile
# ---------------------------------------------------------------------------------------------
def load_compose(path: Path) -> Doc:
    compose: Doc = yaml.safe_load(path.read_text())
    return compose


def compose_default(value: str) -> str:
    """``${VAR:-default}`` -> default (what compose uses when VAR is unset)."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def duration_seconds(text: str | int) -> float:
    """Compose durations: ``180s``, ``2m30s``, ``1h``."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", str(text)):
        total += float(number) * units[unit]
    return total


def nginx_location(text: str, path: str) -> str:
    """The body of ``location PATH { ... }`` in an nginx file ("" when there is none)."""
    body = re.sub(r"#[^\n]*", "", text)
    match = re.search(rf"location\s+{re.escape(path)}\s*{{([^}}]*)}}", body)
    return match.group(1) if match else ""


def nginx_server_level(text: str) -> str:
    """An nginx file without its location blocks: what holds for every path."""
    return re.sub(r"location\s[^{]*{[^}]*}", "", re.sub(r"#[^\n]*", "", text))


def nginx_directives(text: str) -> dict[str, list[str]]:
    """Every ``name value;`` directive in an nginx file (comments dropped), by name."""
    directives: dict[str, list[str]] = {}
    body = re.sub(r"#[^\n]*", "", text)
    for statement in re.split(r"[;{}]", body):
        words = statement.split()
        if words:
            directives.setdefault(words[0], []).append(" ".join(words[1:]))
    return directives


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]

    def last(self, instruction: str) -> str | None:
        found = self.all(instruction)
        return found[-1] if found else None


def dockerfile_stages(path: Path) -> dict[str, Stage]:
    """Stages by name, each with its instructions (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", path.read_text())
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            words = args.split()
            name = words[2] if len(words) > 2 and words[1].upper() == "AS" else words[0]
            current = Stage(name=name, base=words[0])
            stages[name] = current
        elif current is not None:
            current.instructions.append((instruction, " ".join(args.split())))
    return stages


def inherited(stages: dict[str, Stage], name: str, instruction: str) -> str | None:
    """The value of ``instruction`` a target ends with, following ``FROM <stage>``."""
    stage: Stage | None = stages[name]
    while stage is not None:
        value = stage.last(instruction)
        if value is not None:
            return value
        stage = stages.get(stage.base)
    return None


def stage_env(stages: dict[str, Stage], name: str) -> dict[str, str]:
    chain = []
    stage: Stage | None = stages[name]
    while stage is not None:
        chain.append(stage)
        stage = stages.get(stage.base)
    env: dict[str, str] = {}
    for stage in reversed(chain):
        for args in stage.all("ENV"):
            for word in shlex.split(args):
                key, _, value = word.partition("=")
                env[key] = value
    return env


def dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out += "(?:.*/)?"
            index += 3
        elif pattern.startswith("**", index):
            out += ".*"
            index += 2
        elif pattern[index] == "*":
            out += "[^/]*"
            index += 1
        elif pattern[index] == "?":
            out += "[^/]"
            index += 1
        elif pattern[index] == "[":
            end = pattern.index("]", index)
            out += pattern[index : end + 1]
            index = end + 1
        else:
            out += re.escape(pattern[index])
            index += 1
    return re.compile(out)


def in_build_context(relative: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = _dockerignore_regex(pattern.lstrip("!").strip("/"))
        if any(regex.fullmatch(candidate) for candidate in candidates):
            included = negated
    return included


def tracked_files() -> Iterator[str]:
    """Committed files and new ones not ignored: what the next commit would hold."""
    result = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    yield from result.stdout.splitlines()
