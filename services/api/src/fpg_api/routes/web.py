"""The browser page at ``/``: plain HTML, one stylesheet and one JavaScript module, all served
from the package, so the page works with no access to the internet. Left out of the OpenAPI
document, which describes the API only."""

import re
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Response
from fastapi.responses import FileResponse, HTMLResponse

from fpg_api.deps import ServicesDep
from fpg_api.errors import ApiError

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "img-src 'self' blob: data:",
        "connect-src 'self'",
        "style-src 'self'",
        "script-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Small files: always revalidate, so a new release is seen at once (ETag answers 304).
    "Cache-Control": "no-cache",
}
MEDIA_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
STATIC_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*\.(css|js|svg)")

router = APIRouter(include_in_schema=False)


@cache
def _page_template() -> str:
    return (STATIC_DIR / "index.html").read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse)
def web_page(services: ServicesDep) -> HTMLResponse:
    """The upload page, with the server's limits filled in so the page can refuse an oversize
    file before uploading it."""
    settings = services.settings
    page = (
        _page_template()
        .replace("{{max_image_bytes}}", str(settings.max_image_bytes))
        .replace("{{max_batch_bytes}}", str(settings.max_batch_bytes))
        .replace("{{max_batch_entries}}", str(settings.max_batch_entries))
        .replace("{{retention_seconds}}", str(settings.retention_seconds))
    )
    return HTMLResponse(page, headers=SECURITY_HEADERS)


@router.get("/static/{name}", response_class=FileResponse)
def web_static(name: str) -> Response:
    """The page's stylesheet, script and icon; nothing outside the static folder."""
    path = STATIC_DIR / name  # checked below: a plain name, no separator, no dot-dot
    if not STATIC_NAME.fullmatch(name) or not path.is_file():
        raise ApiError(404, "not_found", f"no static file {name}")
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=SECURITY_HEADERS)
