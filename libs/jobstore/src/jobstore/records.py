"""Job and batch records in Redis: one JSON value per record, with the retention as its TTL.

Updates use ``SET ... XX KEEPTTL``: a record deleted by the user (or expired) is never brought
back by a worker finishing late, and an update never extends how long data is kept.
"""

import time
from enum import StrEnum
from typing import Literal

import redis
from pydantic import BaseModel, Field

from blurcore import AnonymizeParams
from blurcore.archive import EntryLocation


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


FINISHED = frozenset({JobStatus.DONE, JobStatus.FAILED})


class ArchiveEntryRef(BaseModel):
    """Where a job or video of a batch finds its original: an entry of the batch's ZIP, stored
    as uploaded."""

    location: EntryLocation  # as the central directory declared it when the gateway judged it
    max_bytes: int  # the per-image (or video) limit it was judged by: the most read of it


class JobRecord(BaseModel):
    id: str
    status: JobStatus = JobStatus.QUEUED
    params: AnonymizeParams
    filename: str
    batch_id: str | None = None
    created_at: float = Field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    content_type: str | None = None
    faces: int | None = None
    regions: list[list[float]] = Field(default_factory=list)
    input_sha256: str | None = None
    output_sha256: str | None = None
    error: str | None = None
    attempts: int = 0
    # Who asked: the API key (which also owns the job) and the client address the gateway saw.
    key_id: str | None = None
    client: str | None = None
    reused_from: str | None = None  # a duplicate upload answered with this job's stored result
    result_expires_at: float | None = None  # when the stored result's time-to-live ends
    detectors: dict[str, str] | None = None  # detector name -> SHA-256 of its model file
    archive_entry: ArchiveEntryRef | None = None  # a job of a batch; else its own input blob


class BatchEntry(BaseModel):
    """One file of an uploaded ZIP: a job when it is an image, a video when it is one, else the
    reason it is neither."""

    path: str
    job_id: str | None = None
    video_id: str | None = None
    status: Literal["skipped", "failed"] | None = None
    error: str | None = None


class BatchRecord(BaseModel):
    id: str
    params: AnonymizeParams
    filename: str
    entries: list[BatchEntry]
    created_at: float = Field(default_factory=time.time)
    key_id: str | None = None
    client: str | None = None

    @property
    def job_ids(self) -> list[str]:
        return [entry.job_id for entry in self.entries if entry.job_id]

    @property
    def video_ids(self) -> list[str]:
        return [entry.video_id for entry in self.entries if entry.video_id]


# KEYS: the job record, its "finished" list, the cache entry; ARGV: the record, the retention,
# the job id to remember under the cache entry ("" for none). See RecordStore.finish_job.
_FINISH_JOB = """
if not redis.call('SET', KEYS[1], ARGV[1], 'XX', 'KEEPTTL') then return 0 end
if ARGV[3] ~= '' then redis.call('SET', KEYS[3], ARGV[3], 'EX', ARGV[2]) end
redis.call('LPUSH', KEYS[2], '1')
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
"""

# KEYS: the batch's archive hold; ARGV: the job id, ARCHIVE_HELD. See RecordStore.count_off.
_COUNT_OFF = """
redis.call('SREM', KEYS[1], ARGV[1])
if redis.call('SCARD', KEYS[1]) == 1 and redis.call('SISMEMBER', KEYS[1], ARGV[2]) == 1 then
    return 1
end
return 0
"""
# The member of a batch's archive hold that stands for the archive itself (job ids are hex).
ARCHIVE_HELD = "archive"

# KEYS: the job record, its attempt counter. Counts one more start of the job and returns the
# count, the counter expiring with the record; 0, with nothing written, when the record is gone.
COUNT_ATTEMPT_SCRIPT = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 then return 0 end
local attempts = redis.call('INCR', KEYS[2])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return attempts
"""


class RecordStore:
    def __init__(self, client: redis.Redis, prefix: str, retention_seconds: int) -> None:
        self._client = client
        self._prefix = prefix
        self.retention_seconds = retention_seconds
        self._finish_script = client.register_script(_FINISH_JOB)
        self._count_off_script = client.register_script(_COUNT_OFF)
        self._count_attempt_script = client.register_script(COUNT_ATTEMPT_SCRIPT)

    def job_key(self, job_id: str) -> str:
        return f"{self._prefix}:job:{job_id}"

    def batch_key(self, batch_id: str) -> str:
        return f"{self._prefix}:batch:{batch_id}"

    def create_job(self, job: JobRecord) -> None:
        self._client.set(self.job_key(job.id), job.model_dump_json(), ex=self.retention_seconds)

    def create_jobs(self, jobs: list[JobRecord]) -> None:
        """Many at once, in one round trip (a batch's)."""
        with self._client.pipeline(transaction=False) as pipe:
            for job in jobs:
                pipe.set(self.job_key(job.id), job.model_dump_json(), ex=self.retention_seconds)
            pipe.execute()

    def get_job(self, job_id: str) -> JobRecord | None:
        raw = self._client.get(self.job_key(job_id))
        return JobRecord.model_validate_json(raw) if raw else None

    def get_jobs(self, job_ids: list[str]) -> list[JobRecord | None]:
        if not job_ids:
            return []
        raws = self._client.mget([self.job_key(job_id) for job_id in job_ids])
        return [JobRecord.model_validate_json(raw) if raw else None for raw in raws]

    def update_job(self, job: JobRecord) -> bool:
        """Store the new state if the record still exists; False when it was deleted or expired."""
        stored = self._client.set(
            self.job_key(job.id), job.model_dump_json(), xx=True, keepttl=True
        )
        return bool(stored)

    def delete_jobs(self, *job_ids: str) -> None:
        keys = [
            key
            for job_id in job_ids
            for key in (self.job_key(job_id), self._done_key(job_id), self._attempts_key(job_id))
        ]
        if keys:
            self._client.delete(*keys)

    def _done_key(self, job_id: str) -> str:
        return f"{self._prefix}:done:{job_id}"

    def _attempts_key(self, job_id: str) -> str:
        return f"{self._prefix}:attempts:{job_id}"

    def count_attempt(self, job_id: str) -> int:
        """One more start of the job, counted in Redis before any work, so a worker killed while
        processing cannot lose the count; the number of starts including this one, or 0 when
        the job was deleted or expired."""
        return int(
            self._count_attempt_script(keys=[self.job_key(job_id), self._attempts_key(job_id)])
        )

    def finish_job(self, job: JobRecord, content_key: str | None = None) -> bool:
        """Store a job's final state, in one atomic step and one round trip, only if its record
        still exists: then remember its result under ``content_key`` (a ``blurcore.cache_key``),
        for its own API key alone, for as long as results are kept, and wake whoever waits for
        it (``await_finished``). False, with nothing written, when the job was deleted or
        expired meanwhile."""
        cache_entry = self._cache_key(content_key or "", job.key_id)
        stored = self._finish_script(
            keys=[self.job_key(job.id), self._done_key(job.id), cache_entry],
            args=[job.model_dump_json(), self.retention_seconds, job.id if content_key else ""],
        )
        return bool(stored)

    def await_finished(self, job_id: str, timeout: float) -> bool:
        """Block (no polling, no CPU) until the job is announced finished or ``timeout`` passes.

        The announcement is consumed: a second waiter on the same job wakes on its own timeout,
        so callers wait in short slices and re-read the record between them.
        """
        return self._client.blpop([self._done_key(job_id)], timeout=timeout) is not None

    def _cache_key(self, content_key: str, key_id: str | None) -> str:
        """Results are reused within one API key only: reused across keys, an answer of ``done``
        at once would tell one key that another had already processed the same photo. Without
        keys (local use) there is one scope, ``-``, which no key id can be."""
        return f"{self._prefix}:cache:{key_id or '-'}:{content_key}"

    def cached_job_id(self, content_key: str, key_id: str | None) -> str | None:
        """The job whose result answers ``content_key`` for the API key ``key_id``, if any."""
        raw = self._client.get(self._cache_key(content_key, key_id))
        if raw is None:
            return None
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    def create_batch(self, batch: BatchRecord, ttl_seconds: int | None = None) -> None:
        """Kept for the retention, or ``ttl_seconds`` (a batch with videos: as long as they)."""
        self._client.set(
            self.batch_key(batch.id),
            batch.model_dump_json(),
            ex=ttl_seconds or self.retention_seconds,
        )

    def get_batch(self, batch_id: str) -> BatchRecord | None:
        raw = self._client.get(self.batch_key(batch_id))
        return BatchRecord.model_validate_json(raw) if raw else None

    def delete_batch(self, batch_id: str) -> None:
        """The record and the hold on its archive (``release_archive``)."""
        self._client.delete(self.batch_key(batch_id), self._hold_key(batch_id))

    def _hold_key(self, batch_id: str) -> str:
        return f"{self._prefix}:archive-hold:{batch_id}"

    def hold_archive(self, batch_id: str, reader_ids: list[str]) -> None:
        """The batch's stored ZIP is needed until each of ``reader_ids`` (its jobs, and its
        videos until copied out) is counted off: a set of those ids and ``ARCHIVE_HELD``, which
        stays until the archive is destroyed."""
        with self._client.pipeline() as pipe:
            pipe.sadd(self._hold_key(batch_id), ARCHIVE_HELD, *reader_ids)
            pipe.expire(self._hold_key(batch_id), self.retention_seconds)
            pipe.execute()

    def count_off(self, batch_id: str, job_id: str) -> bool:
        """The job (or video) no longer needs its batch's archive (it finished, was copied out,
        or was deleted); True when none does and the archive is still held: it is due for
        destruction, then ``release_archive``. Counting a job off twice counts it once (a set
        removal), and until the release every later call answers True again, so a worker that
        died before the destruction leaves it to the next one."""
        due = self._count_off_script(keys=[self._hold_key(batch_id)], args=[job_id, ARCHIVE_HELD])
        return bool(due)

    def release_archive(self, batch_id: str) -> None:
        """The archive was destroyed: no later count answers True."""
        self._client.delete(self._hold_key(batch_id))
