"""What a route needs, as ``Annotated`` aliases, so route signatures read as plain parameters."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

import redis
from celery import Celery
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from fpg_api.auth import AUTHORIZED, authorized_key
from fpg_api.metrics import GatewayMetrics
from fpg_api.settings import GatewaySettings
from fpg_audit import ApiKey, AuditStore, Role
from jobstore.blobs import SealedBlobStore
from jobstore.records import RecordStore
from jobstore.video_records import VideoRecordStore


@dataclass
class Services:
    settings: GatewaySettings
    redis: redis.Redis
    records: RecordStore
    videos: VideoRecordStore
    blobs: SealedBlobStore
    celery: Celery
    metrics: GatewayMetrics
    audit: AuditStore


async def _services(request: Request) -> Services:  # async: no thread for a lookup
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(_services)]

# Either header carries a key made with `fpg-keys create`; the OpenAPI document lists both.
bearer_scheme = HTTPBearer(
    auto_error=False, description="`Authorization: Bearer <key>` (a key from `fpg-keys create`)"
)
api_key_scheme = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="The same key, in its own header."
)


@dataclass(frozen=True)
class Caller:
    """Who is asking: the key (None when keys are off and none was given) and the client's
    network address, as the gateway saw it."""

    key: ApiKey | None
    address: str | None

    @property
    def key_id(self) -> str | None:
        return None if self.key is None else self.key.id

    def owns(self, owner_key_id: str | None) -> bool:
        """A key sees only what it submitted; without keys (local use) everything is visible."""
        return self.key is None or owner_key_id == self.key.id


def _caller_with(role: Role) -> Callable[..., Awaitable[Caller]]:
    async def caller(
        request: Request,
        services: ServicesDep,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
        header_key: Annotated[str | None, Security(api_key_scheme)],
    ) -> Caller:
        secret = header_key or (bearer.credentials if bearer else None)
        address = request.client.host if request.client else None
        authorized = request.scope.get("state", {}).get(AUTHORIZED)
        if authorized is not None and authorized[0] is role:
            return Caller(authorized[1], address)  # the intake checked this request's key
        settings = services.settings
        key = await authorized_key(services.audit, secret, role, settings.require_api_keys)
        return Caller(key, address)

    return caller


SubmitterDep = Annotated[Caller, Depends(_caller_with(Role.SUBMITTER))]
AuditorDep = Annotated[Caller, Depends(_caller_with(Role.AUDITOR))]
