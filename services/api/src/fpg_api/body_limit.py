"""Refuse an oversize upload while it streams in, not after it has been buffered whole."""

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fpg_api.errors import ApiError, error_answer
from fpg_api.settings import UploadLimit

MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers around the file itself


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, limit_for_path: Callable[[str], UploadLimit]) -> None:
        self.app = app
        self.limit_for_path = limit_for_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path_limit = self.limit_for_path(scope["path"])
        limit = path_limit.bytes + MULTIPART_OVERHEAD
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await error_answer(_too_large(path_limit))(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise _too_large(path_limit)  # answered by the app's ApiError handler
            return message

        await self.app(scope, counting_receive, send)


def _too_large(limit: UploadLimit) -> ApiError:
    """The same answer whether the size was declared (Content-Length) or counted (chunked);
    the connection is closed rather than the rest of an oversize body read."""
    message = f"upload larger than the limit of {limit.bytes} bytes"
    close = {"Connection": "close"}
    if limit.of_videos:
        return ApiError(413, "video_too_large", message, headers=close)
    return ApiError(413, "payload_too_large", message, headers=close)
