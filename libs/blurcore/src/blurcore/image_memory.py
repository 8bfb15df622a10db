"""How much memory anonymizing one photo takes, judged from its header before any pixel is
decoded, and the budget it must fit in.

The pipeline holds the decoded pixels (OpenCV's layout: the file's channels, 1 or 2 bytes a
sample) from decoding to encoding. Beside them, at its peak, it holds either two more arrays of
their size (the decoder's own buffer while it decodes; 16-bit samples shifted, then narrowed to 8
bits for the detectors; the anonymized copy and the encoded file) or the 8-bit RGB copy the
detectors look at. A worker process's measured peaks agree (docs/reliability.md). The detectors'
own memory (about 0.9 GiB at the default ``max_detection_side``, kept by the inference runtime
once grown) belongs to the process, not to one image: the deployment sizing counts it apart.
"""

# The budget is what an 8-bit RGBA photo at the pixel limit needs, so the pixel limit alone sizes
# a worker's memory, and a photo with heavier pixels (16-bit samples) gets fewer of them.
_BUDGET_CHANNELS = 4
_BUDGET_SAMPLE_BYTES = 1


def working_memory_bytes(width: int, height: int, channels: int, sample_bytes: int) -> int:
    decoded = width * height * channels * sample_bytes
    detectors_copy = width * height * 3
    return max(3 * decoded, decoded + detectors_copy)


def memory_budget(max_pixels: int) -> int:
    """The most memory one image may take: that of an 8-bit RGBA image of ``max_pixels``."""
    return working_memory_bytes(max_pixels, 1, _BUDGET_CHANNELS, _BUDGET_SAMPLE_BYTES)
