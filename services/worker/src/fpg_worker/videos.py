"""One video over several workers, with no Celery in sight: the tasks are thin shells over this.

A video goes through five steps (blurcore.video.segments), each a task any video worker may take:

1. plan: the clip cut at keyframes into segments of about ``segment_seconds`` (demuxing only);
2. detect, one task per segment: the faces in its frames;
3. track, once: faces followed over the whole clip from every segment's detections, so a track
   runs through a seam as through any other frame;
4. write, one task per segment: its frames anonymized and encoded into a part;
5. join, once: the parts and the original's sound into the result, stored and audited.

A step's output goes to the blob store, encrypted like the original, under a key of its own
(``video_work_keys``); a redelivered step finds it there and does not do it again. The task that
finishes the last segment of a pass returns the next step's tasks for the shell to send. The
original is read through a file object (never written to disk in plain); a part or the result is
encoded in a scratch directory and goes once stored.

While a step runs it reports its frames a few times a second and renews its lease; a report
that finds the video deleted or failed stops the step, which keeps nothing. A step that fails
(a damaged file, its time limit, an error) fails the whole video: nothing partial is served.
"""

import json
import logging
import math
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from blurcore import Anonymizer, BlurcoreError
from blurcore.hashing import file_sha256_hex
from blurcore.video.joining import AudioPolicy, join_segments
from blurcore.video.pipeline import VideoAnonymizer, VideoOptions, VideoResult
from blurcore.video.probe import VideoLimits
from blurcore.video.scan import Scan, SegmentDetections, track_segments
from blurcore.video.segments import SegmentPlan, plan_segments
from fpg_audit import AuditEvent, AuditStore
from jobstore import audit_events, batch_archives
from jobstore.blobs import BlobStore, input_key, report_key, result_key
from jobstore.blobs.base import (
    CHUNK_BYTES,
    detections_key,
    part_key,
    plan_key,
    scan_key,
    video_work_keys,
)
from jobstore.blobs.reader import open_blob
from jobstore.celery_wiring import (
    VIDEO_DETECT_TASK,
    VIDEO_JOIN_TASK,
    VIDEO_LEASE_SECONDS,
    VIDEO_TASK,
    VIDEO_TRACK_TASK,
    VIDEO_WRITE_TASK,
    WHOLE_CLIP_SHARE,
)
from jobstore.records import FINISHED, JobStatus, RecordStore
from jobstore.video_records import Pass, VideoRecord, VideoRecordStore

log = logging.getLogger("fpg.worker")

REPORT_EVERY_SECONDS = 0.25
DEFAULT_SEGMENT_SECONDS = 30.0


class VideoDeletedError(Exception):
    """The video's record is gone or finished (deleted, or failed by another of its tasks), or
    another worker took this task over."""


class VideoBusyError(Exception):
    """Another worker holds the task's lease: this delivery is a second one of a running task."""


class _StoredInputGoneError(Exception):
    """The original, or a step's output another step needs, expired or was deleted."""


@dataclass(frozen=True)
class NextTask:
    """A task for the shell to send: its name, arguments, and the stretch of video it works on,
    which its time limits follow."""

    name: str
    args: tuple[str | int, ...]
    video_seconds: float


Step = Callable[[VideoRecord, "_TaskLease"], list[NextTask]]


@dataclass
class VideoRunner:
    videos: VideoRecordStore
    blobs: BlobStore
    anonymizer: Anonymizer
    segment_seconds: float = DEFAULT_SEGMENT_SECONDS
    scratch_dir: Path | None = None  # None: the system's temporary directory
    time_limit_errors: tuple[type[BaseException], ...] = ()
    audit: AuditStore | None = None
    max_attempts: int = 3
    report_every_seconds: float = REPORT_EVERY_SECONDS
    # For the videos of a batch, whose headers no gateway read: the batch's ZIP's hold, and the
    # longest video they may be.
    records: RecordStore | None = None
    max_video_seconds: float = math.inf

    def plan(self, video_id: str) -> list[NextTask]:
        return self._step(video_id, "plan", self._plan)

    def detect(self, video_id: str, segment: int) -> list[NextTask]:
        return self._step(video_id, f"detect-{segment}", self._detector_of(segment))

    def track(self, video_id: str) -> list[NextTask]:
        return self._step(video_id, "track", self._track)

    def write(self, video_id: str, segment: int) -> list[NextTask]:
        return self._step(video_id, f"write-{segment}", self._writer_of(segment))

    def join(self, video_id: str) -> list[NextTask]:
        return self._step(video_id, "join", self._join)

    def run(self, video_id: str) -> VideoRecord | None:
        """Every step in this process, one after the other, as the shell would send them: for
        the library's users and the tests. The video as it ends."""
        pending = [NextTask(VIDEO_TASK, (video_id,), 0.0)]
        steps: dict[str, Callable[..., list[NextTask]]] = {
            VIDEO_TASK: self.plan,
            VIDEO_DETECT_TASK: self.detect,
            VIDEO_TRACK_TASK: self.track,
            VIDEO_WRITE_TASK: self.write,
            VIDEO_JOIN_TASK: self.join,
        }
        while pending:
            task = pending.pop(0)
            pending += steps[task.name](*task.args)
        return self.videos.get(video_id)

    def _step(self, video_id: str, task: str, step: Step) -> list[NextTask]:
        """One step of a video, under its lease, with its starts counted; any failure fails the
        video. Raises ``VideoBusyError`` while another worker is on the same step."""
        video = self.videos.get(video_id)
        if video is None or video.status in FINISHED:
            return []  # deleted, or failed by another step, or a redelivery after the end
        lease = _TaskLease(self.videos, video_id, task, self.report_every_seconds)
        if not lease.take():
            raise VideoBusyError(f"{task} of video {video_id} is being run by another worker")
        attempts = self.videos.count_attempt(video_id, task)
        if attempts == 0:
            return []  # deleted meanwhile
        if attempts > self.max_attempts:
            self._fail(
                video,
                f"its worker process died {self.max_attempts} times while processing it "
                f"(killed, out of memory or crashed: {task}); it is not tried again",
            )
            return []
        try:
            with lease.kept():
                return step(video, lease)
        except VideoDeletedError:
            log.info("video deleted or failed meanwhile: step stopped", extra={"job_id": video_id})
            return []
        except _StoredInputGoneError as gone:
            self._fail(video, f"{gone} expired or was deleted before the video was done")
        except BlurcoreError as error:
            self._fail(video, str(error))
        except self.time_limit_errors:
            self._fail(video, "processing took longer than the time limit")
        except Exception:
            self._fail(video, "internal error while processing the video")
            raise
        return []

    def _plan(self, video: VideoRecord, _lease: "_TaskLease") -> list[NextTask]:
        video.status, video.started_at = JobStatus.RUNNING, video.started_at or time.time()
        video.detectors = {
            detector.name: detector.model_sha256
            for detector in self.anonymizer.finder.detectors_for(video.params.profile)
        }
        # The gateway judged an upload's duration from its header already; not a ZIP entry's.
        max_seconds = math.inf
        if video.archive_entry is not None:
            self._copy_out_of_batch(video)
            max_seconds = self.max_video_seconds
        with self._original(video) as original:
            plan = plan_segments(
                original, self.segment_seconds, VideoLimits(max_seconds=max_seconds)
            )
        self._put_json(plan_key(video.id), plan.to_dict(), video)
        video.segments, video.frames_total = len(plan.segments), plan.frames
        video.seconds = plan.frames / _frame_rate(plan)
        if not self.videos.update(video):
            raise VideoDeletedError(video.id)
        rate = _frame_rate(plan)
        return [
            NextTask(VIDEO_DETECT_TASK, (video.id, segment.index), segment.frames / rate)
            for segment in plan.segments
        ]

    def _copy_out_of_batch(self, video: VideoRecord) -> None:
        """A video of a batch: its entry of the batch's ZIP copied into its own input, which its
        steps seek in (a redelivered plan finds the copy made); then, whatever came of the copy,
        counted off the ZIP's hold, so the ZIP goes once its last reader is done."""
        assert video.batch_id is not None
        assert self.records is not None, "a runner for videos of batches is given their records"
        try:
            if not self.blobs.exists(input_key(video.id)):
                with batch_archives.batch_entry_chunks(self.blobs, video) as chunks:
                    if chunks is None:
                        raise _StoredInputGoneError("the batch's ZIP")
                    self._keep(input_key(video.id), chunks, video)
        except FileNotFoundError as gone:  # the ZIP deleted while it was copied
            raise _StoredInputGoneError("the batch's ZIP") from gone
        finally:
            batch_archives.count_off(self.records, self.blobs, self.audit, video.batch_id, video.id)

    def _detector_of(self, segment: int) -> Step:
        def detect(video: VideoRecord, lease: "_TaskLease") -> list[NextTask]:
            key = detections_key(video.id, segment)
            if not self.blobs.exists(key):
                plan = SegmentPlan.from_dict(self._get_json(plan_key(video.id)))
                with self._original(video) as original:
                    found = self._video_anonymizer(video).detect_segment(
                        original, plan, segment, video.params, lease.progress("detect", segment)
                    )
                self._put_json(key, found.to_dict(), video)
            return self._after_pass(video, "detect", segment, VIDEO_TRACK_TASK)

        return detect

    def _track(self, video: VideoRecord, _lease: "_TaskLease") -> list[NextTask]:
        plan = SegmentPlan.from_dict(self._get_json(plan_key(video.id)))
        if not self.blobs.exists(scan_key(video.id)):
            detected = [
                SegmentDetections.from_dict(self._get_json(detections_key(video.id, s.index)))
                for s in plan.segments
            ]
            scan = track_segments(plan, detected, video.params)
            self._put_json(scan_key(video.id), scan.to_dict(), video)
        rate = _frame_rate(plan)
        return [
            NextTask(VIDEO_WRITE_TASK, (video.id, segment.index), segment.frames / rate)
            for segment in plan.segments
        ]

    def _writer_of(self, segment: int) -> Step:
        def write(video: VideoRecord, lease: "_TaskLease") -> list[NextTask]:
            key = part_key(video.id, segment)
            if not self.blobs.exists(key):
                plan = SegmentPlan.from_dict(self._get_json(plan_key(video.id)))
                scan = Scan.from_dict(self._get_json(scan_key(video.id)))
                with self._original(video) as original, self._scratch() as directory:
                    part = directory / f"part-{segment}.mp4"
                    self._video_anonymizer(video).write_segment(
                        original,
                        scan,
                        plan,
                        segment,
                        video.params,
                        part,
                        f"{video.id}{video.suffix}",
                        lease.progress("write", segment),
                    )
                    self._keep(key, _file_chunks(part, lease.beat), video)
            return self._after_pass(video, "write", segment, VIDEO_JOIN_TASK)

        return write

    def _after_pass(
        self, video: VideoRecord, stage: Pass, segment: int, next_task: str
    ) -> list[NextTask]:
        """The next step, from the task that finished the pass's last segment."""
        if self.videos.segment_done(video.id, stage, segment) < (video.segments or 0):
            return []
        return [NextTask(next_task, (video.id,), (video.seconds or 0.0) * WHOLE_CLIP_SHARE)]

    def _join(self, video: VideoRecord, lease: "_TaskLease") -> list[NextTask]:
        plan = SegmentPlan.from_dict(self._get_json(plan_key(video.id)))
        scan = Scan.from_dict(self._get_json(scan_key(video.id)))
        with ExitStack() as opened, self._scratch() as directory:
            original = opened.enter_context(self._original(video))
            parts = [
                opened.enter_context(self._stored(part_key(video.id, s.index), f"part {s.index}"))
                for s in plan.segments
            ]
            output = directory / f"{video.id}{video.suffix}"
            join_segments(original, plan, parts, output, AudioPolicy(video.audio))
            original.seek(0)
            result = VideoResult(
                scan=scan,
                input_sha256=file_sha256_hex(original),
                output_sha256=file_sha256_hex(output),
            )
            self._store(video, result, output, lease)
        return []

    def _store(
        self, video: VideoRecord, result: VideoResult, output: Path, lease: "_TaskLease"
    ) -> None:
        retention = self.videos.retention_seconds
        stored = [result_key(video.id), report_key(video.id)]
        try:
            self.blobs.write(result_key(video.id), _file_chunks(output, lease.beat), retention)
            report = {"id": video.id, "filename": video.filename, **result.to_dict()}
            report["params"] = video.params.model_dump(mode="json")
            report["audio"] = video.audio
            self.blobs.put(report_key(video.id), json.dumps(report).encode(), retention)
        except BaseException:
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
        # Once the record says done, not before: see JobRunner.run.
        self._discard_work(video)
        if not finished:
            self.blobs.delete(*stored)  # deleted meanwhile: keep nothing
            self._audit(audit_events.result_deleted(video))
            return
        log.info(
            "video done",
            extra={"job_id": video.id, "faces": video.faces, "status": video.status.value},
        )

    def _fail(self, video: VideoRecord, reason: str) -> None:
        """The video failed, with its input's hash where the original can still be read; all
        that was stored of it goes. A video deleted meanwhile (its original may be gone for that
        reason) or failed by another of its steps is not failed again."""
        current = self.videos.get(video.id)
        if current is None or current.status in FINISHED:
            self._discard_work(video)
            return
        video.status, video.finished_at, video.error = JobStatus.FAILED, time.time(), reason
        video.output_sha256 = None
        video.input_sha256 = self._input_sha256(video)
        self.blobs.delete(result_key(video.id), report_key(video.id))
        self._discard_work(video)
        try:
            self._audit(audit_events.video_processed(video), audit_events.original_deleted(video))
        finally:
            self.videos.finish(video)
        log.info("video failed", extra={"job_id": video.id, "error": reason})

    def _input_sha256(self, video: VideoRecord) -> str | None:
        original = open_blob(self.blobs, input_key(video.id))
        if original is None:
            return None
        with original:
            return file_sha256_hex(original)

    def _discard_work(self, video: VideoRecord) -> None:
        """The original and every step's output."""
        segments = video.segments or 0
        self.blobs.delete(input_key(video.id), *video_work_keys(video.id, segments))

    def _video_anonymizer(self, video: VideoRecord) -> VideoAnonymizer:
        options = VideoOptions(
            audio=AudioPolicy(video.audio),
            limits=VideoLimits(max_seconds=math.inf),  # the gateway judged the duration
        )
        return VideoAnonymizer(self.anonymizer, options)

    @contextmanager
    def _original(self, video: VideoRecord) -> Iterator[BinaryIO]:
        with self._stored(input_key(video.id), "the original") as original:
            yield original

    @contextmanager
    def _stored(self, key: str, what: str) -> Iterator[BinaryIO]:
        reader = open_blob(self.blobs, key)
        if reader is None:
            raise _StoredInputGoneError(what)
        try:
            with reader:
                yield reader
        except FileNotFoundError as gone:  # deleted while it was read
            raise _StoredInputGoneError(what) from gone

    @contextmanager
    def _scratch(self) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="fpg-video-", dir=self.scratch_dir) as directory:
            yield Path(directory)

    def _put_json(self, key: str, document: dict[str, Any], video: VideoRecord) -> None:
        self._keep(key, [json.dumps(document, separators=(",", ":")).encode()], video)

    def _keep(self, key: str, chunks: Iterable[bytes], video: VideoRecord) -> None:
        """Store a step's output for as long as the video's record lives; if the video was
        deleted or failed while it was written, nothing is kept."""
        self.blobs.write(key, chunks, self.videos.seconds_left(video.id))
        current = self.videos.get(video.id)
        if current is None or current.status in FINISHED:
            self.blobs.delete(key)
            raise VideoDeletedError(video.id)

    def _get_json(self, key: str) -> dict[str, Any]:
        data = self.blobs.get(key)
        if data is None:
            raise _StoredInputGoneError(f"the stored {key.split(':')[-1]}")
        document: dict[str, Any] = json.loads(data)
        return document

    def _audit(self, *events: AuditEvent) -> None:
        if self.audit is not None:
            self.audit.append(*events)


class _TaskLease:
    """One step's hold on its task. A thread renews it while the step runs (steps over the whole
    clip report no frames, and a join of hours of video takes minutes); the progress callbacks
    report a segment's frames to Redis at most every ``every_seconds``. Either raises
    ``VideoDeletedError`` in the step once the video is gone or finished (blurcore then removes
    its partial output)."""

    def __init__(
        self, videos: VideoRecordStore, video_id: str, task: str, every_seconds: float
    ) -> None:
        self._videos, self._video_id, self._task = videos, video_id, task
        self._holder = uuid.uuid4().hex
        self._every = every_seconds
        self._last = 0.0
        self._lost = threading.Event()

    def take(self) -> bool:
        return self._videos.hold_lease(
            self._video_id, self._task, self._holder, VIDEO_LEASE_SECONDS
        )

    @contextmanager
    def kept(self) -> Iterator[None]:
        finished = threading.Event()

        def renew() -> None:
            while not finished.wait(VIDEO_LEASE_SECONDS / 4):
                if not self._videos.report(
                    self._video_id, self._task, self._holder, VIDEO_LEASE_SECONDS
                ):
                    self._lost.set()
                    return

        renewer = threading.Thread(target=renew, name=f"lease {self._task}", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            finished.set()
            renewer.join()
            self._videos.release_lease(self._video_id, self._task, self._holder)

    def progress(self, stage: Pass, segment: int) -> Callable[[str, int, int], None]:
        def report(_stage: str, done: int, total: int) -> None:
            if time.monotonic() - self._last >= self._every or done == total:
                self._send((stage, segment, done))

        return report

    def beat(self) -> None:
        """While a part or the result is stored: the lease renewed, the video still wanted."""
        if time.monotonic() - self._last >= self._every:
            self._send(None)

    def _send(self, done: tuple[Pass, int, int] | None) -> None:
        self._last = time.monotonic()
        if self._lost.is_set() or not self._videos.report(
            self._video_id, self._task, self._holder, VIDEO_LEASE_SECONDS, done
        ):
            raise VideoDeletedError(self._video_id)


def _frame_rate(plan: SegmentPlan) -> float:
    rate = plan.info.average_rate
    return float(rate) if rate else 25.0


def _file_chunks(path: Path, between: Callable[[], None]) -> Iterator[bytes]:
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            between()
            yield chunk
