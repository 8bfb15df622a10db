"""Anonymize files, folders and ZIP files (photos and videos) into an output folder with the
same structure.

Fail closed: an image that cannot be anonymized gets no output at all (never a copy of the
original), and every output is written under a temporary name and renamed when complete, so an
interrupted run leaves no half-written file behind.
"""

import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import cast

from blurcore.archive import ArchiveEntry, Status, archive_entries, is_image_candidate
from blurcore.boxes import to_xywh
from blurcore.errors import BlurcoreError
from blurcore.hashing import sha256_hex
from blurcore.params import AnonymizeParams
from blurcore.pipeline import Anonymizer
from blurcore.video.pipeline import Progress, VideoAnonymizer, VideoOptions
from blurcore.video.probe import looks_like_video


@dataclass
class ImageRecord:
    input: str
    status: Status
    output: str | None = None
    faces: int = 0
    regions: list[list[float]] = field(default_factory=list)
    input_sha256: str | None = None
    output_sha256: str | None = None
    error: str | None = None


@dataclass
class VideoRecord:
    input: str
    status: Status
    output: str | None = None
    report: dict[str, object] | None = None
    """:meth:`blurcore.video.pipeline.VideoResult.to_dict`: frames, fps, duration, tracks, faces
    per frame, hashes."""
    error: str | None = None


@dataclass
class BatchReport:
    params: AnonymizeParams
    images: list[ImageRecord] = field(default_factory=list)
    videos: list[VideoRecord] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        records: list[ImageRecord | VideoRecord] = [*self.images, *self.videos]
        counts = {"total": len(records), "done": 0, "failed": 0, "skipped": 0}
        for record in records:
            counts[record.status] += 1
        counts["faces"] = sum(record.faces for record in self.images)
        counts["videos"] = len(self.videos)
        counts["video_frames"] = sum(
            int(cast(int, record.report["frames"])) for record in self.videos if record.report
        )
        return counts

    def to_dict(self) -> dict[str, object]:
        return {
            "params": self.params.model_dump(mode="json"),
            "summary": self.summary(),
            "images": [asdict(record) for record in self.images],
            "videos": [asdict(record) for record in self.videos],
        }


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    partial.replace(path)


def _anonymize_entry(
    name: str, data: bytes, anonymizer: Anonymizer, params: AnonymizeParams
) -> tuple[ImageRecord, bytes | None]:
    """The record for one candidate file, and the anonymized bytes when it is an image."""
    if not is_image_candidate(name, data):
        return ImageRecord(input=name, status="skipped", error="not an image"), None
    try:
        result = anonymizer.process(data, params)
    except BlurcoreError as error:
        return ImageRecord(
            input=name, status="failed", input_sha256=sha256_hex(data), error=str(error)
        ), None
    record = ImageRecord(
        input=name,
        status="done",
        faces=result.faces,
        regions=to_xywh(result.regions),
        input_sha256=result.input_sha256,
        output_sha256=result.output_sha256,
    )
    return record, result.data


def _files_under(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield path


def _blur_file(
    source: Path, target: Path, anonymizer: Anonymizer, params: AnonymizeParams
) -> ImageRecord:
    record, output = _anonymize_entry(source.name, source.read_bytes(), anonymizer, params)
    record.input = str(source)
    if output is not None:
        _write_atomically(target, output)
        record.output = str(target)
    return record


@dataclass
class _Run:
    """One ``blur_inputs`` call: what every file needs, and the report that grows with them."""

    anonymizer: Anonymizer
    videos: VideoAnonymizer
    params: AnonymizeParams
    report: BatchReport
    on_file: Callable[[int], object]
    on_frames: Progress | None

    def file(self, source: Path, target: Path) -> None:
        if looks_like_video(source):
            self.report.videos.append(self._video(source, target, str(source), str(target)))
        else:
            self.report.images.append(_blur_file(source, target, self.anonymizer, self.params))
        self.on_file(1)

    def _video(self, source: Path, target: Path, label: str, written_as: str) -> VideoRecord:
        try:
            result = self.videos.process(source, target, self.params, self.on_frames)
        except BlurcoreError as error:
            return VideoRecord(input=label, status="failed", error=str(error))
        return VideoRecord(input=label, status="done", output=written_as, report=result.to_dict())

    def _zipped_video(
        self, name: str, data: bytes, label: str, target: Path, output: zipfile.ZipFile
    ) -> VideoRecord:
        """A video inside a ZIP goes through files in a scratch folder: decoders and muxers
        seek, which a stream out of the archive cannot."""
        with tempfile.TemporaryDirectory(prefix="blurcore-") as scratch:
            base = PurePosixPath(name).name
            source, anonymized = Path(scratch, "in", base), Path(scratch, "out", base)
            source.parent.mkdir()
            source.write_bytes(data)
            record = self._video(source, anonymized, label, f"{target}!{name}")
            if record.status == "done":
                output.write(anonymized, name, compress_type=zipfile.ZIP_STORED)
        return record

    def zip(self, source: Path, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        try:
            archive = zipfile.ZipFile(source)
        except (zipfile.BadZipFile, OSError) as error:
            self.report.images.append(
                ImageRecord(input=str(source), status="failed", error=f"not a valid ZIP: {error}")
            )
            return
        try:
            with archive, zipfile.ZipFile(partial, "w") as output:
                for entry in archive_entries(archive):
                    self._zip_entry(entry, f"{source}!{entry.name}", target, output)
                    self.on_file(1)
            partial.replace(target)
        except BaseException:
            partial.unlink(missing_ok=True)  # interrupted or failed: no half-written archive left
            raise

    def _zip_entry(
        self, entry: ArchiveEntry, label: str, target: Path, output: zipfile.ZipFile
    ) -> None:
        if entry.data is None:
            assert entry.status is not None
            self.report.images.append(
                ImageRecord(input=label, status=entry.status, error=entry.error)
            )
        elif looks_like_video(Path(entry.name)):
            self.report.videos.append(
                self._zipped_video(entry.name, entry.data, label, target, output)
            )
        else:
            record, data = _anonymize_entry(entry.name, entry.data, self.anonymizer, self.params)
            record.input = label
            if data is not None:
                output.writestr(entry.name, data, compress_type=zipfile.ZIP_STORED)
                record.output = f"{target}!{entry.name}"
            self.report.images.append(record)


def blur_inputs(
    inputs: list[Path],
    out: Path,
    anonymizer: Anonymizer,
    params: AnonymizeParams,
    on_image: Callable[[int], object] = lambda _n: None,
    video_options: VideoOptions | None = None,
    on_frames: Progress | None = None,
) -> BatchReport:
    """Anonymize every input into ``out``: a file goes to ``out/NAME``, a folder to
    ``out/FOLDER/...`` with its tree, a ZIP to ``out/NAME.zip`` with its entries. Photos and
    videos alike; ``on_image`` is called once per file, ``on_frames`` as a video's frames go."""
    run = _Run(
        anonymizer=anonymizer,
        videos=VideoAnonymizer(anonymizer, video_options),
        params=params,
        report=BatchReport(params=params),
        on_file=on_image,
        on_frames=on_frames,
    )
    for source in inputs:
        if source.is_dir():
            for path in _files_under(source):
                run.file(path, out / source.name / path.relative_to(source))
        elif source.suffix.lower() == ".zip" or zipfile.is_zipfile(source):
            run.zip(source, out / source.name)
        elif source.is_file():
            run.file(source, out / source.name)
        else:
            raise FileNotFoundError(f"no such file or folder: {source}")
    return run.report
