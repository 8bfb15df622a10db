"""The gateway's retention sweep against a real Redis, a real blob directory and a real audit
database: expired blobs are removed, and a result whose retention ended and that the store no
longer holds gets its `result_expired` record, once."""

import time

import pytest

from fpg_api.deps import Services
from fpg_api.main import create_app, record_expiries, sweep_expired
from fpg_api.settings import GatewaySettings
from fpg_audit.chain import AuditEvent
from jobstore.blobs import input_key, result_key

PAST = "2000-01-01T00:00:00.000000Z"


@pytest.fixture
def services(redis_url, tmp_path) -> Services:
    settings = GatewaySettings(
        redis_url=redis_url,
        audit_database_url=f"sqlite:///{tmp_path}/audit.db",
        key_prefix=f"sweep-{time.monotonic_ns()}",
        blob_url=f"file:{tmp_path}/blobs",
    )
    built: Services = create_app(settings).state.services
    return built


def _audit_done(services: Services, *job_ids: str) -> None:
    services.audit.append(
        *(
            AuditEvent(event="image", job_id=job, outcome="done", result_expires_at=PAST)
            for job in job_ids
        )
    )


def test_record_expiries_audits_only_results_the_store_no_longer_holds(services):
    expired_job, lingering_job = "e" * 32, "f" * 32
    services.blobs.put(result_key(lingering_job), b"anonymized bytes", 60)
    _audit_done(services, expired_job, lingering_job)

    assert record_expiries(services) == 1
    assert record_expiries(services) == 0
    events = [(r.event, r.job_id) for r in services.audit.records()]
    assert events[-1] == ("result_expired", expired_job)
    assert ("result_expired", lingering_job) not in events
    assert services.audit.verify().ok


def test_the_sweep_removes_expired_blobs_and_audits_their_expiry(services, tmp_path):
    expired_job, live_job = "a" * 32, "b" * 32
    services.blobs.put(result_key(expired_job), b"anonymized bytes", 1)
    services.blobs.put(input_key(live_job), b"original bytes", 60)
    _audit_done(services, expired_job)
    time.sleep(1.2)

    sweep_expired(services)

    stored = sorted(path.name for path in (tmp_path / "blobs").glob("*/*"))
    assert stored == [input_key(live_job)]
    assert [(r.event, r.job_id) for r in services.audit.records()][-1] == (
        "result_expired",
        expired_job,
    )
