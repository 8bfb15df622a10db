"""Who may ask: the API key a request carries, checked against the audit database's key table.

Used twice, and so written once: by the route dependencies (``deps``), and by the intake
middleware, which must refuse an upload from its headers before reading a byte of its body.
"""

from starlette.concurrency import run_in_threadpool

from fpg_api.errors import ApiError
from fpg_audit import ApiKey, AuditStore, Role

BEARER_PREFIX = "bearer "
# Where the intake middleware leaves the key it authorized, as (role, key), in the request's
# scope state, so the route's dependency does not look the same key up a second time.
AUTHORIZED = "fpg_authorized"


def secret_from_headers(authorization: str | None, api_key: str | None) -> str | None:
    """The key a request carries in ``X-API-Key`` or ``Authorization: Bearer``, if any."""
    if api_key:
        return api_key
    if authorization and authorization.lower().startswith(BEARER_PREFIX):
        return authorization[len(BEARER_PREFIX) :].strip() or None
    return None


async def authorized_key(
    audit: AuditStore, secret: str | None, role: Role, keys_required: bool
) -> ApiKey | None:
    """The key behind ``secret`` if it may act as ``role``; None for a request without a key
    where keys are optional (local use). Raises 401 or 403 as an ``ApiError`` otherwise."""
    if not secret:
        if keys_required:
            raise ApiError(
                401,
                "unauthorized",
                "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return None
    # Only a key needs the database, and only then a worker thread.
    key = await run_in_threadpool(audit.authenticate, secret)
    if key is None:
        raise ApiError(
            401,
            "unauthorized",
            "the API key is unknown or revoked",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    if key.role is not role:
        raise ApiError(
            403, "forbidden", f"a {key.role.value} key cannot do this; it needs a {role} key"
        )
    return key
