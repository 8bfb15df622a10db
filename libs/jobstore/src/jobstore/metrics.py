"""Job counters kept in Redis, so the gateway's /metrics covers every worker in the deployment."""

from dataclasses import dataclass

import redis

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class JobMetrics:
    finished: dict[str, int]
    faces: int
    duration_sum: float
    duration_buckets: list[tuple[float, int]]  # cumulative counts per upper bound, +Inf last


class MetricsStore:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._key = f"{prefix}:metrics"

    def record_job(self, status: str, seconds: float, faces: int) -> None:
        pipe = self._client.pipeline(transaction=False)
        pipe.hincrby(self._key, f"finished:{status}", 1)
        pipe.hincrby(self._key, "faces", faces)
        pipe.hincrbyfloat(self._key, "duration_sum", seconds)
        for bound in (*DURATION_BUCKETS, float("inf")):
            if seconds <= bound:
                pipe.hincrby(self._key, f"le:{bound}", 1)
        pipe.execute()

    def read(self) -> JobMetrics:
        raw = {_text(k): _text(v) for k, v in self._client.hgetall(self._key).items()}
        finished = {
            name.removeprefix("finished:"): int(value)
            for name, value in raw.items()
            if name.startswith("finished:")
        }
        buckets = [
            (bound, int(raw.get(f"le:{bound}", 0))) for bound in (*DURATION_BUCKETS, float("inf"))
        ]
        return JobMetrics(
            finished=finished,
            faces=int(raw.get("faces", 0)),
            duration_sum=float(raw.get("duration_sum", 0.0)),
            duration_buckets=buckets,
        )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
