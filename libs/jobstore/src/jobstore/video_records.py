"""Video records in Redis: one JSON value per video, and beside it its progress and the lease
of the worker running it. A video takes minutes to hours, so unlike an image's record its
progress is written while it runs, and a second delivery of its task must be able to tell that
another worker is still on it (``hold_lease``).

Like job records, updates never bring back a record deleted meanwhile (``SET ... XX``): a worker
finds out through its progress reports that its video was deleted, and stops.
"""

import time
from typing import Literal

import redis
from pydantic import BaseModel, Field

from blurcore import AnonymizeParams
from jobstore.records import COUNT_ATTEMPT_SCRIPT, JobStatus

AudioChoice = Literal["keep", "mute"]  # blurcore.video.pipeline.AudioPolicy, without PyAV
Stage = Literal["detect", "write", "store"]  # blurcore's two passes, then storing the result


class VideoRecord(BaseModel):
    id: str
    status: JobStatus = JobStatus.QUEUED
    params: AnonymizeParams
    audio: AudioChoice = "keep"
    filename: str
    batch_id: str | None = None  # none yet: ZIPs with videos come later
    suffix: str = Field(description="Of the stored upload and the result: the container kind.")
    content_type: str
    declared_frames: int = Field(description="The frames its header declares; 0: none.")
    created_at: float = Field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    frames: int | None = None
    faces: int | None = Field(default=None, description="Face regions anonymized, all frames.")
    tracks: int | None = None
    input_sha256: str | None = None
    output_sha256: str | None = None
    error: str | None = None
    attempts: int = 0
    key_id: str | None = None
    client: str | None = None
    result_expires_at: float | None = None
    detectors: dict[str, str] | None = None


class VideoProgress(BaseModel):
    """What the worker reports while it runs; ``percent`` never goes down (``report``)."""

    stage: Stage
    frames_done: int
    frames_total: int
    percent: float
    frames_per_second: float
    seconds_left: float | None


# KEYS: the record, its lease; ARGV: the holder, milliseconds. Takes the lease when it is free
# or already the holder's, and only while the record exists; 0 when the record is gone, -1 when
# another holds the lease.
_RENEW_LEASE = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 then return 0 end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return -1 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
"""
_HOLD_LEASE = _RENEW_LEASE + "return 1"
# KEYS: ... and its progress; ARGV: ..., the progress JSON, its percent. With the lease renewed,
# the progress is stored with the record's time-to-live, unless a higher percent is stored
# already (a redelivered task starting over: readers see its progress hold, never fall).
_REPORT_PROGRESS = (
    _RENEW_LEASE
    + """
local stored = redis.call('GET', KEYS[3])
if stored and cjson.decode(stored)['percent'] > tonumber(ARGV[4]) then return 1 end
if ttl > 0 then redis.call('SET', KEYS[3], ARGV[3], 'PX', ttl)
else redis.call('SET', KEYS[3], ARGV[3]) end
return 1
"""
)


class VideoRecordStore:
    def __init__(self, client: redis.Redis, prefix: str, retention_seconds: int) -> None:
        self._client = client
        self._prefix = prefix
        self.retention_seconds = retention_seconds
        self._report_script = client.register_script(_REPORT_PROGRESS)
        self._lease_script = client.register_script(_HOLD_LEASE)
        self._count_attempt_script = client.register_script(COUNT_ATTEMPT_SCRIPT)

    def _key(self, kind: str, video_id: str) -> str:
        """``video`` is the record; ``video-progress``, ``video-lease``, ``video-attempts``."""
        return f"{self._prefix}:{kind}:{video_id}"

    def create(self, video: VideoRecord, ttl_seconds: int) -> None:
        """``ttl_seconds``: the retention plus the time the video may take to process."""
        self._client.set(self._key("video", video.id), video.model_dump_json(), ex=ttl_seconds)

    def get(self, video_id: str) -> VideoRecord | None:
        raw = self._client.get(self._key("video", video_id))
        return VideoRecord.model_validate_json(raw) if raw else None

    def update(self, video: VideoRecord) -> bool:
        """Store the new state if the record still exists; False when it was deleted."""
        stored = self._client.set(
            self._key("video", video.id), video.model_dump_json(), xx=True, keepttl=True
        )
        return bool(stored)

    def finish(self, video: VideoRecord) -> bool:
        """The final state, kept as long as the result from now (a long video outlives the
        retention counted from its upload); False, nothing written, when it was deleted."""
        stored = self._client.set(
            self._key("video", video.id),
            video.model_dump_json(),
            xx=True,
            ex=self.retention_seconds,
        )
        return bool(stored)

    def delete(self, video_id: str) -> None:
        self._client.delete(
            *(
                self._key(kind, video_id)
                for kind in ("video", "video-progress", "video-attempts", "video-lease")
            )
        )

    def count_attempt(self, video_id: str) -> int:
        """As ``RecordStore.count_attempt``: starts so far including this one; 0 when gone."""
        keys = [self._key("video", video_id), self._key("video-attempts", video_id)]
        return int(self._count_attempt_script(keys=keys))

    def hold_lease(self, video_id: str, holder: str, seconds: float) -> bool:
        """Take or renew the lease on a video for ``seconds``; False while another holds it or
        once the video is deleted."""
        keys = [self._key("video", video_id), self._key("video-lease", video_id)]
        return int(self._lease_script(keys=keys, args=[holder, round(seconds * 1000)])) == 1

    def report(
        self, video_id: str, holder: str, lease_seconds: float, progress: VideoProgress
    ) -> bool:
        """Renew the lease and store the progress; False when the video was deleted or another
        worker took it over (the worker then stops)."""
        keys = [self._key(kind, video_id) for kind in ("video", "video-lease", "video-progress")]
        lease_ms = round(lease_seconds * 1000)
        args: list[str | int | float] = [
            holder,
            lease_ms,
            progress.model_dump_json(),
            progress.percent,
        ]
        return int(self._report_script(keys=keys, args=args)) == 1

    def progress(self, video_id: str) -> VideoProgress | None:
        raw = self._client.get(self._key("video-progress", video_id))
        return VideoProgress.model_validate_json(raw) if raw else None
