"""deface, the tool the photo and video benchmarks compare against, in an environment of its own."""

from importlib.metadata import version

DEFACE_REQUIREMENT = "deface==1.5.0"


def deface_environment(uv: str) -> list[str]:
    """A throwaway environment for deface, holding our onnxruntime version so that both tools
    run the same inference runtime."""
    return [
        uv,
        "run",
        "--isolated",
        "--no-project",
        "--with",
        DEFACE_REQUIREMENT,
        "--with",
        f"onnxruntime=={version('onnxruntime')}",
        "--with",
        "onnx",
    ]
