import redis
from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from fpg_api.deps import ServicesDep
from fpg_api.errors import ApiError, error_responses
from fpg_api.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The gateway process is alive")
def alive() -> Health:
    return Health(status="ok")


@router.get("/readyz", summary="The broker is reachable", responses=error_responses(503))
def ready(services: ServicesDep) -> Readiness:
    try:
        services.redis.ping()
    except redis.RedisError as error:
        raise ApiError(503, "broker_unreachable", f"Redis is not reachable: {error}") from error
    return Readiness(status="ready", broker="reachable")


@router.get(
    "/metrics",
    summary="Prometheus metrics: requests, queue depth, job durations, faces found",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def metrics(services: ServicesDep) -> Response:
    return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)
