"""Anonymize files, folders and ZIP files (photos and videos) into an output folder with the
same structure.

Fail closed: an image that cannot be anonymized gets no output at all (never a copy of the
original), and every output is written under a temporary name and renamed when complete, so an
interrupted run leaves no half-written file behind.
"""

import stat
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal, cast

from blurcore import imageio
from blurcore.boxes import to_xywh
from blurcore.errors import BlurcoreError
from blurcore.params import AnonymizeParams
from blurcore.pipeline import Anonymizer, sha256_hex
from blurcore.video.pipeline import Progress, VideoAnonymizer, VideoOptions
from blurcore.video.probe import looks_like_video

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
MAX_ZIP_ENTRY_BYTES = 256 * 1024 * 1024
ZIP_ENCRYPTED_FLAG = 0x1
# Photos are already compressed: a ZIP entry that inflates a hundredfold is a bomb, not a photo.
MAX_COMPRESSION_RATIO = 100
RATIO_CHECK_FROM_BYTES = 1024 * 1024
ZIP_ARCHIVE_SUFFIXES = frozenset({".zip", ".jar", ".7z", ".rar", ".gz", ".tar", ".tgz"})
# What zipfile raises for one entry it cannot extract: bad CRC or local header, corrupt or truncated
# compressed data, a compression method it lacks.
_ZIP_ENTRY_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError)

Status = Literal["done", "failed", "skipped"]


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


def is_image_candidate(name: str, data: bytes) -> bool:
    """Named like an image or starting like one: worth trying (and failing loudly if it is not).
    Anything else, such as a README in a ZIP, is skipped rather than reported as broken."""
    return (
        PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES
        or imageio.sniff_format(data) is not None
    )


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


def _safe_entry_name(info: zipfile.ZipInfo) -> str | None:
    """The entry's path if it stays inside the archive (no absolute path, no ``..``)."""
    path = PurePosixPath(info.filename.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or not path.parts:
        return None
    return str(path)


@dataclass(frozen=True)
class ArchiveEntry:
    """One file of a ZIP: its bytes, or the verdict that keeps it from being anonymized."""

    name: str
    data: bytes | None
    status: Status | None = None
    error: str | None = None


def archive_entries(
    archive: zipfile.ZipFile, max_entry_bytes: int = MAX_ZIP_ENTRY_BYTES
) -> Iterator[ArchiveEntry]:
    """Every file entry of ``archive``; unsafe, duplicate, encrypted, oversized, bomb-like or
    damaged ones come with a verdict and no bytes, so one bad entry never stops the rest.

    Declared sizes bound what is read: zipfile stops at an entry's declared size and then checks
    its CRC, so an entry lying about its size fails instead of inflating without limit.
    """
    seen: set[str] = set()
    for info in archive.infolist():
        if info.is_dir():
            continue
        name = _safe_entry_name(info)
        if name is None:
            yield ArchiveEntry(info.filename, None, "skipped", "unsafe path")
        elif stat.S_ISLNK(info.external_attr >> 16):
            yield ArchiveEntry(name, None, "skipped", "symbolic link")
        elif name in seen:
            yield ArchiveEntry(name, None, "skipped", "duplicate name")
        elif PurePosixPath(name).suffix.lower() in ZIP_ARCHIVE_SUFFIXES:
            yield ArchiveEntry(name, None, "skipped", "nested archive")
        elif info.flag_bits & ZIP_ENCRYPTED_FLAG:
            yield ArchiveEntry(name, None, "failed", "encrypted entry")
        elif info.file_size > max_entry_bytes:
            yield ArchiveEntry(name, None, "failed", "entry too large")
        elif (
            info.file_size > RATIO_CHECK_FROM_BYTES
            and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1)
        ):
            yield ArchiveEntry(name, None, "failed", "suspicious compression ratio (a ZIP bomb?)")
        else:
            seen.add(name)
            try:
                yield ArchiveEntry(name, archive.read(info))
            except _ZIP_ENTRY_ERRORS as error:
                yield ArchiveEntry(name, None, "failed", f"unreadable entry: {error}")


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
