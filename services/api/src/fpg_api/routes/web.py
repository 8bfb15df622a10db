"""The browser page at ``/``: plain HTML, one stylesheet and one JavaScript module, all served
from the package, so the page works with no access to the internet. Left out of the OpenAPI
document, which describes the API only."""

import re
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Response
from fastapi.responses import FileResponse, HTMLResponse

from blurcore import AnonymizeParams, Mode, Profile
from blurcore.policy import ProtectionPolicy
from fpg_api.deps import ServicesDep
from fpg_api.errors import ApiError

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "img-src 'self' blob: data:",
        # The result player: the gateway's own URL, or a blob fetched with the API key.
        "media-src 'self' blob:",
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


def _options_within(policy: ProtectionPolicy) -> dict[str, str]:
    """The option fields' placeholders: the parameters a request that sets none would get, as
    preselected values, and the policy's bounds, so the page never offers what would be refused."""
    start = policy.unset_raised(AnonymizeParams(), chosen=())
    fields = {
        "{{padding}}": f"{start.padding:g}",
        "{{min_padding}}": f"{policy.min_padding:g}",
        "{{strength}}": f"{start.strength:g}",
        "{{min_strength}}": f"{policy.min_strength:g}",
    }
    for field, members, allowed, chosen in (
        ("profile", Profile, policy.allowed_profiles, start.profile),
        ("mode", Mode, policy.allowed_modes, start.mode),
    ):
        for member in members:
            state = " selected" if member is chosen else ""
            fields[f"{{{{option:{field}:{member.value}}}}}"] = (
                state if member in allowed else " disabled hidden"
            )
    return fields


@router.get("/", response_class=HTMLResponse)
def web_page(services: ServicesDep) -> HTMLResponse:
    """The upload page, with the server's limits filled in so the page can refuse an oversize
    file before uploading it, and its options bounded by the operator's protection policy."""
    settings = services.settings
    fields = {
        "{{max_image_bytes}}": str(settings.max_image_bytes),
        "{{max_batch_bytes}}": str(settings.max_batch_bytes),
        "{{max_batch_entries}}": str(settings.max_batch_entries),
        "{{max_video_bytes}}": str(settings.max_video_bytes),
        "{{max_video_seconds}}": f"{settings.max_video_seconds:g}",
        "{{retention_seconds}}": str(settings.retention_seconds),
        **_options_within(settings.policy),
    }
    page = _page_template()
    for placeholder, value in fields.items():
        page = page.replace(placeholder, value)
    return HTMLResponse(page, headers=SECURITY_HEADERS)


@router.get("/static/{name}", response_class=FileResponse)
def web_static(name: str) -> Response:
    """The page's stylesheet, script and icon; nothing outside the static folder."""
    path = STATIC_DIR / name  # checked below: a plain name, no separator, no dot-dot
    if not STATIC_NAME.fullmatch(name) or not path.is_file():
        raise ApiError(404, "not_found", f"no static file {name}")
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=SECURITY_HEADERS)
