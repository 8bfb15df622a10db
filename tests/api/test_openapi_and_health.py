from openapi_spec_validator import validate

ERROR_SCHEMA = "#/components/schemas/ErrorResponse"


def test_openapi_document_validates_with_clean_operation_ids(client):
    document = client.get("/openapi.json").json()
    validate(document)
    operation_ids = {
        operation["operationId"]
        for path in document["paths"].values()
        for operation in path.values()
    }
    assert {
        "images-create_image_job",
        "jobs-get_job",
        "jobs-get_job_result",
        "jobs-delete_job",
        "batches-create_batch",
        "batches-get_batch",
        "batches-get_batch_result",
        "batches-delete_batch",
        "videos-create_video",
        "videos-get_video",
        "videos-get_video_result",
        "videos-get_video_report",
        "videos-delete_video",
        "audit-list_audit_records",
        "audit-verify_audit_trail",
        "health-alive",
        "health-ready",
        "health-metrics",
        "status-service_status",
    } == operation_ids


def test_openapi_every_error_answer_uses_the_one_error_schema(client):
    document = client.get("/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")):
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": ERROR_SCHEMA}, (method, path, status)


def test_openapi_upload_is_multipart_with_typed_parameters(client):
    document = client.get("/openapi.json").json()
    body = document["paths"]["/v1/images"]["post"]["requestBody"]["content"]
    assert list(body) == ["multipart/form-data"]
    upload = document["components"]["schemas"]["ImageUpload"]["properties"]
    assert {"file", "mode", "padding", "profile"} <= set(upload)


def test_openapi_documents_the_status_schema(client):
    document = client.get("/openapi.json").json()
    answer = document["paths"]["/v1/status"]["get"]["responses"]["200"]["content"]
    assert answer["application/json"]["schema"] == {"$ref": "#/components/schemas/ServiceStatus"}
    assert set(document["components"]["schemas"]["ServiceStatus"]["required"]) == {
        "workers_alive",
        "queue_depth",
        "video_queue_depth",
        "oldest_heartbeat_age_seconds",
        "newest_heartbeat_age_seconds",
    }


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready", "broker": "reachable"}


def test_metrics_expose_requests_queue_and_jobs(client, astronaut_jpeg):
    client.post("/v1/images?wait=30", files={"file": ("me.jpg", astronaut_jpeg)})
    text = client.get("/metrics").text
    assert 'fpg_queue_depth{queue="celery"} ' in text
    assert 'fpg_queue_depth{queue="video"} ' in text
    assert 'fpg_jobs_finished_total{status="done"}' in text
    assert "fpg_faces_total " in text
    assert "fpg_job_duration_seconds_bucket" in text
    assert 'fpg_http_requests_total{method="POST",route="/v1/images",status="200"}' in text
