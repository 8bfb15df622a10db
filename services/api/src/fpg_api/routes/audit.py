"""The audit trail for an auditor key: filter, export (JSON Lines, CSV) and verify the chain."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from fpg_api.deps import AuditorDep, ServicesDep
from fpg_api.errors import error_responses
from fpg_api.schemas import AuditPage, HexId
from fpg_audit import AuditFilter, ChainReport
from fpg_audit.chain import EventKind, iso_utc
from fpg_audit.export import FileFormat, export_chunks

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=error_responses(401, 403))


class ExportFormat(StrEnum):
    JSON = "json"
    JSONL = "jsonl"
    CSV = "csv"


@router.get(
    "",
    summary="Audit records, oldest first, filtered; as JSON pages or a JSON Lines or CSV export",
    response_model=AuditPage,
    responses={
        200: {"content": {"application/x-ndjson": {}, "text/csv": {}}},
        **error_responses(422, 503),
    },
)
def list_audit_records(
    services: ServicesDep,
    _caller: AuditorDep,
    since: Annotated[datetime | None, Query(description="From this time (inclusive).")] = None,
    until: Annotated[datetime | None, Query(description="Before this time.")] = None,
    batch_id: Annotated[HexId | None, Query()] = None,
    job_id: Annotated[HexId | None, Query()] = None,
    key_id: Annotated[str | None, Query(max_length=64)] = None,
    event: EventKind | None = None,
    after_seq: Annotated[int, Query(ge=0, description="JSON pages: records after this seq.")] = 0,
    limit: Annotated[
        int, Query(ge=1, le=10_000, description="JSON pages: at most this many.")
    ] = 1000,
    format: ExportFormat = ExportFormat.JSON,
) -> AuditPage | Response:
    where = AuditFilter(
        since=None if since is None else iso_utc(since),
        until=None if until is None else iso_utc(until),
        batch_id=batch_id,
        job_id=job_id,
        key_id=key_id,
        event=event,
    )
    if format is ExportFormat.JSON:
        records = services.audit.records(where, after_seq=after_seq, limit=limit)
        return AuditPage(
            records=records,
            next_after_seq=records[-1].seq if len(records) == limit else None,
        )
    # An export is every matching record, streamed in chunks, whatever the limit.
    file_format = FileFormat(format)
    return StreamingResponse(
        export_chunks(services.audit.iter_records(where), file_format),
        media_type=file_format.media_type,
        headers={"Content-Disposition": f'attachment; filename="fpg-audit.{file_format}"'},
    )


@router.get(
    "/verify",
    summary="Check the hash chain and its signed checkpoints: ok, or every finding "
    "(a record changed, removed or inserted, a cut tail, a re-hashed chain, a missing checkpoint)",
    responses=error_responses(503),
)
async def verify_audit_trail(services: ServicesDep, _caller: AuditorDep) -> ChainReport:
    return await run_in_threadpool(services.audit.verify)
