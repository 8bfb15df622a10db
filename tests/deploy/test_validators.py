"""The deploy files pass the tools that know their formats: Kubernetes' own schemas, KEDA's CRD
models, the compose spec, hadolint, nginx -t and checkov. Everything runs offline."""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from cloudcoil.models.keda import v1alpha1 as keda

from .manifests import (
    COMPOSE_FILES,
    DEPLOY,
    DOCKERFILES,
    K8S,
    NGINX_CONF,
    OVERLAYS,
    REPO,
    VENV_BIN,
    Doc,
)

# The oldest Kubernetes these manifests are meant for, and the newest schema the validator ships.
KUBERNETES_VERSIONS = ["1.29.0", None]
CHECKOV = "checkov==3.3.30"
KEDA_MODELS: dict[str, Any] = {
    "ScaledObject": keda.ScaledObject,
    "TriggerAuthentication": keda.TriggerAuthentication,
    "ScaledJob": keda.ScaledJob,
    "ClusterTriggerAuthentication": keda.ClusterTriggerAuthentication,
}


def tool(name: str) -> str:
    """A tool of the project's deploy dependency group (the .venv next to this interpreter)."""
    for directory in (Path(sys.executable).parent, VENV_BIN):
        if (directory / name).exists():
            return str(directory / name)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed: `uv sync --all-groups` installs it")
    return found


def run(command: list[str], stdin: str | None = None, timeout: float = 120) -> tuple[int, str]:
    result = subprocess.run(
        command, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS, ids=lambda v: v or "newest")
@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda path: path.name)
def test_overlay_validates_against_kubernetes_schemas(render_dir, overlay, version):
    docs = render_dir(overlay)
    command = [tool("kubernetes-validate"), "--strict"]
    command += ["--kubernetes-version", version] if version else []
    code, output = run([*command, "-"], stdin=yaml.safe_dump_all(docs))
    assert code == 0, output
    # It only warns on a kind it has no schema for: allowed for KEDA's CRDs alone, so that a
    # mistyped apiVersion cannot pass as "unknown".
    warnings = [line for line in output.splitlines() if line.startswith("WARN")]
    assert all("keda.sh/v1alpha1" in line for line in warnings), "\n".join(warnings)
    assert sum(line.startswith("INFO - passed") for line in output.splitlines()) >= 10, output


def test_kubernetes_validate_rejects_an_unknown_field():
    """The validator really is strict and offline: a typo in a pod spec fails it."""
    broken = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "x"},
        "spec": {"containers": [{"name": "c", "image": "x:1", "readinessprobe": {}}]},
    }
    code, output = run([tool("kubernetes-validate"), "--strict", "-"], stdin=yaml.safe_dump(broken))
    assert code != 0, output


def keda_documents(docs: list[Doc]) -> list[Doc]:
    return [doc for doc in docs if str(doc.get("apiVersion", "")).startswith("keda.sh/")]


def validate_keda(doc: Doc) -> None:
    """Pydantic model of the KEDA CRD, and no field the model does not know (typos)."""
    model = KEDA_MODELS[doc["kind"]].model_validate(doc)
    assert model.model_dump(by_alias=True, exclude_none=True, mode="json") == doc


def test_keda_objects_match_the_keda_models(rendered):
    found = [doc for docs in rendered.values() for doc in keda_documents(docs)]
    assert {doc["kind"] for doc in found} >= {"ScaledObject", "TriggerAuthentication"}
    for doc in found:
        validate_keda(doc)


def test_keda_model_check_catches_a_misspelt_field(rendered):
    scaled = next(d for d in keda_documents(rendered["prod"]) if d["kind"] == "ScaledObject")
    broken = {**scaled, "spec": {**scaled["spec"], "minReplicas": 2}}
    with pytest.raises(AssertionError):
        validate_keda(broken)


def test_base_and_dev_need_no_keda(base, rendered):
    """dev must apply to a cluster without KEDA's CRDs."""
    assert keda_documents(base) == []
    assert keda_documents(rendered["dev"]) == []


@pytest.mark.parametrize("compose_file", COMPOSE_FILES, ids=lambda path: path.name)
def test_compose_file_matches_the_compose_spec(compose_file):
    command = [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec"]
    code, output = run([*command, str(compose_file)])
    assert code == 0, output


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.parent.name)
def test_dockerfile_is_hadolint_clean(dockerfile):
    code, output = run([tool("hadolint"), "--failure-threshold", "info", str(dockerfile)])
    assert code == 0, output


def test_nginx_accepts_the_compose_config(tmp_path):
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if nginx is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx); config not tested")
    # What nginx-unprivileged's own nginx.conf provides around conf.d/default.conf.
    temp_paths = "".join(
        f"  {kind}_temp_path {tmp_path}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n{temp_paths}  access_log {tmp_path}/access.log;\n  include {NGINX_CONF};\n}}\n"
    )
    command = [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")]
    code, output = run([*command, "-e", str(tmp_path / "error.log")])
    assert code == 0, output


def test_checkov_finds_nothing_in_manifests_overlays_or_dockerfile(render_dir, tmp_path):
    """Sources, every rendered overlay and the Dockerfile; skipped checks are listed, with reasons,
    in deploy/.checkov.yaml. checkov runs in an isolated environment of its own (uv)."""
    home_uv = Path.home() / ".local" / "bin" / "uv"  # where `make` installs it
    uv = shutil.which("uv") or (str(home_uv) if home_uv.exists() else None)
    if uv is None:
        pytest.skip("uv is not on PATH: checkov runs through `uv run --isolated`")
    for overlay in OVERLAYS:
        (tmp_path / f"{overlay.name}.yaml").write_text(yaml.safe_dump_all(render_dir(overlay)))
    command = [uv, "run", "--isolated", "--no-project", "--with", CHECKOV, "checkov"]
    code, output = run([*command, "--version"], timeout=240)
    if code != 0:
        pytest.skip(f"checkov could not be installed: {output[-500:]}")
    started = time.monotonic()
    scan = ["--config-file", str(DEPLOY / ".checkov.yaml"), "-d", str(K8S), "-d", str(tmp_path)]
    scan += ["-d", str(DEPLOY / "docker")]
    result = subprocess.run(
        [*command, *scan],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=REPO,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    assert result.returncode == 0, result.stdout[-20000:]
    counts = re.findall(
        r"(\w+) scan results:\s+Passed checks: (\d+), Failed checks: (\d+)", result.stdout
    )
    assert {framework for framework, _, _ in counts} == {"kubernetes", "dockerfile"}, result.stdout
    assert all(int(passed) > 0 and failed == "0" for _, passed, failed in counts), counts
    assert time.monotonic() - started < 180
