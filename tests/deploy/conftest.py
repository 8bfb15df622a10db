from collections.abc import Callable
from pathlib import Path

import pytest

from .manifests import K8S, OVERLAYS, Doc, kubectl, render

NO_KUBECTL = "kubectl is not on PATH: install it to render deploy/k8s (kubectl kustomize)"


@pytest.fixture(scope="session")
def render_dir() -> Callable[[Path], list[Doc]]:
    """``kubectl kustomize`` of one directory, cached for the session."""
    if kubectl() is None:
        pytest.skip(NO_KUBECTL)
    cache: dict[Path, list[Doc]] = {}

    def rendered(directory: Path) -> list[Doc]:
        if directory not in cache:
            cache[directory] = render(directory)
        return cache[directory]

    return rendered


@pytest.fixture(scope="session")
def rendered(render_dir: Callable[[Path], list[Doc]]) -> dict[str, list[Doc]]:
    """Every overlay, rendered: ``{"dev": [...], "prod": [...]}``."""
    return {overlay.name: render_dir(overlay) for overlay in OVERLAYS}


@pytest.fixture(scope="session")
def base(render_dir: Callable[[Path], list[Doc]]) -> list[Doc]:
    return render_dir(K8S / "base")
