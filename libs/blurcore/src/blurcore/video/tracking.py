"""Follow faces through time: the detector's boxes of every frame in, the boxes to anonymize out.

Pure: no video, no model, only boxes and frame numbers, so every rule here is tested on synthetic
detections. A detector misses a face now and then (motion blur, a dip in light, a turned head); a
face shown for one frame is a leak, so every face seen at two moments is anonymized in every frame
between them too, and a little before it is first seen and after it is last seen.

1. Link: each frame's detections continue the track whose predicted position (constant velocity
   from its last two detections) lies nearest, within a gate that widens with the frames missed.
   A weak detection (a score below the threshold) may continue a track that found no face in
   that frame, never start one: hysteresis, as an edge detector keeps a faint edge that continues
   a strong one.
2. Fill: the frames between two detections of a track get boxes interpolated from both ends (the
   track is followed forward and backward in time), and the track is extended by a few frames
   before its first and after its last detection along its velocity.
3. Grow: a box is grown for every frame it lies from a real detection, since the face may have
   moved off the straight line in between.
4. Smooth: centres are averaged and sizes take the largest over a short window, so regions do not
   jitter; every frame's box then still contains that frame's own detection (the union), so
   smoothing never uncovers what the detector found.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from blurcore.boxes import Boxes, empty_boxes

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TrackingOptions:
    max_gap: int = 25
    """Frames a track may go undetected and still be continued (and the gap filled)."""
    extend: int = 5
    """Frames anonymized before a track's first and after its last detection."""
    smooth: int = 2
    """Half-width, in frames, of the window over which boxes are smoothed."""
    gate: float = 0.8
    """Farthest a detection's centre may lie from a track's prediction, in face sizes."""
    gate_per_missed_frame: float = 0.1
    """How much farther it may lie for every frame the track went undetected."""
    growth_per_frame: float = 0.05
    """How much a box grows for every frame it lies from the nearest detection of its track.
    Measured on the shared clips (default profile, 25 fps), with 0.03 a head entering at the
    frame's edge, seen only by weak boxes before its first detection, showed its top for 3
    frames of the track's extension; 0.05 keeps it covered (longest leak 2 frames), at 14.2%
    instead of 13.8% of the frame anonymized outside any face."""
    max_growth: float = 1.5
    max_size_change: float = 2.0
    """A detection this many times larger or smaller than the track's face is another face."""

    @classmethod
    def for_rate(cls, frames_per_second: float) -> "TrackingOptions":
        """The defaults, set in seconds (a one-second gap, 0.2 s of extension, 0.08 s of
        smoothing, growth of 125% a second), so a 50 fps clip is tracked as a 25 fps one."""
        rate = max(1.0, frames_per_second)
        return cls(
            max_gap=max(2, round(1.0 * rate)),
            extend=max(2, round(0.2 * rate)),
            smooth=max(1, round(0.08 * rate)),
            growth_per_frame=1.25 / rate,
        )


@dataclass(frozen=True)
class Track:
    id: int
    first_frame: int
    """First frame the track is anonymized in (its extension included)."""
    last_frame: int
    detected_frames: int
    mean_score: float
    largest: tuple[float, float, float, float]
    """The largest detection of the track: x, y, width, height."""


@dataclass(frozen=True)
class Tracking:
    regions: list[Boxes]
    """Per frame, the face boxes to anonymize (unpadded, possibly reaching beyond the frame):
    the input's frame count long."""
    tracks: list[Track]


@dataclass
class _Building:
    frames: list[int] = field(default_factory=list)
    boxes: list[npt.NDArray[np.float32]] = field(default_factory=list)

    def velocity(self, at_end: bool) -> FloatArray:
        """Centre displacement per frame between the last (or first) two detections."""
        if len(self.frames) < 2:
            return np.zeros(2)
        (f0, b0), (f1, b1) = (
            ((self.frames[-2], self.boxes[-2]), (self.frames[-1], self.boxes[-1]))
            if at_end
            else ((self.frames[0], self.boxes[0]), (self.frames[1], self.boxes[1]))
        )
        return (_centre(b1) - _centre(b0)) / (f1 - f0)

    def predicted(self, frame: int) -> npt.NDArray[np.float32]:
        last = self.boxes[-1]
        dx, dy = self.velocity(at_end=True) * (frame - self.frames[-1])
        moved = last.copy()
        moved[[0, 2]] += dx
        moved[[1, 3]] += dy
        return moved


def _centre(box: npt.NDArray[np.float32]) -> FloatArray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], dtype=np.float64)


def _side(boxes: Boxes) -> FloatArray:
    """A face's size: the mean of its width and height."""
    return np.asarray(((boxes[:, 2] - boxes[:, 0]) + (boxes[:, 3] - boxes[:, 1])) / 2, np.float64)


def _continue_tracks(
    active: list[_Building], found: Boxes, frame: int, options: TrackingOptions
) -> npt.NDArray[np.bool_]:
    """Append to each track in ``active`` the box of ``found`` nearest its prediction, within
    the gate, nearest pairs first; which boxes were taken."""
    claimed = np.zeros(len(found), dtype=bool)
    if not active or not len(found):
        return claimed
    predicted = np.stack([t.predicted(frame) for t in active])
    missed = np.array([frame - t.frames[-1] - 1 for t in active], dtype=np.float64)
    track_side, found_side = _side(predicted), _side(found)
    centres_t = (predicted[:, [0, 1]] + predicted[:, [2, 3]]) / 2
    centres_f = (found[:, [0, 1]] + found[:, [2, 3]]) / 2
    distance = np.linalg.norm(centres_t[:, None, :] - centres_f[None, :, :], axis=2)
    normalized = distance / np.maximum((track_side[:, None] + found_side[None, :]) / 2, 1e-6)
    ratio = np.maximum(track_side[:, None], found_side[None, :]) / np.maximum(
        np.minimum(track_side[:, None], found_side[None, :]), 1e-6
    )
    gate = options.gate + options.gate_per_missed_frame * missed[:, None]
    feasible = (normalized <= gate) & (ratio <= options.max_size_change)
    taken = np.zeros(len(active), dtype=bool)
    for flat in np.argsort(np.where(feasible, normalized, np.inf), axis=None):
        t, d = np.unravel_index(flat, normalized.shape)
        if not feasible[t, d]:
            break
        if taken[t] or claimed[d]:
            continue
        taken[t] = claimed[d] = True
        active[t].frames.append(frame)
        active[t].boxes.append(found[d])
    return claimed


def _link(
    detections: Sequence[Boxes], weak: Sequence[Boxes], options: TrackingOptions
) -> list[_Building]:
    """Tracks from the faces of every frame; a weak box only continues a track that a face
    started and that found no face in this frame."""
    tracks: list[_Building] = []
    for frame, found in enumerate(detections):
        active = [t for t in tracks if frame - t.frames[-1] <= options.max_gap]
        claimed = _continue_tracks(active, found, frame, options)
        if weak:
            unmatched = [t for t in active if t.frames[-1] != frame]
            _continue_tracks(unmatched, weak[frame], frame, options)
        for d in np.flatnonzero(~claimed):
            tracks.append(_Building(frames=[frame], boxes=[found[d]]))
    return tracks


def _filled(track: _Building, frame_count: int, options: TrackingOptions) -> tuple[int, Boxes]:
    """The track's boxes on every frame of its span, gaps interpolated and ends extended, each
    grown by its distance from a detection: (first frame of the span, boxes)."""
    detected = np.array(track.frames)
    boxes = np.stack(track.boxes).astype(np.float64)
    first = max(0, int(detected[0]) - options.extend)
    last = min(frame_count - 1, int(detected[-1]) + options.extend)
    span = np.arange(first, last + 1)
    filled = np.empty((len(span), 5), dtype=np.float64)
    for column in range(5):
        filled[:, column] = np.interp(span, detected, boxes[:, column])
    for frames, anchor, velocity in (
        (span < detected[0], detected[0], track.velocity(at_end=False)),
        (span > detected[-1], detected[-1], track.velocity(at_end=True)),
    ):
        offset = (span[frames] - anchor)[:, None]
        filled[frames, 0:4] += np.tile(velocity, 2)[None, :] * offset
    nearest = np.abs(span[:, None] - detected[None, :]).min(axis=1)
    growth = np.minimum(1.0 + options.growth_per_frame * nearest, options.max_growth)
    centre = (filled[:, 0:2] + filled[:, 2:4]) / 2
    half = (filled[:, 2:4] - filled[:, 0:2]) / 2 * growth[:, None]
    filled[:, 0:2], filled[:, 2:4] = centre - half, centre + half
    return first, filled.astype(np.float32)


def _smoothed(boxes: Boxes, detected_at: npt.NDArray[np.int64], raw: Boxes, k: int) -> Boxes:
    """Centres averaged and sizes maximized over ``2k+1`` frames; each frame's own detection
    stays inside its box. The window narrows symmetrically at the span's ends, so a moving
    face's box does not lag behind it there."""
    count = len(boxes)
    centre = (boxes[:, 0:2] + boxes[:, 2:4]) / 2
    size = boxes[:, 2:4] - boxes[:, 0:2]
    smooth_centre = np.empty_like(centre)
    smooth_size = np.empty_like(size)
    for i in range(count):
        reach = min(k, i, count - 1 - i)
        window = slice(i - reach, i + reach + 1)
        smooth_centre[i] = centre[window].mean(axis=0)
        smooth_size[i] = size[window].max(axis=0)
    result = boxes.copy()
    result[:, 0:2] = smooth_centre - smooth_size / 2
    result[:, 2:4] = smooth_centre + smooth_size / 2
    result[detected_at, 0:2] = np.minimum(result[detected_at, 0:2], raw[:, 0:2])
    result[detected_at, 2:4] = np.maximum(result[detected_at, 2:4], raw[:, 2:4])
    result[detected_at, 4] = raw[:, 4]
    return result


def track_faces(
    detections: Sequence[Boxes],
    width: int,
    height: int,
    options: TrackingOptions,
    weak: Sequence[Boxes] = (),
) -> Tracking:
    """Per frame, the boxes that keep every tracked face covered; ``detections[i]`` holds frame
    ``i``'s face boxes (N, 5) in pixels of a ``width`` x ``height`` frame, ``weak[i]`` (when
    given) its boxes too unsure to be a face on their own."""
    frame_count = len(detections)
    per_frame: list[list[npt.NDArray[np.float32]]] = [[] for _ in range(frame_count)]
    tracks: list[Track] = []
    for building in _link(detections, weak, options):
        first, filled = _filled(building, frame_count, options)
        raw = np.stack(building.boxes)
        detected_at = np.array(building.frames) - first
        smoothed = _smoothed(filled, detected_at, raw, options.smooth)
        for offset, box in enumerate(smoothed):
            # Kept whole where the frame cuts it: the anonymized shape is the whole face's.
            if box[2] > 0 and box[0] < width and box[3] > 0 and box[1] < height:
                per_frame[first + offset].append(box)
        areas = (raw[:, 2] - raw[:, 0]) * (raw[:, 3] - raw[:, 1])
        x1, y1, x2, y2, _score = (float(v) for v in raw[int(np.argmax(areas))])
        tracks.append(
            Track(
                id=len(tracks),
                first_frame=first,
                last_frame=first + len(filled) - 1,
                detected_frames=len(building.frames),
                mean_score=float(raw[:, 4].mean()),
                largest=(x1, y1, x2 - x1, y2 - y1),
            )
        )
    regions = [
        np.stack(boxes).astype(np.float32) if boxes else empty_boxes() for boxes in per_frame
    ]
    return Tracking(regions=regions, tracks=tracks)
