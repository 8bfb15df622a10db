"""The trail as JSON Lines or CSV, written here for ``fpg-audit export`` and for the gateway's
``GET /v1/audit``, so an export from either is the same file and verifies on its own."""

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from enum import StrEnum
from typing import TextIO

from fpg_audit.chain import AuditRecord
from fpg_audit.verification import ChainReport, CheckpointCheck, WalkedRecord, verify_chain

CSV_FIELDS = list(AuditRecord.model_fields)
RECORDS_PER_CHUNK = 1000


class FileFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"

    @property
    def media_type(self) -> str:
        return "text/csv" if self is FileFormat.CSV else "application/x-ndjson"


def export_chunks(
    records: Iterable[AuditRecord],
    file_format: FileFormat,
    records_per_chunk: int = RECORDS_PER_CHUNK,
) -> Iterator[str]:
    """The export as text, ``records_per_chunk`` records at a time (a CSV's header first), so a
    stream of any length holds one chunk in memory."""
    buffer = io.StringIO()
    write = _record_writer(file_format, buffer)
    for count, record in enumerate(records, 1):
        write(record)
        if count % records_per_chunk == 0:
            yield _drained(buffer)
    if buffer.tell():
        yield _drained(buffer)


def write_export(records: Iterable[AuditRecord], file_format: FileFormat, out: TextIO) -> None:
    out.writelines(export_chunks(records, file_format))


def verify_export(lines: Iterable[str], checkpoints: CheckpointCheck | None = None) -> ChainReport:
    """Check a JSON Lines export with no database: the chain from the genesis (or from a pruned
    checkpoint), against the checkpoints of the exported checkpoint file where given."""
    records = (WalkedRecord(json.loads(line)) for line in lines if line.strip())
    return verify_chain(records, checkpoints or CheckpointCheck())


def _record_writer(file_format: FileFormat, out: TextIO) -> Callable[[AuditRecord], object]:
    if file_format is FileFormat.JSONL:
        # The fields the record was hashed with, no more: one written before a field existed
        # (``frames``, say) exports without it, and still verifies.
        return lambda record: out.write(
            json.dumps(record.model_dump(mode="json", exclude_unset=True), ensure_ascii=False)
            + "\n"
        )
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    return lambda record: writer.writerow(_csv_row(record))


def _csv_row(record: AuditRecord) -> dict[str, object]:
    """List and object fields as compact JSON text."""
    return {
        name: json.dumps(value, separators=(",", ":")) if isinstance(value, list | dict) else value
        for name, value in record.model_dump(mode="json").items()
    }


def _drained(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
