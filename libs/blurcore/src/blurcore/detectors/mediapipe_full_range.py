"""MediaPipe's full-range face detector (``model_selection=1``), run directly on LiteRT.

Why not the ``mediapipe`` package: its classic ``solutions`` API drops every score under 0.6 before
``min_detection_confidence`` is applied (so 0.3 is silently 0.6), exists only up to 0.10.21 with
numpy<2 and jax; the current Tasks API needs opencv-contrib-python, which collides with
opencv-python-headless. The model file is the one MediaPipe 0.10.21 bundles (Apache-2.0); the
anchor decoding below reproduces MediaPipe's own graph (``face_detection_full_range.pbtxt``:
SsdAnchorsCalculator and TensorsToDetectionsCalculator options), with the threshold left to us.
"""

import cv2
import numpy as np
import numpy.typing as npt
from ai_edge_litert.interpreter import Interpreter

from blurcore.boxes import Boxes, as_boxes, empty_boxes
from blurcore.detectors.base import Detector, RGBImage, bundled_model

INPUT_SIDE = 192
GRID_SIDE = 48  # one anchor per cell of the stride-4 feature map
SCORE_CLIP = 100.0


def _anchor_centres() -> npt.NDArray[np.float32]:
    cells = (np.arange(GRID_SIDE, dtype=np.float32) + 0.5) / GRID_SIDE
    ys, xs = np.meshgrid(cells, cells, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


class MediaPipeFullRange(Detector):
    name = "mediapipe-full-range"
    model_path = bundled_model("face_detection_full_range_sparse.tflite")

    def _load(self) -> None:
        self._interpreter = Interpreter(
            model_path=str(self.model_path), num_threads=self.threads or 1
        )
        self._interpreter.allocate_tensors()
        self._input_index = self._interpreter.get_input_details()[0]["index"]
        outputs = sorted(self._interpreter.get_output_details(), key=lambda d: d["shape"][-1])
        self._scores_index, self._boxes_index = outputs[0]["index"], outputs[1]["index"]
        self._anchors = _anchor_centres()

    def _detect(self, image: RGBImage, confidence: float) -> Boxes:
        height, width = image.shape[:2]
        fit = INPUT_SIDE / max(height, width)
        inner_w, inner_h = max(1, round(width * fit)), max(1, round(height * fit))
        pad_x, pad_y = (INPUT_SIDE - inner_w) // 2, (INPUT_SIDE - inner_h) // 2
        tensor = np.zeros((1, INPUT_SIDE, INPUT_SIDE, 3), dtype=np.float32)
        resized = cv2.resize(image, (inner_w, inner_h), interpolation=cv2.INTER_AREA)
        tensor[0, pad_y : pad_y + inner_h, pad_x : pad_x + inner_w] = resized / 127.5 - 1.0

        self._interpreter.set_tensor(self._input_index, tensor)
        self._interpreter.invoke()
        raw_scores = self._interpreter.get_tensor(self._scores_index)[0, :, 0]
        raw_boxes = self._interpreter.get_tensor(self._boxes_index)[0]

        logits = np.clip(raw_scores.astype(np.float64), -SCORE_CLIP, SCORE_CLIP)
        scores = 1.0 / (1.0 + np.exp(-logits))
        selected = scores >= confidence
        if not selected.any():
            return empty_boxes()
        anchors = self._anchors[selected]
        raw = raw_boxes[selected, :4] / INPUT_SIDE
        centre_x = (anchors[:, 0] + raw[:, 0]) * INPUT_SIDE
        centre_y = (anchors[:, 1] + raw[:, 1]) * INPUT_SIDE
        half_w, half_h = raw[:, 2] * INPUT_SIDE / 2, raw[:, 3] * INPUT_SIDE / 2
        boxes = np.stack(
            [
                (centre_x - half_w - pad_x) / fit,
                (centre_y - half_h - pad_y) / fit,
                (centre_x + half_w - pad_x) / fit,
                (centre_y + half_h - pad_y) / fit,
                scores[selected],
            ],
            axis=1,
        )
        return as_boxes(boxes)
