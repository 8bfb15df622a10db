import json

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from blurcore.scoring import (
    REPORT_BUCKETS,
    SIZE_BUCKETS,
    BucketFigures,
    ImageScore,
    format_report,
    report_to_dict,
    score_image,
    size_bucket,
    summarize,
)

NO_BOXES: list[list[float]] = []


def detections(*rows: tuple[float, float, float, float, float]) -> npt.NDArray[np.float32]:
    return np.array(rows, dtype=np.float32).reshape(-1, 5)


def blank(height: int = 100, width: int = 100) -> npt.NDArray[np.bool_]:
    return np.zeros((height, width), dtype=np.bool_)


def score(
    faces: list[list[float]] = NO_BOXES,
    found: npt.NDArray[np.float32] | None = None,
    anonymized: npt.NDArray[np.bool_] | None = None,
    *,
    ignore: list[list[float]] = NO_BOXES,
    dont_care: list[list[float]] = NO_BOXES,
    seconds: float = 0.1,
    is_negative: bool = False,
) -> ImageScore:
    return score_image(
        file="synthetic.jpg",
        faces=faces,
        ignore=ignore,
        dont_care=dont_care,
        detections=detections() if found is None else found,
        anonymized=blank() if anonymized is None else anonymized,
        seconds=seconds,
        is_negative=is_negative,
    )


@pytest.mark.parametrize(
    ("longer_side", "bucket"),
    [
        (15.9, "<16"),
        (16, "16-32"),
        (31.9, "16-32"),
        (32, "32-64"),
        (63.9, "32-64"),
        (64, "64-128"),
        (127.9, "64-128"),
        (128, ">=128"),
    ],
)
def test_size_bucket_assigns_edges_to_upper_bucket(longer_side: float, bucket: str) -> None:
    assert size_bucket(longer_side) == bucket


def test_score_image_buckets_face_by_longer_side() -> None:
    result = score(faces=[[0, 0, 10, 40]])

    assert result.faces[0].bucket == "32-64"


def test_score_image_protects_face_at_80_percent_coverage() -> None:
    anonymized = blank()
    anonymized[0:10, 0:8] = True

    assert score(faces=[[0, 0, 10, 10]], anonymized=anonymized).faces[0].protected


def test_score_image_leaves_face_unprotected_at_79_percent_coverage() -> None:
    anonymized = blank()
    anonymized[0:7, 0:10] = True
    anonymized[7, 0:9] = True

    assert not score(faces=[[0, 0, 10, 10]], anonymized=anonymized).faces[0].protected


def test_score_image_weights_cut_pixels_by_covered_area() -> None:
    # The box spans x 0.5..10.5: columns 0..7 cover 7.5 of its 10 px width, columns 0..8 cover 8.5.
    seven_and_a_half = blank()
    seven_and_a_half[:, 0:8] = True
    eight_and_a_half = blank()
    eight_and_a_half[:, 0:9] = True
    face = [[0.5, 0, 10, 10]]

    assert not score(faces=face, anonymized=seven_and_a_half).faces[0].protected
    assert score(faces=face, anonymized=eight_and_a_half).faces[0].protected


def test_score_image_judges_cut_face_by_its_part_inside_image() -> None:
    anonymized = blank()
    anonymized[0:10, 0:5] = True

    assert score(faces=[[-5, 0, 10, 10]], anonymized=anonymized).faces[0].protected


def test_score_image_leaves_face_outside_image_unprotected() -> None:
    everything = ~blank()

    assert not score(faces=[[150, 150, 10, 10]], anonymized=everything).faces[0].protected


def test_score_image_matches_one_detection_per_face() -> None:
    result = score(
        faces=[[0, 0, 10, 10]],
        found=detections((0, 0, 10, 10, 0.9), (1, 0, 11, 10, 0.8)),
    )

    assert [face.detected for face in result.faces] == [True]
    assert result.false_alarm_regions == 1


def test_score_image_matches_highest_score_detection_first() -> None:
    # The confident detection overlaps face B most (IoU 0.82) and face A just enough (0.54); taken
    # first, it claims B, leaving the weaker exact hit on B unmatched (IoU 0.43 with A).
    # Matching by best IoU instead would detect both faces with no false alarm.
    result = score(
        faces=[[0, 0, 10, 10], [4, 0, 10, 10]],
        found=detections((4, 0, 14, 10, 0.5), (3, 0, 13, 10, 0.9)),
    )

    assert [face.detected for face in result.faces] == [False, True]
    assert result.false_alarm_regions == 1


def test_score_image_detects_face_at_iou_exactly_half() -> None:
    result = score(faces=[[0, 0, 10, 10]], found=detections((0, 0, 20, 10, 0.9)))

    assert result.faces[0].detected
    assert result.false_alarm_regions == 0


def test_score_image_misses_face_below_iou_half() -> None:
    result = score(faces=[[0, 0, 10, 10]], found=detections((0, 0, 20.5, 10, 0.9)))

    assert not result.faces[0].detected
    assert result.false_alarm_regions == 1


def test_score_image_ignores_invalid_faces() -> None:
    result = score(
        ignore=[[0, 0, 10, 10], [40, 40, 10, 10], [80, 80, 10, 10]],
        # An IoU match, and a large box whose centre (45, 45) lies in the second ignore box.
        found=detections((0, 0, 10, 10, 0.9), (25, 25, 65, 65, 0.8)),
    )

    assert result.faces == ()
    assert result.false_alarm_regions == 0
    assert summarize([result]).buckets["all"].faces == 0


def test_score_image_excludes_detection_centred_in_dont_care() -> None:
    result = score(
        faces=[[0, 0, 10, 10]],
        dont_care=[[0, 0, 20, 20], [50, 50, 20, 20]],
        found=detections((0, 0, 10, 10, 0.9), (55, 55, 65, 65, 0.8)),
    )

    assert not result.faces[0].detected
    assert result.false_alarm_regions == 0


def test_summarize_counts_touched_negatives_and_pixel_shares() -> None:
    quarter = blank(10, 10)
    quarter[0:5, 0:5] = True
    half = blank(10, 20)
    half[:, 0:10] = True
    everything = ~blank(10, 10)
    scores = [
        # Touched through its pixels alone, and then through its reported region alone.
        score(anonymized=quarter, is_negative=True),
        score(found=detections((0, 0, 5, 5, 0.9)), anonymized=blank(10, 10), is_negative=True),
        score(anonymized=blank(10, 10), is_negative=True),
        score(
            found=detections((0, 0, 5, 5, 0.9), (5, 5, 10, 10, 0.8)),
            anonymized=half,
            is_negative=True,
        ),
        # Excluded by a dont_care region, so nothing on this image counts against the detector.
        score(
            found=detections((0, 0, 5, 5, 0.9)),
            anonymized=blank(10, 10),
            dont_care=[[0, 0, 10, 10]],
            is_negative=True,
        ),
        # A positive image is no negative, however much it anonymizes.
        score(
            faces=[[0, 0, 5, 5]],
            found=detections((5, 5, 10, 10, 0.9)),
            anonymized=everything,
        ),
    ]

    report = summarize(scores)

    assert report.negatives == 5
    assert report.negatives_touched == 3
    assert report.negative_regions == 3
    assert report.negative_pixel_share == pytest.approx((25 + 100) / (100 + 100 + 100 + 200 + 100))
    assert report.negative_max_pixel_share == pytest.approx(0.5)


def test_summarize_totals_equal_sums_of_buckets() -> None:
    anonymized = blank(300, 300)
    anonymized[0:150, :] = True
    # One face per bucket in the anonymized top half, then three more below it.
    faces: list[list[float]] = [
        [0, 0, 10, 10],
        [20, 0, 20, 20],
        [50, 0, 40, 40],
        [100, 0, 100, 100],
        [0, 200, 8, 8],
        [20, 200, 30, 30],
        [100, 160, 130, 130],
    ]
    found = detections((0, 0, 10, 10, 0.9), (50, 0, 90, 40, 0.8), (20, 200, 50, 230, 0.7))

    report = summarize([score(faces=faces, found=found, anonymized=anonymized)])

    assert tuple(report.buckets) == REPORT_BUCKETS
    assert [report.buckets[label].faces for label in SIZE_BUCKETS] == [2, 2, 1, 1, 1]
    for field in ("faces", "protected", "detected"):
        per_bucket = [getattr(report.buckets[label], field) for label in SIZE_BUCKETS]
        assert getattr(report.buckets["all"], field) == sum(per_bucket)
        assert getattr(report.buckets[">=16"], field) == sum(per_bucket[1:])
    assert report.buckets["all"] == BucketFigures(faces=7, protected=4, detected=3)


def test_bucket_figures_rates_are_none_without_faces() -> None:
    empty = BucketFigures(faces=0, protected=0, detected=0)
    some = BucketFigures(faces=4, protected=3, detected=1)

    assert (empty.protected_rate, empty.recall) == (None, None)
    assert (some.protected_rate, some.recall) == (0.75, 0.25)


def test_summarize_computes_images_per_second_and_median() -> None:
    report = summarize([score(seconds=seconds) for seconds in (0.1, 0.4, 0.2, 0.3)])

    assert report.images == 4
    assert report.images_per_second == pytest.approx(4.0)
    assert report.median_ms == pytest.approx(250.0)


def test_summarize_reports_zero_speed_without_images() -> None:
    report = summarize([])

    assert (report.images, report.images_per_second, report.median_ms) == (0, 0.0, 0.0)


def test_report_to_dict_serializes_to_json() -> None:
    report = summarize([score(faces=[[0, 0, 20, 20]], found=detections((0, 0, 20, 20, 0.9)))])

    decoded = json.loads(json.dumps(report_to_dict(report)))

    assert decoded["buckets"]["16-32"]["recall"] == 1.0
    assert decoded["buckets"]["<16"]["recall"] is None
    assert decoded["images"] == 1


def test_format_report_lists_each_bucket() -> None:
    text = format_report(summarize([score(faces=[[0, 0, 20, 20]])]))
    first_words = [line.split()[0] for line in text.splitlines()]

    for label in REPORT_BUCKETS:
        assert label in first_words
    assert "negatives:" in first_words
    assert "speed:" in first_words


face_boxes = st.lists(
    st.tuples(
        st.floats(min_value=-50, max_value=99),
        st.floats(min_value=-50, max_value=99),
        st.floats(min_value=1, max_value=200),
        st.floats(min_value=1, max_value=200),
    )
    # Keep some part of every face inside the 100x100 image: a face outside it cannot be protected.
    .filter(lambda box: box[0] + box[2] > 0.01 and box[1] + box[3] > 0.01)
    .map(list),
    min_size=1,
    max_size=8,
)


@given(faces=face_boxes)
def test_score_image_protects_faces_exactly_when_mask_covers_image(
    faces: list[list[float]],
) -> None:
    everything = score(faces=faces, anonymized=~blank())
    nothing = score(faces=faces, anonymized=blank())

    assert all(face.protected for face in everything.faces)
    assert not any(face.protected for face in nothing.faces)
