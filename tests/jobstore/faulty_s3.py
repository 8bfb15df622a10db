"""An HTTP proxy put between an S3 client and the test S3 server that fails the first attempts of
chosen S3 operations, as a busy or flaky object store does: each distinct request (same method,
path and query, which is what a client's retry resends) is answered with a fault ``attempts``
times before it reaches the server.

The faults: ``slow-down`` (503 SlowDown, S3's throttling answer), ``unavailable`` (503
ServiceUnavailable) and ``dropped`` (the connection closed after the request, no answer)."""

import http.client
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

FAULT_ANSWERS = {
    "slow-down": (b"SlowDown", b"Please reduce your request rate."),
    "unavailable": (b"ServiceUnavailable", b"Service is unable to handle request."),
}
FAULTS = (*FAULT_ANSWERS, "dropped")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "expect"}


def s3_operation(method: str, query: dict[str, list[str]]) -> str:
    """The S3 operation a request on an object is, from its method and query, as the S3 API
    names it."""
    if method == "POST":
        return "CreateMultipartUpload" if "uploads" in query else "CompleteMultipartUpload"
    if method == "PUT":
        return "UploadPart" if "partNumber" in query else "PutObject"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in query else "DeleteObject"
    return {"GET": "GetObject", "HEAD": "HeadObject"}.get(method, method)


@dataclass
class FaultPlan:
    fault: str
    attempts: int
    operations: frozenset[str]
    injected: Counter[str] = field(default_factory=Counter)  # faults answered, per operation
    _seen: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fault_for(self, method: str, target: str) -> str | None:
        operation = s3_operation(method, parse_qs(urlsplit(target).query, keep_blank_values=True))
        if operation not in self.operations:
            return None
        with self._lock:
            self._seen[f"{method} {target}"] += 1
            if self._seen[f"{method} {target}"] > self.attempts:
                return None
            self.injected[operation] += 1
        return self.fault


def _handler(plan: FaultPlan, server_host: str, server_port: int) -> type[BaseHTTPRequestHandler]:
    class FaultyS3Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive and ``Expect: 100-continue`` as S3 has them

        def relay(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length) if length else None  # read whole, even when failing
            fault = plan.fault_for(self.command, self.path)
            if fault == "dropped":
                self.close_connection = True
            elif fault is not None:
                self.answer_fault(*FAULT_ANSWERS[fault])
            else:
                self.forward(body)

        def answer_fault(self, code: bytes, message: bytes) -> None:
            xml = b"<Error><Code>%s</Code><Message>%s</Message></Error>" % (code, message)
            self.send_response(503)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(xml)))
            self.end_headers()
            self.wfile.write(xml)

        def forward(self, body: bytes | None) -> None:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            server = http.client.HTTPConnection(server_host, server_port, timeout=30)
            try:
                server.request(self.command, self.path, body, headers)
                answer = server.getresponse()
                content = answer.read()
            finally:
                server.close()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in HOP_BY_HOP | {"content-length"}:
                    self.send_header(name, value)
            length = answer.getheader("Content-Length") if self.command == "HEAD" else None
            self.send_header("Content-Length", length or str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = relay  # noqa: N815 (http.server's names)

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet tests

    return FaultyS3Handler


@contextmanager
def faulty_proxy(server_url: str, plan: FaultPlan) -> Iterator[str]:
    """The URL of a proxy to ``server_url`` that injects ``plan``'s faults, while in the block."""
    server = urlsplit(server_url)
    assert server.hostname is not None
    assert server.port is not None
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _handler(plan, server.hostname, server.port))
    proxy.daemon_threads = True
    serving = threading.Thread(target=proxy.serve_forever, daemon=True)
    serving.start()
    try:
        yield f"http://127.0.0.1:{proxy.server_port}"
    finally:
        proxy.shutdown()
        proxy.server_close()
        serving.join()
