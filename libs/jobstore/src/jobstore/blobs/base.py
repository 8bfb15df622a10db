"""The blob store interface: where payloads (originals, results) live between gateway and worker,
never inside a broker message. Objects are written and read as chunks, so neither side needs a
whole payload in memory, and every object expires after the time-to-live it was written with."""

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator

CHUNK_BYTES = 1 << 20


class BlobStore(ABC):
    @abstractmethod
    def write(self, key: str, chunks: Iterable[bytes], ttl_seconds: int) -> None:
        """Store the object whole or not at all: a reader sees the old object, the new one or
        none, never a part. It expires ``ttl_seconds`` from now."""

    @abstractmethod
    def read(self, key: str, start: int = 0) -> Iterator[bytes] | None:
        """The object's bytes from ``start`` (at most its size) in chunks, or None when it is
        absent or expired. The object is opened before this returns, so one deleted while its
        chunks are read is still read whole."""

    @abstractmethod
    def size(self, key: str) -> int | None:
        """How many bytes ``read`` would give from the start, or None when it would find none."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether ``read`` would find the object now."""

    @abstractmethod
    def delete(self, *keys: str) -> None:
        """Remove these objects; absent ones are no error."""

    @abstractmethod
    def remove_expired(self) -> int:
        """Remove every object whose time-to-live has ended (the retention sweep); how many."""

    def put(self, key: str, data: bytes, ttl_seconds: int) -> None:
        self.write(key, [data], ttl_seconds)

    def get(self, key: str) -> bytes | None:
        chunks = self.read(key)
        return None if chunks is None else b"".join(chunks)


def input_key(job_id: str) -> str:
    return f"{job_id}:input"


def result_key(job_id: str) -> str:
    return f"{job_id}:result"


def report_key(video_id: str) -> str:
    """A video's report (tracks, faces per frame): too large for its record in Redis."""
    return f"{video_id}:report"


# What a video's tasks hand each other (fpg_worker.videos): its plan, each segment's detections
# and encoded part, the whole clip's tracked scan. Face boxes and anonymized pictures, encrypted
# like the rest, and removed once the video is done, failed or deleted.


def plan_key(video_id: str) -> str:
    return f"{video_id}:plan"


def scan_key(video_id: str) -> str:
    return f"{video_id}:scan"


def detections_key(video_id: str, segment: int) -> str:
    return f"{video_id}:detections-{segment}"


def part_key(video_id: str, segment: int) -> str:
    return f"{video_id}:part-{segment}"


def video_work_keys(video_id: str, segments: int) -> list[str]:
    per_segment = [
        key(video_id, segment) for segment in range(segments) for key in (detections_key, part_key)
    ]
    return [plan_key(video_id), scan_key(video_id), *per_segment]


def archive_key(batch_id: str) -> str:
    """A batch's ZIP as uploaded: its jobs read their entries from it (``batch_archives``)."""
    return f"{batch_id}:archive"
