"""Anonymize files, folders and ZIP files into an output folder with the same structure.

Fail closed: an image that cannot be anonymized gets no output at all (never a copy of the
original), and every output is written under a temporary name and renamed when complete, so an
interrupted run leaves no half-written file behind.
"""

import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from blurcore import imageio
from blurcore.boxes import to_xywh
from blurcore.errors import BlurcoreError
from blurcore.params import AnonymizeParams
from blurcore.pipeline import Anonymizer, sha256_hex

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
MAX_ZIP_ENTRY_BYTES = 256 * 1024 * 1024
ZIP_ENCRYPTED_FLAG = 0x1

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
class BatchReport:
    params: AnonymizeParams
    images: list[ImageRecord] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        counts = {"total": len(self.images), "done": 0, "failed": 0, "skipped": 0}
        for record in self.images:
            counts[record.status] += 1
        counts["faces"] = sum(record.faces for record in self.images)
        return counts

    def to_dict(self) -> dict[str, object]:
        return {
            "params": self.params.model_dump(mode="json"),
            "summary": self.summary(),
            "images": [asdict(record) for record in self.images],
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
    looks_like_image = PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES
    if not looks_like_image and imageio.sniff_format(data) is None:
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


def _blur_zip(
    source: Path,
    target: Path,
    anonymizer: Anonymizer,
    params: AnonymizeParams,
    on_image: Callable[[int], object],
) -> list[ImageRecord]:
    records: list[ImageRecord] = []
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(partial, "w") as output:
        for info in archive.infolist():
            if info.is_dir():
                continue
            label = f"{source}!{info.filename}"
            name = _safe_entry_name(info)
            if name is None:
                records.append(ImageRecord(input=label, status="skipped", error="unsafe path"))
            elif info.flag_bits & ZIP_ENCRYPTED_FLAG:
                records.append(ImageRecord(input=label, status="failed", error="encrypted entry"))
            elif info.file_size > MAX_ZIP_ENTRY_BYTES:
                records.append(ImageRecord(input=label, status="failed", error="entry too large"))
            else:
                record, data = _anonymize_entry(name, archive.read(info), anonymizer, params)
                record.input = label
                if data is not None:
                    output.writestr(name, data, compress_type=zipfile.ZIP_STORED)
                    record.output = f"{target}!{name}"
                records.append(record)
            on_image(1)
    partial.replace(target)
    return records


def blur_inputs(
    inputs: list[Path],
    out: Path,
    anonymizer: Anonymizer,
    params: AnonymizeParams,
    on_image: Callable[[int], object] = lambda _n: None,
) -> BatchReport:
    """Anonymize every input into ``out``: a file goes to ``out/NAME``, a folder to
    ``out/FOLDER/...`` with its tree, a ZIP to ``out/NAME.zip`` with its entries."""
    report = BatchReport(params=params)
    for source in inputs:
        if source.is_dir():
            for path in _files_under(source):
                target = out / source.name / path.relative_to(source)
                report.images.append(_blur_file(path, target, anonymizer, params))
                on_image(1)
        elif zipfile.is_zipfile(source):
            report.images.extend(_blur_zip(source, out / source.name, anonymizer, params, on_image))
        elif source.is_file():
            report.images.append(_blur_file(source, out / source.name, anonymizer, params))
            on_image(1)
        else:
            raise FileNotFoundError(f"no such file or folder: {source}")
    return report
