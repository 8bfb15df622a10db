"""Where image bytes live between gateway and worker: never inside a broker message.

The default is the same Redis as the broker, every key with a time-to-live, so a deployment needs
nothing else and originals never touch a disk. An S3-compatible store can implement ``BlobStore``.
"""

from abc import ABC, abstractmethod

import redis


class BlobStore(ABC):
    @abstractmethod
    def put(self, key: str, data: bytes, ttl_seconds: int) -> None: ...

    @abstractmethod
    def get(self, key: str) -> bytes | None: ...

    @abstractmethod
    def delete(self, *keys: str) -> None: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...


class RedisBlobStore(BlobStore):
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = f"{prefix}:blob:"

    def put(self, key: str, data: bytes, ttl_seconds: int) -> None:
        self._client.set(self._prefix + key, data, ex=ttl_seconds)

    def get(self, key: str) -> bytes | None:
        data = self._client.get(self._prefix + key)
        return data if isinstance(data, bytes) or data is None else data.encode()

    def exists(self, key: str) -> bool:
        return bool(self._client.exists(self._prefix + key))

    def delete(self, *keys: str) -> None:
        if keys:
            self._client.delete(*(self._prefix + key for key in keys))


def input_key(job_id: str) -> str:
    return f"{job_id}:input"


def result_key(job_id: str) -> str:
    return f"{job_id}:result"
