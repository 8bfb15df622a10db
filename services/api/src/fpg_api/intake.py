"""Admission of uploads: who may send one, how many at once, and how slowly, decided before the
body is read wherever the headers suffice.

Measured against ``make run`` before this existed: the gateway read a whole body before looking
at the key (three unauthenticated 400 MiB uploads that never finished took it from 185 MiB to
1.4 GiB), and a body that stopped arriving held its connection open indefinitely. Here:

1. The key and its role are checked from the headers; a refused request is answered at once
   and its connection closed, with no body byte read.
2. Uploads in flight are bounded per client (429) and in total by the memory they may take
   (503): an image reserves twice its declared ``Content-Length`` (or the route's size limit
   when chunked), a ZIP twice the largest image, a video twice a chunk (``settings.upload_memory``),
   until it has been answered. Both answers carry ``Retry-After``.
3. While the body streams in, a pause longer than ``upload_idle_seconds``, or an average rate
   below ``upload_min_bytes_per_second`` once ``upload_grace_seconds`` have passed, ends the
   request with 408.

Every refusal is sent by this middleware itself with ``Connection: close``, so the server stops
reading the socket once it is answered; the route, if it had started, is told the client left.
"""

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fpg_api.auth import AUTHORIZED, authorized_key, secret_from_headers
from fpg_api.errors import ApiError, error_answer
from fpg_api.settings import GatewaySettings, UploadLimit, upload_memory
from fpg_audit import AuditStore, Role

UPLOAD_METHODS = frozenset({"POST", "PUT", "PATCH"})
RETRY_AFTER_SECONDS = 5


class UploadLedger:
    """Uploads being received by this process: how many per client, and the bytes reserved."""

    def __init__(self, per_client: int, memory_budget: int) -> None:
        self.per_client = per_client
        self.memory_budget = memory_budget
        self.by_client: Counter[str] = Counter()
        self.reserved = 0

    @contextmanager
    def admitted(self, client: str, size: int) -> Iterator[None]:
        if self.by_client[client] >= self.per_client:
            raise ApiError(
                429,
                "too_many_uploads",
                f"this client already has {self.per_client} uploads in flight; "
                "wait for one to be answered",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        if self.reserved + size > self.memory_budget:
            raise ApiError(
                503,
                "gateway_busy",
                "the gateway is receiving as many uploads as its memory allows; try again shortly",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        self.by_client[client] += 1
        self.reserved += size
        try:
            yield
        finally:
            self.by_client[client] -= 1
            if not self.by_client[client]:
                del self.by_client[client]
            self.reserved -= size


class IntakeMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        settings: GatewaySettings,
        audit: AuditStore,
        size_limit_for_path: Callable[[str], UploadLimit],
    ) -> None:
        self.app = app
        self.settings = settings
        self.audit = audit
        self.size_limit_for_path = size_limit_for_path
        self.ledger = UploadLedger(
            settings.max_uploads_per_client, settings.upload_memory_budget_bytes
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UPLOAD_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
        }
        answered = _Answered(send)
        try:
            key = await authorized_key(
                self.audit,
                secret_from_headers(headers.get("authorization"), headers.get("x-api-key")),
                # Every route that takes a body is an upload (tests/api/test_intake.py holds them
                # to it).
                Role.SUBMITTER,
                self.settings.require_api_keys,
            )
            scope.setdefault("state", {})[AUTHORIZED] = (Role.SUBMITTER, key)
            client = key.id if key else _address(scope)
            # A larger declared size is refused by the body limit next (413), not counted here.
            limit = self.size_limit_for_path(scope["path"]).bytes
            size = min(_declared_size(headers) or limit, limit)
            reserved = upload_memory(scope["path"], size, self.settings.max_image_bytes)
            with self.ledger.admitted(client, reserved):
                paced = _PacedBody(receive, self.settings, answered)
                await self.app(scope, paced.receive, answered.send)
        except ApiError as error:
            await answered.refuse(error)
        except Exception:
            if not answered.refused:
                raise  # the route's own failure, not one of ours: the server answers 500


class _Answered:
    """The app's ``send``, until this middleware has refused the request itself."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.refused = False
        self.started = False

    async def send(self, message: Message) -> None:
        if self.refused:
            return  # the app is answering a request already answered (it was told we left)
        self.started = True
        await self._send(message)

    async def refuse(self, refusal: ApiError) -> None:
        if self.refused or self.started:
            return
        self.refused = True
        answer = error_answer(refusal)
        answer.headers["Connection"] = "close"  # the server stops reading this socket
        await answer({"type": "http"}, _nothing_to_receive, self._send)


async def _nothing_to_receive() -> Message:
    return {"type": "http.disconnect"}


class _PacedBody:
    """The request's ``receive``, with a deadline on every chunk and a floor on the mean rate."""

    def __init__(self, receive: Receive, settings: GatewaySettings, answered: _Answered) -> None:
        self._receive = receive
        self._settings = settings
        self._answered = answered
        self._started = time.monotonic()
        self._received = 0

    async def receive(self) -> Message:
        if self._answered.refused:
            return {"type": "http.disconnect"}
        try:
            message = await asyncio.wait_for(
                self._receive(), timeout=self._settings.upload_idle_seconds
            )
        except TimeoutError:
            return await self._too_slow(
                f"no data for {self._settings.upload_idle_seconds:g} s while receiving the upload"
            )
        self._received += len(message.get("body", b""))
        elapsed = time.monotonic() - self._started
        minimum = self._settings.upload_min_bytes_per_second
        if (
            message.get("more_body", False)
            and elapsed > self._settings.upload_grace_seconds
            and self._received < minimum * elapsed
        ):
            return await self._too_slow(
                f"the upload arrived at {self._received / elapsed:.0f} bytes/s, "
                f"below the minimum of {minimum} bytes/s"
            )
        return message

    async def _too_slow(self, reason: str) -> Message:
        await self._answered.refuse(ApiError(408, "upload_too_slow", reason))
        return {"type": "http.disconnect"}


def _declared_size(headers: dict[str, str]) -> int | None:
    declared = headers.get("content-length", "")
    return int(declared) if declared.isdigit() else None


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"
