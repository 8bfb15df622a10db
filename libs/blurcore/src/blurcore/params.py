"""Every tunable of blurcore, with its default, in one place."""

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

# Below this, even a close-up face is too small for either detector once the image is shrunk.
MIN_DETECTION_SIDE = 256


class Mode(StrEnum):
    """How a face region is made unrecognizable."""

    BLUR = "blur"
    PIXELATE = "pixelate"
    FILL = "fill"


class Shape(StrEnum):
    """The outline of the anonymized region inside its padded box."""

    ELLIPSE = "ellipse"
    RECTANGLE = "rectangle"


class Profile(StrEnum):
    """Detector combinations, trading speed for recall.

    fast: the MediaPipe full-range model on the whole frame (the classic recipe, at a real 0.3).
    default: CenterFace at full resolution plus MediaPipe on the whole frame, NMS-merged.
    thorough: default plus MediaPipe on overlapping tiles, for crowds of very small faces.
    """

    FAST = "fast"
    DEFAULT = "default"
    THOROUGH = "thorough"


class AnonymizeParams(BaseModel):
    """Parameters of one anonymization run; part of the cache key, so every field changes output."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    profile: Profile = Profile.DEFAULT
    mode: Mode = Mode.BLUR
    shape: Shape = Shape.ELLIPSE
    # Protection climbs steeply with padding up to 1.5 and slowly after 1.6 (the sweep in
    # docs/benchmarks.md, section 5: dev + dev2, ellipses, faces >= 16 px 83.3% at 1.3, 89.4% at
    # 1.6, 90.5% at 1.8; negatives' pixels anonymized 0.41%, 0.62%, 0.78%). At 1.6 the ellipse
    # spans what deface's does (its mask_scale 1.3 grows each side by 30%).
    padding: float = Field(
        default=1.6, ge=1.0, le=3.0, description="Each face box is scaled by this factor."
    )
    strength: float = Field(
        default=1.0,
        ge=0.5,
        le=4.0,
        description="Multiplies the blur kernel and the pixel-block size; 1.0 already leaves no "
        "face recognizable, whatever its size.",
    )
    outline: bool = Field(
        default=False, description="Draw a green box around each region, for human review."
    )
    mediapipe_confidence: float = Field(default=0.3, ge=0.05, le=0.99)
    centerface_confidence: float = Field(default=0.2, ge=0.05, le=0.99)
    nms_iou: float = Field(default=0.3, gt=0.0, le=1.0)
    denoise: bool = Field(
        default=False, description="Denoise a copy of the image before detection (grainy CCTV)."
    )
    max_detection_side: int = Field(
        default=2048,
        ge=MIN_DETECTION_SIDE,
        le=8192,
        description="Detection runs on the image shrunk to at most this many pixels on its longer "
        "side; anonymization always happens at full resolution.",
    )
    jpeg_quality: int = Field(default=90, ge=50, le=100)
