"""Whether uploads are being worked on: live workers and the backlog.

``/readyz`` stays about the gateway alone (Redis reachable): a gateway with no live worker can
still accept and queue uploads, so taking it out of rotation would help no one. A frozen or dead
worker fleet shows here, for a submitter wondering whether its uploads will be processed, and in
``/metrics`` (the same figures, keyless like every probe) for operators and their alerts.
"""

from fastapi import APIRouter

from fpg_api.deps import ServicesDep, SubmitterDep
from fpg_api.errors import error_responses
from fpg_api.schemas import ServiceStatus
from jobstore.celery_wiring import QUEUE, VIDEO_QUEUE, queue_depths
from jobstore.heartbeats import Heartbeats

router = APIRouter(prefix="/v1", tags=["status"], responses=error_responses(401, 403))


@router.get("/status", summary="Live workers and queue depths", responses=error_responses(503))
def service_status(services: ServicesDep, _caller: SubmitterDep) -> ServiceStatus:
    workers = Heartbeats(services.redis, services.settings.key_prefix).liveness()
    waiting = queue_depths(services.redis)
    return ServiceStatus(
        workers_alive=workers.alive,
        queue_depth=waiting[QUEUE],
        video_queue_depth=waiting[VIDEO_QUEUE],
        oldest_heartbeat_age_seconds=workers.oldest_age_seconds,
        newest_heartbeat_age_seconds=workers.newest_age_seconds,
    )
