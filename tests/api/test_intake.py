"""A hostile client against the real gateway: uploads refused from their headers, stalled and
dribbling connections closed, uploads in flight bounded. Raw sockets, because an HTTP client
would not send half a request."""

import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fpg_api.intake import UPLOAD_METHODS
from fpg_api.main import create_app
from fpg_api.settings import GatewaySettings, upload_memory
from fpg_audit import AuditStore, Role

from ..conftest import Stack, private_redis, running_stack

MIB = 1024 * 1024
BOUNDARY = "hostile"
LIMITS = {
    "FPG_REQUIRE_API_KEYS": "true",
    "FPG_HEADER_TIMEOUT_SECONDS": "2",
    "FPG_UPLOAD_IDLE_SECONDS": "2",
    "FPG_UPLOAD_GRACE_SECONDS": "1",
    "FPG_UPLOAD_MIN_BYTES_PER_SECOND": "4000",
    "FPG_MAX_UPLOADS_PER_CLIENT": "2",
    "FPG_MAX_IMAGE_BYTES": str(MIB),
    "FPG_MAX_BATCH_BYTES": str(MIB),
    "FPG_UPLOAD_MEMORY_BUDGET_BYTES": str(4 * MIB),
}


@dataclass(frozen=True)
class Gateway:
    stack: Stack
    host: str
    port: int
    submitters: tuple[str, ...]
    auditor: str


@pytest.fixture(scope="module")
def gateway(tmp_path_factory) -> Iterator[Gateway]:
    database = f"sqlite:///{tmp_path_factory.mktemp('intake')}/audit.db"
    audit = AuditStore.connect(database)
    submitters = tuple(audit.create_key(f"client-{n}", Role.SUBMITTER)[1] for n in range(3))
    _key, auditor = audit.create_key("dpo", Role.AUDITOR)
    with (
        private_redis() as redis_url,
        running_stack(
            redis_url, worker_processes=1, FPG_AUDIT_DATABASE_URL=database, **LIMITS
        ) as stack,
    ):
        host, port = stack.url.removeprefix("http://").split(":")
        yield Gateway(stack, host, int(port), submitters, auditor)
    audit.close()


def _connect(gateway: Gateway) -> socket.socket:
    connection = socket.create_connection((gateway.host, gateway.port), timeout=10)
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    return connection


def _upload_head(declared: int | None, key: str | None, path: str = "/v1/images") -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: gateway"]
    lines.append(f"Content-Type: multipart/form-data; boundary={BOUNDARY}")
    lines.append(f"Content-Length: {declared}" if declared else "Transfer-Encoding: chunked")
    if key:
        lines.append(f"Authorization: Bearer {key}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _part_head() -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()


def _answer(connection: socket.socket, within: float) -> tuple[int, bytes]:
    """The status and raw bytes of the gateway's answer, read until it closes the connection."""
    connection.settimeout(within)
    received = b""
    try:
        while chunk := connection.recv(65536):
            received += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass
    status_line = received.split(b"\r\n", 1)[0]
    return (int(status_line.split()[1]) if status_line else 0), received


def _resident_bytes(pid: int) -> int:
    resident_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def _stalled(gateway: Gateway, key: str | None, declared: int) -> socket.socket:
    """An upload that declares ``declared`` bytes and sends its first few, then nothing."""
    connection = _connect(gateway)
    connection.sendall(_upload_head(declared, key) + _part_head() + b"\xff\xd8" * 100)
    return connection


def test_an_unauthenticated_upload_is_refused_before_its_body_and_closed(gateway):
    started = time.monotonic()
    connection = _stalled(gateway, None, declared=400 * MIB)
    status, raw = _answer(connection, within=5)
    assert status == 401
    assert b'"code":"unauthorized"' in raw
    assert b"connection: close" in raw.lower()
    assert time.monotonic() - started < 3  # answered at once, not after the body


def test_a_key_of_the_wrong_role_is_refused_before_the_body(gateway):
    status, raw = _answer(_stalled(gateway, gateway.auditor, declared=MIB // 2), within=5)
    assert status == 403
    assert b'"code":"forbidden"' in raw


def test_unauthenticated_stalled_uploads_do_not_grow_the_gateway(gateway):
    """The measured attack: many large unauthenticated uploads that never finish."""
    before = _resident_bytes(gateway.stack.gateway.pid)
    connections = []
    for _ in range(8):
        connection = _connect(gateway)
        connection.sendall(_upload_head(400 * MIB, None) + _part_head())
        try:
            for _ in range(64):  # up to 16 MiB each, for as long as the gateway takes it
                connection.send(b"\0" * 256 * 1024)
        except OSError:
            pass  # refused and closed: what should happen
        connections.append(connection)
    statuses = [_answer(connection, within=5)[0] for connection in connections]
    assert statuses == [401] * 8
    assert _resident_bytes(gateway.stack.gateway.pid) - before < 32 * MIB


def test_headers_that_never_finish_are_cut_off(gateway):
    connection = _connect(gateway)
    connection.sendall(b"POST /v1/images HTTP/1.1\r\nHost: gateway\r\nContent-Ty")
    started = time.monotonic()
    _status, raw = _answer(connection, within=10)
    assert raw == b""  # closed without an answer: there is no request to answer
    assert time.monotonic() - started < 5


def test_a_body_shorter_than_declared_gets_408_after_the_idle_time(gateway):
    connection = _stalled(gateway, gateway.submitters[0], declared=MIB // 2)
    started = time.monotonic()
    status, raw = _answer(connection, within=10)
    assert status == 408
    assert b'"code":"upload_too_slow"' in raw
    assert 1.5 < time.monotonic() - started < 6


def test_a_dribbling_upload_gets_408_once_below_the_minimum_rate(gateway):
    connection = _connect(gateway)
    connection.sendall(_upload_head(MIB // 2, gateway.submitters[0]) + _part_head())
    started = time.monotonic()
    try:
        while time.monotonic() - started < 8:
            connection.send(b"\0" * 100)  # 1,000 bytes/s, under the 4,000 the gateway asks
            time.sleep(0.1)
    except OSError:
        pass
    status, raw = _answer(connection, within=5)
    assert status == 408
    assert b"bytes/s" in raw
    assert time.monotonic() - started < 6


def test_a_chunked_upload_past_the_limit_is_cut_off_after_its_413(gateway):
    connection = _connect(gateway)
    part_head = _part_head()
    connection.sendall(
        _upload_head(None, gateway.submitters[0])
        + f"{len(part_head):x}\r\n".encode()
        + part_head
        + b"\r\n"
    )
    sent = 0
    chunk = b"\0" * (64 * 1024)
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    try:
        while sent < 64 * MIB:
            connection.sendall(framed)
            sent += len(chunk)
    except OSError:
        pass
    status, raw = _answer(connection, within=5)
    assert status == 413, raw
    assert sent < 8 * MIB  # the gateway stopped reading soon after its 1 MiB limit


def test_uploads_in_flight_are_bounded_per_client_and_in_total(gateway):
    first_client, second_client, third_client = gateway.submitters
    held = [_stalled(gateway, first_client, declared=900 * 1024) for _ in range(2)]
    time.sleep(0.3)  # both admitted
    status, raw = _answer(_stalled(gateway, first_client, declared=900 * 1024), within=3)
    assert status == 429
    assert b"retry-after: 5" in raw.lower()
    # Two uploads reserve 2 x 2 x 900 KiB of the 4 MiB budget; a third client's does not fit.
    status, raw = _answer(_stalled(gateway, second_client, declared=900 * 1024), within=3)
    assert status == 503
    assert b'"code":"gateway_busy"' in raw
    for connection in held:  # refused for slowness, their reservations return
        assert _answer(connection, within=10)[0] == 408
    status, _raw = _answer(_stalled(gateway, third_client, declared=900 * 1024), within=10)
    assert status == 408  # admitted this time, then timed out like the others


def test_an_image_reserves_twice_its_size_and_a_zip_at_most_twice_the_largest_image():
    # A ZIP streams to the blob store; only one of its entries is ever in the gateway's memory.
    assert upload_memory("/v1/images", 10 * MIB, 50 * MIB) == 20 * MIB
    assert upload_memory("/v1/batches", 500 * MIB, 50 * MIB) == 100 * MIB
    assert upload_memory("/v1/batches", 1 * MIB, 50 * MIB) == 2 * MIB


def test_every_route_that_takes_a_body_is_a_submitters_upload(tmp_path):
    """The intake admits bodies as submitters' uploads; a route of another kind taking a body
    would need its own role there. (The web page's routes, left out of the document, are GETs.)"""
    app = create_app(GatewaySettings(audit_database_url=f"sqlite:///{tmp_path}/audit.db"))
    with_body = {
        path
        for path, operations in app.openapi()["paths"].items()
        if {method.upper() for method in operations} & UPLOAD_METHODS
    }
    assert with_body == {"/v1/images", "/v1/batches", "/v1/videos"}
