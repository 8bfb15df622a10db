"""Section 1 of docs/benchmarks.md: every profile's quality on the dev set, against the issue's
targets and the reference systems."""

from dataclasses import dataclass

from blurcore.evaluation import Sample, evaluate
from blurcore.params import AnonymizeParams, Profile
from blurcore.pipeline import Anonymizer
from blurcore.scoring import ALL_FACES, REPORT_BUCKETS, RESOLVABLE_FACES, BucketFigures, Report

from .page import Check, checks_table, fill, markdown_table
from .runner import progress

TWO_CORES = 2


THREADS = {Profile.FAST: 1, Profile.DEFAULT: TWO_CORES, Profile.THOROUGH: TWO_CORES}


LARGE_FACES = ">=64"


LARGE_FACE_BUCKETS = ("64-128", ">=128")


TABLE_BUCKETS = (*REPORT_BUCKETS[:-1], LARGE_FACES, ALL_FACES)


@dataclass(frozen=True)
class Reference:
    """A system measured on the same dev set, as ../shared/data/faces/README.md reports it."""

    name: str
    protected_all: float
    protected_resolvable: float
    negatives_touched: int


CLASSIC_RECIPE = Reference(
    "MediaPipe full-range on the whole image (the classic recipe)", 0.079, 0.117, 1
)


DEFACE_REFERENCE = Reference("deface: CenterFace, threshold 0.2, boxes x1.3", 0.728, 0.81, 5)


QUALITY_BAR = {
    Profile.FAST: CLASSIC_RECIPE,
    Profile.DEFAULT: DEFACE_REFERENCE,
    Profile.THOROUGH: DEFACE_REFERENCE,
}


@dataclass(frozen=True)
class ProfileQuality:
    profile: Profile
    threads: int
    report: Report


def measure_quality(samples: list[Sample], profile: Profile) -> ProfileQuality:
    progress(f"quality: profile {profile.value}, {THREADS[profile]} thread(s)")
    anonymizer = Anonymizer(threads=THREADS[profile])
    anonymizer.load((profile,))
    report, _scores = evaluate(samples, anonymizer, AnonymizeParams(profile=profile))
    return ProfileQuality(profile, THREADS[profile], report)


def bucket(report: Report, label: str) -> BucketFigures:
    if label != LARGE_FACES:
        return report.buckets[label]
    parts = [report.buckets[name] for name in LARGE_FACE_BUCKETS]
    return BucketFigures(
        faces=sum(part.faces for part in parts),
        protected=sum(part.protected for part in parts),
        detected=sum(part.detected for part in parts),
    )


def quality_checks(quality: ProfileQuality) -> list[Check]:
    report, bar = quality.report, QUALITY_BAR[quality.profile]
    protected_all = bucket(report, ALL_FACES).protected_rate or 0.0
    protected_resolvable = bucket(report, RESOLVABLE_FACES).protected_rate or 0.0
    name = quality.profile.value
    return [
        Check(
            f"{name}: protected, all faces",
            percent(protected_all),
            f">= {percent(bar.protected_all)}",
            protected_all >= bar.protected_all,
        ),
        Check(
            f"{name}: protected, faces >= 16 px",
            percent(protected_resolvable),
            f">= {percent(bar.protected_resolvable)}",
            protected_resolvable >= bar.protected_resolvable,
        ),
        Check(
            f"{name}: negatives touched",
            f"{report.negatives_touched} of {report.negatives}",
            f"<= {bar.negatives_touched}",
            report.negatives_touched <= bar.negatives_touched,
        ),
    ]


# The targets the issue sets for the default profile (issue 2 of the tracker).
ISSUE_PROTECTED_RESOLVABLE = 0.90


ISSUE_PROTECTED_LARGE = 0.97


ISSUE_NEGATIVES_TOUCHED = 5


ISSUE_NEGATIVE_PIXEL_SHARE = 0.02


def issue_checks(default: ProfileQuality) -> list[Check]:
    report = default.report
    resolvable = bucket(report, RESOLVABLE_FACES).protected_rate or 0.0
    large = bucket(report, LARGE_FACES).protected_rate or 0.0
    return [
        Check(
            "default: protected, faces >= 16 px",
            percent(resolvable),
            f">= {percent(ISSUE_PROTECTED_RESOLVABLE)}",
            resolvable >= ISSUE_PROTECTED_RESOLVABLE,
        ),
        Check(
            "default: protected, faces >= 64 px",
            percent(large),
            f">= {percent(ISSUE_PROTECTED_LARGE)}",
            large >= ISSUE_PROTECTED_LARGE,
        ),
        Check(
            "default: negatives touched",
            f"{report.negatives_touched} of {report.negatives}",
            f"<= {ISSUE_NEGATIVES_TOUCHED}",
            report.negatives_touched <= ISSUE_NEGATIVES_TOUCHED,
        ),
        Check(
            "default: share of negative pixels anonymized",
            percent(report.negative_pixel_share),
            f"< {percent(ISSUE_NEGATIVE_PIXEL_SHARE)}",
            report.negative_pixel_share < ISSUE_NEGATIVE_PIXEL_SHARE,
        ),
    ]


def quality_section(qualities: list[ProfileQuality]) -> str:
    false_alarms = [
        [
            quality.profile.value,
            str(quality.threads),
            f"{quality.report.negatives_touched} of {quality.report.negatives}",
            str(quality.report.negative_regions),
            f"{quality.report.negative_pixel_share:.2%} "
            f"(max {quality.report.negative_max_pixel_share:.2%})",
            f"{quality.report.images_per_second:.1f}",
            f"{quality.report.median_ms:.0f}",
        ]
        for quality in qualities
    ]
    false_alarm_header = [
        "profile",
        "threads",
        "negatives touched",
        "regions on negatives",
        "negative pixels anonymized",
        "images/s (cold pass)",
        "median ms/image (cold pass)",
    ]
    issue = [
        check
        for quality in qualities
        if quality.profile is Profile.DEFAULT
        for check in issue_checks(quality)
    ]
    return fill(
        "quality",
        large_faces=LARGE_FACES,
        buckets=bucket_table({quality.profile.value: quality.report for quality in qualities}),
        false_alarms=markdown_table(false_alarm_header, false_alarms),
        issue_checks=checks_table(issue),
        classic_recipe=CLASSIC_RECIPE.name,
        deface_reference=DEFACE_REFERENCE.name,
        reference_checks=checks_table(
            [check for quality in qualities for check in quality_checks(quality)]
        ),
    )


def bucket_table(reports: dict[str, Report]) -> str:
    """Protected rate and recall per face size, one pair of columns per named report."""
    header = ["faces (longer side)", "faces"]
    for name in reports:
        header += [f"{name} protected", f"{name} recall@0.5"]
    rows = []
    for label in TABLE_BUCKETS:
        row = [label, str(bucket(next(iter(reports.values())), label).faces)]
        for report in reports.values():
            figures = bucket(report, label)
            row += [percent(figures.protected_rate), percent(figures.recall)]
        rows.append(row)
    return markdown_table(header, rows)


def quality_cells(report: Report) -> list[str]:
    return [
        percent(bucket(report, ALL_FACES).protected_rate),
        percent(bucket(report, RESOLVABLE_FACES).protected_rate),
        percent(bucket(report, ALL_FACES).recall),
        f"{report.negatives_touched} of {report.negatives}",
    ]


def percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"
