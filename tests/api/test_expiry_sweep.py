"""The gateway's expiry sweep against a real Redis and a real audit database: a result whose
retention ended and that Redis no longer holds gets its `result_expired` record, once."""

from fpg_api.main import create_app, record_expiries
from fpg_api.settings import GatewaySettings
from fpg_audit.chain import AuditEvent
from jobstore.blobstore import result_key

PAST = "2000-01-01T00:00:00.000000Z"


def test_record_expiries_audits_only_results_redis_no_longer_holds(redis_url, tmp_path):
    settings = GatewaySettings(
        redis_url=redis_url,
        audit_database_url=f"sqlite:///{tmp_path}/audit.db",
        key_prefix="sweep",
    )
    services = create_app(settings).state.services
    expired_job, lingering_job = "e" * 32, "f" * 32
    services.blobs.put(result_key(lingering_job), b"anonymized bytes", 60)
    services.audit.append(
        *(
            AuditEvent(event="image", job_id=job, outcome="done", result_expires_at=PAST)
            for job in (expired_job, lingering_job)
        )
    )

    assert record_expiries(services) == 1
    assert record_expiries(services) == 0
    events = [(r.event, r.job_id) for r in services.audit.records()]
    assert events[-1] == ("result_expired", expired_job)
    assert ("result_expired", lingering_job) not in events
    assert services.audit.verify().ok
