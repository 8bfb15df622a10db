"""One video, start to end, with no Celery in sight: the task is a thin shell over this.

The original is read from the blob store through a file object (never written to disk in plain);
the anonymized video is written to a scratch directory, stored as the result, and the scratch
directory goes. While it runs, the progress is reported a few times a second; a report that finds
the record gone (``DELETE``) stops the work, and nothing is stored.
"""

import json
import logging
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from blurcore import Anonymizer, BlurcoreError
from blurcore.hashing import file_sha256_hex
from blurcore.video.pipeline import (
    AudioPolicy,
    VideoAnonymizer,
    VideoOptions,
    VideoResult,
)
from blurcore.video.probe import VideoLimits
from fpg_audit import AuditEvent, AuditStore
from jobstore import audit_events
from jobstore.blobs import BlobStore, input_key, report_key, result_key
from jobstore.blobs.base import CHUNK_BYTES
from jobstore.blobs.reader import open_blob
from jobstore.celery_wiring import VIDEO_LEASE_SECONDS
from jobstore.records import FINISHED, JobStatus
from jobstore.video_records import Stage, VideoProgress, VideoRecord, VideoRecordStore

log = logging.getLogger("fpg.worker")

# The share of the time the first pass (decode, detect, track) takes; the second (decode,
# anonymize, encode) the rest. Measured, default profile, one inference thread on 2 busy cores:
# 0.73 and 0.71 on two shared 960x540 clips (dev01, dev07), 0.86 on a 960x540 test clip.
DETECT_SHARE = 0.72
REPORT_EVERY_SECONDS = 0.25


class VideoDeletedError(Exception):
    """The video's record is gone (deleted while it ran), or another worker took it over."""


class VideoBusyError(Exception):
    """Another worker holds the video's lease: this delivery is a second one of a running task."""


@dataclass
class VideoRunner:
    videos: VideoRecordStore
    blobs: BlobStore
    anonymizer: Anonymizer
    scratch_dir: Path | None = None  # None: the system's temporary directory
    time_limit_errors: tuple[type[BaseException], ...] = ()
    audit: AuditStore | None = None
    max_attempts: int = 3
    report_every_seconds: float = REPORT_EVERY_SECONDS

    def run(self, video_id: str) -> VideoRecord | None:
        """Anonymize one stored video. Fail closed: the result is stored only when complete, the
        video marked done only once it is stored and audited, and the original deleted then.
        Raises ``VideoBusyError`` while another worker is on it."""
        video = self.videos.get(video_id)
        if video is None:
            return None
        if video.status in FINISHED:  # a redelivery after the first run answered
            self.blobs.delete(input_key(video_id))
            return video
        progress = _ProgressReport(self.videos, video, uuid.uuid4().hex, self.report_every_seconds)
        if not progress.hold_lease():
            raise VideoBusyError(f"video {video_id} is being processed by another worker")
        video.attempts = self.videos.count_attempt(video_id)
        if video.attempts == 0:
            return None  # deleted meanwhile
        video.status, video.started_at = JobStatus.RUNNING, time.time()
        if video.attempts > self.max_attempts:
            reason = (
                f"its worker process died {self.max_attempts} times while processing it "
                "(killed, out of memory or crashed); it is not tried again"
            )
            return self._fail(video, reason)
        video.detectors = {
            detector.name: detector.model_sha256
            for detector in self.anonymizer.finder.detectors_for(video.params.profile)
        }
        if not self.videos.update(video):
            return None
        try:
            return self._process(video, progress)
        except VideoDeletedError:
            log.info("video deleted while it was processed: stopped", extra={"job_id": video.id})
            return None

    def _process(self, video: VideoRecord, progress: "_ProgressReport") -> VideoRecord | None:
        original = open_blob(self.blobs, input_key(video.id))
        if original is None:
            return self._fail(video, "the original expired or was deleted before processing")
        options = VideoOptions(
            audio=AudioPolicy(video.audio),
            limits=VideoLimits(max_seconds=float("inf")),  # the gateway judged the duration
        )
        with original, tempfile.TemporaryDirectory(prefix="fpg-video-", dir=self.scratch_dir) as d:
            output = Path(d) / f"{video.id}{video.suffix}"
            try:
                result = VideoAnonymizer(self.anonymizer, options).process(
                    original, output, video.params, progress
                )
                return self._store(video, result, output, progress)
            except BlurcoreError as error:
                return self._fail(video, str(error), file_sha256_hex(original))
            except self.time_limit_errors:
                return self._fail(video, "processing took longer than the time limit")
            except VideoDeletedError:
                raise
            except Exception:
                if video.status is not JobStatus.FAILED:  # failed already when not audited
                    self._fail(video, "internal error while processing the video")
                raise

    def _store(
        self,
        video: VideoRecord,
        result: VideoResult,
        output: Path,
        progress: "_ProgressReport",
    ) -> VideoRecord | None:
        retention = self.videos.retention_seconds
        stored = [result_key(video.id), report_key(video.id)]
        try:
            self.blobs.write(result_key(video.id), _file_chunks(output, progress.beat), retention)
            report = {"id": video.id, "filename": video.filename, **result.to_dict()}
            report["params"] = video.params.model_dump(mode="json")
            report["audio"] = video.audio
            self.blobs.put(report_key(video.id), json.dumps(report).encode(), retention)
        except VideoDeletedError:
            self.blobs.delete(*stored)
            raise
        video.result_expires_at = time.time() + retention
        video.status, video.finished_at = JobStatus.DONE, time.time()
        video.frames, video.tracks = result.scan.frames, len(result.scan.tracks)
        video.faces = sum(len(outlines) for outlines in result.scan.outlines)
        video.input_sha256, video.output_sha256 = result.input_sha256, result.output_sha256
        try:
            self._audit(audit_events.video_processed(video), audit_events.original_deleted(video))
        except Exception:
            self.blobs.delete(*stored)
            self._fail(video, "the audit trail could not be written; the result was discarded")
            raise
        finished = self.videos.finish(video)
        self.blobs.delete(input_key(video.id))  # once the record says done: see JobRunner.run
        if not finished:
            self.blobs.delete(*stored)  # deleted meanwhile: keep nothing
            self._audit(audit_events.result_deleted(video))
            return None
        log.info(
            "video done",
            extra={"job_id": video.id, "faces": video.faces, "status": video.status.value},
        )
        return video

    def _fail(
        self, video: VideoRecord, reason: str, input_sha256: str | None = None
    ) -> VideoRecord:
        video.status, video.finished_at, video.error = JobStatus.FAILED, time.time(), reason
        video.input_sha256, video.output_sha256, video.result_expires_at = input_sha256, None, None
        # Nothing of it is kept: the original, and whatever was stored before the failure.
        self.blobs.delete(input_key(video.id), result_key(video.id), report_key(video.id))
        try:
            self._audit(audit_events.video_processed(video), audit_events.original_deleted(video))
        finally:
            self.videos.finish(video)
        log.info("video failed", extra={"job_id": video.id, "error": reason})
        return video

    def _audit(self, *events: AuditEvent) -> None:
        if self.audit is not None:
            self.audit.append(*events)


class _ProgressReport:
    """blurcore's progress callback: the share of the work done, written to Redis at most every
    ``every_seconds``, with the lease renewed; raises ``VideoDeletedError`` once the record is
    gone, which ends the pipeline (it removes its partial output)."""

    def __init__(
        self, videos: VideoRecordStore, video: VideoRecord, holder: str, every_seconds: float
    ) -> None:
        self._videos, self._video, self._holder = videos, video, holder
        self._every = every_seconds
        self._started = time.monotonic()
        self._last = 0.0
        self._frames = video.declared_frames

    def hold_lease(self) -> bool:
        return self._videos.hold_lease(self._video.id, self._holder, VIDEO_LEASE_SECONDS)

    def __call__(self, stage: str, done: int, expected: int) -> None:
        now = time.monotonic()
        if now - self._last < self._every:
            return
        self._last = now
        self._frames = max(expected, done, 1)
        passed = done / self._frames
        if stage == "detect":
            self._send("detect", DETECT_SHARE * passed, now)
        else:
            self._send("write", DETECT_SHARE + (1 - DETECT_SHARE) * passed, now)

    def beat(self) -> None:
        """While the result is stored: the work is all but done."""
        now = time.monotonic()
        if now - self._last >= self._every:
            self._last = now
            self._send("store", 1.0, now)

    def _send(self, stage: Stage, share: float, now: float) -> None:
        elapsed = now - self._started
        frames_done = round(share * self._frames)
        progress = VideoProgress(
            stage=stage,
            frames_done=frames_done,
            frames_total=self._frames,
            percent=round(min(99.0, 100 * share), 1),  # 100 is the record's "done"
            frames_per_second=round(frames_done / elapsed, 2) if elapsed > 0 else 0.0,
            seconds_left=round(elapsed * (1 - share) / share, 1) if share >= 0.01 else None,
        )
        if not self._videos.report(self._video.id, self._holder, VIDEO_LEASE_SECONDS, progress):
            raise VideoDeletedError(self._video.id)


def _file_chunks(path: Path, between: Callable[[], None]) -> Iterator[bytes]:
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            between()
            yield chunk
