"""Video records in Redis: one JSON value per video, and beside it what the workers sharing it
write while they run (fpg_worker.videos: a video is planned, detected and written segment by
segment, tracked and joined once):

- progress: the frames each segment's task has detected and written, each count only ever
  raised, so a redelivered task starting over never takes the percent back;
- a lease per task, renewed with every progress report: a second delivery of a task another
  worker is still on can tell (``hold_lease``);
- which segments have finished a pass (``segment_done``): the task finishing the last one sends
  the next pass;
- starts per task (``count_attempt``): a task that took down its workers too often fails the video.

Like job records, updates never bring back a record deleted meanwhile (``SET ... XX``): a worker
finds out through its progress reports that its video was deleted or has failed, and stops.
"""

import time
from typing import Literal

import redis
from pydantic import BaseModel, Field

from blurcore import AnonymizeParams
from jobstore.records import COUNT_ATTEMPT_SCRIPT, ArchiveEntryRef, JobStatus

AudioChoice = Literal["keep", "mute"]  # blurcore.video.pipeline.AudioPolicy, without PyAV
Stage = Literal["detect", "write", "store"]  # blurcore's two passes, then storing the result
Pass = Literal["detect", "write"]
# The share of the work the first pass (decode and detect) takes; the second (decode,
# anonymize, encode) the rest. Measured on the test clips and the shared 960x540 clips, default
# profile: the first pass 0.71-0.75 of the time.
DETECT_SHARE = 0.72


class VideoRecord(BaseModel):
    id: str
    status: JobStatus = JobStatus.QUEUED
    params: AnonymizeParams
    audio: AudioChoice = "keep"
    filename: str
    batch_id: str | None = None
    # A video of a batch: its entry of the batch's ZIP, copied into its own input by its first step.
    archive_entry: ArchiveEntryRef | None = None
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
    segments: int | None = Field(default=None, description="Once planned: how many.")
    frames_total: int | None = Field(default=None, description="Once planned: the frames.")
    seconds: float | None = Field(default=None, description="Once planned: how long it lasts.")

    @property
    def expected_frames(self) -> int:
        return self.frames_total or self.declared_frames


class VideoProgress(BaseModel):
    """What the workers have reported so far; ``percent`` never goes down."""

    stage: Stage
    frames_done: int
    frames_total: int
    percent: float
    frames_per_second: float
    seconds_left: float | None


# A video's record is stopped when it is gone or finished (failed by one of its tasks): the
# workers still on it stop at their next report.
_STOPPED = """
local record = redis.call('GET', KEYS[1])
if not record then return 0 end
local status = cjson.decode(record)['status']
if status == 'done' or status == 'failed' then return 0 end
"""
# KEYS: the record, the task's lease; ARGV: the holder, milliseconds. Takes the lease when it is
# free or already the holder's, and only while the record is running; 0 when it is stopped, -1
# when another holds the lease.
_RENEW_LEASE = (
    _STOPPED
    + """
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return -1 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
"""
)
_HOLD_LEASE = _RENEW_LEASE + "return 1"
# KEYS: ... and the video's progress hash; ARGV: ..., a field (pass:segment), its frames. With the
# lease renewed, the count is stored unless a higher one is there already, for as long as the
# record lives.
_REPORT_PROGRESS = (
    _RENEW_LEASE
    + """
local stored = tonumber(redis.call('HGET', KEYS[3], ARGV[3]) or '-1')
if tonumber(ARGV[4]) > stored then redis.call('HSET', KEYS[3], ARGV[3], ARGV[4]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[3], ttl) end
return 1
"""
)
# KEYS: a task's lease; ARGV: the holder. Lets it go if the holder still has it.
_RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
"""
# KEYS: the record, a pass's set of finished segments; ARGV: the segment. How many segments
# have finished the pass, this one included; 0 once the record is gone.
_SEGMENT_DONE = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 then return 0 end
redis.call('SADD', KEYS[2], ARGV[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return redis.call('SCARD', KEYS[2])
"""


class VideoRecordStore:
    def __init__(self, client: redis.Redis, prefix: str, retention_seconds: int) -> None:
        self._client = client
        self._prefix = prefix
        self.retention_seconds = retention_seconds
        self._report_script = client.register_script(_REPORT_PROGRESS)
        self._lease_script = client.register_script(_HOLD_LEASE)
        self._release_script = client.register_script(_RELEASE_LEASE)
        self._segment_done_script = client.register_script(_SEGMENT_DONE)
        self._count_attempt_script = client.register_script(COUNT_ATTEMPT_SCRIPT)

    def _key(self, kind: str, video_id: str, *detail: str) -> str:
        """``video`` is the record; ``video-progress``, ``video-lease:TASK``,
        ``video-attempts:TASK`` and ``video-done:PASS`` the rest."""
        return ":".join((self._prefix, kind, video_id, *detail))

    def create(self, video: VideoRecord, ttl_seconds: int) -> None:
        """``ttl_seconds``: the retention plus the time the video may take to process."""
        self._client.set(self._key("video", video.id), video.model_dump_json(), ex=ttl_seconds)

    def get(self, video_id: str) -> VideoRecord | None:
        raw = self._client.get(self._key("video", video_id))
        return VideoRecord.model_validate_json(raw) if raw else None

    def seconds_left(self, video_id: str) -> int:
        """How long the record is still kept: what a video's work in progress may be kept for."""
        return max(1, int(self._client.ttl(self._key("video", video_id))))

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
        if stored:
            self._client.expire(self._key("video-progress", video.id), self.retention_seconds)
        return bool(stored)

    def delete(self, video: VideoRecord) -> None:
        """The record and everything its tasks wrote beside it. No worker writes any of it once
        the record is gone; what a task planned meanwhile (segments the record does not know
        yet) expires with the record's time-to-live."""
        tasks = ["plan", "track", "join"]
        tasks += [
            f"{stage}-{n}" for n in range(video.segments or 0) for stage in ("detect", "write")
        ]
        self._client.delete(
            self._key("video", video.id),
            self._key("video-progress", video.id),
            *(self._key("video-done", video.id, stage) for stage in ("detect", "write")),
            *(
                self._key(kind, video.id, task)
                for task in tasks
                for kind in ("video-lease", "video-attempts")
            ),
        )

    def count_attempt(self, video_id: str, task: str) -> int:
        """As ``RecordStore.count_attempt``, per task: its starts so far, this one included; 0
        when the video is gone."""
        keys = [self._key("video", video_id), self._key("video-attempts", video_id, task)]
        return int(self._count_attempt_script(keys=keys))

    def hold_lease(self, video_id: str, task: str, holder: str, seconds: float) -> bool:
        """Take or renew the lease on one task of a video for ``seconds``; False while another
        holds it or once the video is deleted or finished."""
        keys = [self._key("video", video_id), self._key("video-lease", video_id, task)]
        return int(self._lease_script(keys=keys, args=[holder, round(seconds * 1000)])) == 1

    def release_lease(self, video_id: str, task: str, holder: str) -> None:
        """The task is over (done or stopped): a second delivery may run it at once."""
        self._release_script(keys=[self._key("video-lease", video_id, task)], args=[holder])

    def report(
        self,
        video_id: str,
        task: str,
        holder: str,
        lease_seconds: float,
        done: tuple[Pass, int, int] | None = None,
    ) -> bool:
        """Renew the task's lease and store ``done`` (the pass, the segment, its frames done so
        far); False when the video was deleted or finished, or another worker took the task
        over (the worker then stops)."""
        keys = [
            self._key("video", video_id),
            self._key("video-lease", video_id, task),
            self._key("video-progress", video_id),
        ]
        field, frames = ("lease", 0) if done is None else (f"{done[0]}:{done[1]}", done[2])
        args = [holder, round(lease_seconds * 1000), field, frames]
        return int(self._report_script(keys=keys, args=args)) == 1  # type: ignore[arg-type]

    def segment_done(self, video_id: str, stage: Pass, segment: int) -> int:
        """Count ``segment`` as through ``stage``; how many segments are, this one included."""
        keys = [self._key("video", video_id), self._key("video-done", video_id, stage)]
        return int(self._segment_done_script(keys=keys, args=[segment]))

    def progress(self, video: VideoRecord) -> VideoProgress | None:
        """The share of the work done over every segment, both passes, as reported; None before
        any report."""
        counts = self._client.hgetall(self._key("video-progress", video.id))
        if not counts:
            return None
        done = {"detect": 0, "write": 0}
        for field, frames in counts.items():
            kind = (field.decode() if isinstance(field, bytes) else field).split(":")[0]
            if kind in done:
                done[kind] += int(frames)
        total = max(1, video.expected_frames)
        share = (
            DETECT_SHARE * min(done["detect"], total)
            + (1 - DETECT_SHARE) * min(done["write"], total)
        ) / total
        stage: Stage = (
            "detect" if not done["write"] else "write" if done["write"] < total else "store"
        )
        elapsed = time.time() - (video.started_at or video.created_at)
        frames_done = round(share * total)
        return VideoProgress(
            stage=stage,
            frames_done=frames_done,
            frames_total=total,
            percent=round(min(99.0, 100 * share), 1),  # 100 is the record's "done"
            frames_per_second=round(frames_done / elapsed, 2) if elapsed > 0 else 0.0,
            seconds_left=round(elapsed * (1 - share) / share, 1) if share >= 0.01 else None,
        )
