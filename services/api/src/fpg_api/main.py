"""Builds the gateway app: ``uvicorn --factory fpg_api.main:create_app``, or ``fpg-local``."""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import redis
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.formparsers import MultiPartParser

from fpg_api.body_limit import BodyLimitMiddleware
from fpg_api.deps import Services
from fpg_api.errors import install_error_handlers
from fpg_api.intake import IntakeMiddleware
from fpg_api.metrics import GatewayMetrics, RequestMetricsMiddleware
from fpg_api.routes import audit, batches, health, images, jobs, status, videos, web
from fpg_api.schemas import BatchUpload
from fpg_api.settings import GatewaySettings
from fpg_api.video_schemas import VideoUpload
from fpg_audit import AuditStore
from fpg_audit.chain import utc_now
from jobstore import audit_events
from jobstore.blobs import open_blob_store, result_key
from jobstore.celery_wiring import make_celery
from jobstore.logs import configure_json_logging
from jobstore.records import RecordStore
from jobstore.video_records import VideoRecordStore

log = logging.getLogger("fpg.gateway")
ERROR_REF = "#/components/schemas/ErrorResponse"


def _operation_id(route: APIRoute) -> str:
    """``{tag}-{function}``, so generated clients get names like ``jobs.get_job``."""
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def _streamed_form_schema(form: type[BaseModel]) -> dict[str, Any]:
    """The schema of a form a route parses itself, as it streams (routes.batches): FastAPI only
    documents the forms it parses. Its enums are in the document already (ImageUpload's)."""
    schema = form.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    return schema


def _with_one_error_schema(app: FastAPI, keys_required: bool) -> Callable[[], dict[str, Any]]:
    """FastAPI documents its own 422 body; ours answers validation errors with ErrorResponse too,
    so the document says so, and every error of every operation has the same schema. Without
    required keys (local use) a key is optional, and the document says that too (``{}``)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                routes=app.routes,
            )
            for operations in document["paths"].values():
                for operation in operations.values():
                    if not keys_required and operation.get("security"):
                        operation["security"].append({})
                    if "422" in operation["responses"]:
                        operation["responses"]["422"] = {
                            "description": "Validation Error",
                            "content": {"application/json": {"schema": {"$ref": ERROR_REF}}},
                        }
            schemas = document["components"]["schemas"]
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            schemas["BatchUpload"] = _streamed_form_schema(BatchUpload)
            schemas["VideoUpload"] = _streamed_form_schema(VideoUpload)
            app.openapi_schema = document
        return app.openapi_schema

    return openapi


def record_expiries(services: Services) -> int:
    """Audit every result whose retention ended and that the store no longer holds (its data
    key expired, so no copy of it can be read any more)."""
    expired = services.audit.record_expired_results(
        utc_now(),
        lambda job_id: services.blobs.exists(result_key(job_id)),
        audit_events.result_expired,
    )
    for record in expired:
        log.info("result expired", extra={"job_id": record.job_id, "batch_id": record.batch_id})
    return len(expired)


def sweep_expired(services: Services) -> None:
    """One retention sweep: the files of expired objects removed, expired results audited. Every
    gateway sweeps; removing what another gateway already removed is no error."""
    removed = services.blobs.remove_expired()
    if removed:
        log.info("expired blobs removed", extra={"status": f"{removed} removed"})
    record_expiries(services)


async def _sweep_expired_forever(services: Services) -> None:
    while True:
        await asyncio.sleep(services.settings.expiry_sweep_seconds)
        try:
            await run_in_threadpool(sweep_expired, services)
        except Exception:  # the store may be briefly down; the next sweep catches up
            log.warning("expiry sweep failed; retrying at the next one", exc_info=True)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    # Images stay in memory up to their limit: originals must never touch a disk unencrypted.
    # (A batch's ZIP does not go through this parser: it streams to the blob store, sealed.)
    MultiPartParser.spool_max_size = settings.max_image_bytes
    client: redis.Redis = redis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=2, socket_timeout=10
    )
    services = Services(
        settings=settings,
        redis=client,
        records=RecordStore(client, settings.key_prefix, settings.retention_seconds),
        videos=VideoRecordStore(client, settings.key_prefix, settings.retention_seconds),
        blobs=open_blob_store(settings.blob_url, client, settings.key_prefix),
        celery=make_celery(settings),
        metrics=GatewayMetrics(client, settings.key_prefix),
        audit=AuditStore.from_settings(settings),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        configure_json_logging()
        if not settings.require_api_keys:
            log.warning(
                "API keys are off (FPG_REQUIRE_API_KEYS=false): anyone who reaches this gateway "
                "may submit images and read the audit trail; turn them on outside local use"
            )
        log.info("gateway started", extra={"status": "ready"})
        sweeper = asyncio.create_task(_sweep_expired_forever(services))
        yield
        sweeper.cancel()
        client.close()
        services.audit.close()

    # Not FastAPI's own /docs, which loads Swagger UI from a CDN: this one serves it from the
    # package, so the API docs work on a site with no internet. No /redoc: ReDoc's bundle still
    # fetches its logo from a CDN.
    app = FastAPIOffline(
        redoc_url=None,
        title="Face Privacy Guard",
        version="0.1.0",
        summary="Finds every face in photos and anonymizes it, on your own premises.",
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
    )
    app.state.services = services
    install_error_handlers(app)

    for module in (images, jobs, batches, videos, audit, health, status, web):
        app.include_router(module.router)
    app.openapi = _with_one_error_schema(app, settings.require_api_keys)  # type: ignore[method-assign]

    # The last added runs first: the key and room for the upload, then the size declared, all
    # decided from the headers before the route reads a byte of the body.
    app.add_middleware(BodyLimitMiddleware, limit_for_path=settings.upload_limit)
    app.add_middleware(
        IntakeMiddleware,
        settings=settings,
        audit=services.audit,
        size_limit_for_path=settings.upload_limit,
    )
    app.add_middleware(RequestMetricsMiddleware, metrics=services.metrics)
    return app
