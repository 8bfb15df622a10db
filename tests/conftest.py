"""Fixtures shared by every test: the real models loaded once, a real portrait, a private Redis,
and the real stack (Redis, a Celery worker process, the gateway) started as ``make run`` does."""

import io
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis
import skimage.data
import sqlalchemy
from PIL import Image

from blurcore.pipeline import Anonymizer
from fpg_api.localstack import free_port, start_gateway, start_private_redis, start_worker, stop_all

SHARED_FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces"


@pytest.fixture(scope="session")
def anonymizer() -> Anonymizer:
    loaded = Anonymizer(threads=1)
    loaded.load()
    return loaded


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut portrait (NASA, public domain), RGB."""
    return np.ascontiguousarray(skimage.data.astronaut())


@pytest.fixture(scope="session")
def astronaut_jpeg() -> bytes:
    """scikit-image's astronaut portrait (NASA, public domain) as JPEG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(skimage.data.astronaut()).save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def shared_faces() -> Path:
    if not (SHARED_FACES / "dev" / "annotations.json").is_file():
        pytest.skip(f"evaluation data absent: {SHARED_FACES} (see its README); skipping")
    return SHARED_FACES / "dev"


def zip_of(files: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    """A ZIP holding ``files`` (path inside the ZIP -> bytes), as a user would upload one."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def with_raw_name(upload: bytes, placeholder: str, raw_name: bytes) -> bytes:
    """``upload`` with an entry's name replaced, in its local and central headers, by bytes
    zipfile will not write (a NUL, say); ``raw_name`` is as long as ``placeholder``."""
    assert len(raw_name) == len(placeholder.encode())
    return upload.replace(placeholder.encode(), raw_name)


def png_declaring(width: int, height: int, bit_depth: int = 8, colour_type: int = 2) -> bytes:
    """A tiny PNG whose header declares the given size and sample layout (colour type 2 is RGB,
    6 RGBA), with a few bytes of image data: what a decompression bomb looks like."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def decode_rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@contextmanager
def private_redis() -> Iterator[str]:
    """A Redis of our own on a free loopback port, keeping nothing on disk; its URL."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    server = start_private_redis(url)
    try:
        yield url
    finally:
        stop_all([server])


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with private_redis() as url:
        yield url


S3_CREDENTIALS = {
    "region_name": "us-east-1",
    "aws_access_key_id": "test",
    "aws_secret_access_key": "test",
}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of an S3-compatible server started for this test session: moto's standalone
    server in a process of its own (no real one installs here from PyPI or Debian)."""
    port = free_port()
    moto = Path(sys.executable).with_name("moto_server")
    server = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                break
        except OSError:
            assert server.poll() is None, "moto_server exited while starting"
            assert time.monotonic() < deadline, "moto_server did not start within 30 s"
            time.sleep(0.1)
    try:
        yield url
    finally:
        stop_all([server])


POSTGRES_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@contextmanager
def postgres_database() -> Iterator[str]:
    """A database of its own on the PostgreSQL server of this machine, dropped afterwards; the
    test is skipped, saying so, where no server answers."""
    admin = sqlalchemy.create_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
    except sqlalchemy.exc.OperationalError as error:
        admin.dispose()
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_SERVER}: {error.orig}; skipping")
    name = f"fpg_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_SERVER.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


MAX_IMAGE_BYTES = 5 * 1024 * 1024
RETENTION_SECONDS = 600


@dataclass(frozen=True)
class Stack:
    url: str
    redis: redis.Redis
    worker: subprocess.Popen[bytes] | None
    gateway: subprocess.Popen[bytes]
    audit_database_url: str
    blob_dir: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60)


@contextmanager
def running_stack(redis_url: str, worker_processes: int = 2, **settings: str) -> Iterator[Stack]:
    """A real worker process and gateway on ``redis_url``, stopped (SIGTERM) on exit; the audit
    trail in an SQLite file of its own unless ``FPG_AUDIT_DATABASE_URL`` says otherwise, and the
    blobs in a directory of their own. No worker with ``worker_processes=0``: what the gateway
    stores and queues then stays as it left it."""
    audit_dir = tempfile.TemporaryDirectory(prefix="fpg-audit-")
    blob_dir = tempfile.TemporaryDirectory(prefix="fpg-blobs-")
    env = {
        "FPG_MAX_IMAGE_BYTES": str(MAX_IMAGE_BYTES),
        "FPG_RETENTION_SECONDS": str(RETENTION_SECONDS),
        "FPG_INFERENCE_THREADS": "1",
        "FPG_AUDIT_DATABASE_URL": f"sqlite:///{audit_dir.name}/audit.db",
        "FPG_BLOB_URL": f"file:{blob_dir.name}",
        **settings,
    }
    processes = []
    try:
        worker = None
        if worker_processes:
            worker = start_worker(redis_url, processes=worker_processes, extra_env=env)
            processes.append(worker)
        port = free_port()
        gateway = start_gateway(redis_url, "127.0.0.1", port, extra_env=env)
        processes.append(gateway)
        yield Stack(
            f"http://127.0.0.1:{port}",
            redis.Redis.from_url(redis_url),
            worker,
            gateway,
            env["FPG_AUDIT_DATABASE_URL"],
            Path(blob_dir.name),
        )
    finally:
        stop_all(processes)
        audit_dir.cleanup()
        blob_dir.cleanup()


@pytest.fixture(scope="session")
def stack(redis_url: str) -> Iterator[Stack]:
    with running_stack(redis_url) as started:
        yield started


@pytest.fixture
def client(stack: Stack) -> Iterator[httpx.Client]:
    with stack.client() as http:
        yield http


def wait_for_job(client: httpx.Client, job_id: str, timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/v1/jobs/{job_id}").json()
        if body["status"] in ("done", "failed") or time.monotonic() > deadline:
            return dict(body)
        time.sleep(0.05)


def wait_for_batch(client: httpx.Client, batch_id: str, timeout: float = 90) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/v1/batches/{batch_id}").json()
        if body["finished"] or time.monotonic() > deadline:
            return dict(body)
        time.sleep(0.1)


def archive_gone(stack: Stack, batch_id: str, timeout: float = 30) -> bool:
    """Whether the batch's stored ZIP is gone within ``timeout``: its last job's worker destroys
    it (and audits that) just after marking that job finished."""
    deadline = time.monotonic() + timeout
    while list(stack.blob_dir.glob(f"*/{batch_id}:archive")):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def animated(image_format: str, frames: int) -> bytes:
    """An animated PNG or WebP of ``frames`` frames of flat grey, each a different shade."""
    stills = [Image.fromarray(np.full((32, 32, 3), 40 * n, np.uint8)) for n in range(frames)]
    buffer = io.BytesIO()
    stills[0].save(
        buffer, format=image_format, save_all=True, append_images=stills[1:], duration=100
    )
    return buffer.getvalue()
