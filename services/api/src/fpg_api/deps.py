"""What a route needs, as ``Annotated`` aliases, so route signatures read as plain parameters."""

from dataclasses import dataclass
from typing import Annotated

import redis
from celery import Celery
from fastapi import Depends, Request

from fpg_api.metrics import GatewayMetrics
from fpg_api.settings import GatewaySettings
from jobstore.blobstore import BlobStore
from jobstore.records import RecordStore


@dataclass
class Services:
    settings: GatewaySettings
    client: redis.Redis
    records: RecordStore
    blobs: BlobStore
    celery: Celery
    metrics: GatewayMetrics


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(_services)]
