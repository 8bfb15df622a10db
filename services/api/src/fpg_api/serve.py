"""``fpg-gateway``: uvicorn serving the gateway, with a deadline on every request's headers.

uvicorn arms a timer only between requests (keep-alive), never while a request's headers arrive:
a client that opens connections and sends half a request line holds each one open for ever (the
hostile test found them still open after 300 s). The protocol below closes a connection whose
headers are not complete ``FPG_HEADER_TIMEOUT_SECONDS`` after its first byte or its previous
response; the body has its own deadlines (``fpg_api.intake``).
"""

import argparse
import asyncio
from collections.abc import Sequence

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from fpg_api.settings import GatewaySettings


def protocol_with_header_deadline(seconds: float) -> type[HttpToolsProtocol]:
    class HeaderDeadlineProtocol(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(seconds, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _headers_too_slow(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadlineProtocol


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="fpg-gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--timeout-keep-alive", type=int, default=5)
    parser.add_argument("--timeout-graceful-shutdown", type=int, default=None)
    parser.add_argument("--no-access-log", action="store_true")
    args = parser.parse_args(argv)
    settings = GatewaySettings()
    uvicorn.run(
        "fpg_api.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        http=protocol_with_header_deadline(settings.header_timeout_seconds),
        timeout_keep_alive=args.timeout_keep_alive,
        timeout_graceful_shutdown=args.timeout_graceful_shutdown,
        access_log=not args.no_access_log,
    )


if __name__ == "__main__":
    main()
