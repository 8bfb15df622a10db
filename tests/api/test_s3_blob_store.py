"""The whole service on an S3-compatible bucket (FPG_BLOB_URL=s3://...): a real gateway and worker
process, the bucket on the test session's S3 server. Only sealed bytes reach the bucket, the
original goes once processed, and DELETE leaves nothing."""

import uuid

import boto3

from ..conftest import S3_CREDENTIALS, private_redis, running_stack


def test_images_go_through_a_bucket_sealed_and_are_gone_after_delete(s3_endpoint, astronaut_jpeg):
    bucket = f"fpg-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, **S3_CREDENTIALS)
    s3.create_bucket(Bucket=bucket)
    environment = {
        "FPG_BLOB_URL": f"s3://{bucket}/blobs",
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "AWS_REGION": S3_CREDENTIALS["region_name"],
        "AWS_ACCESS_KEY_ID": S3_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": S3_CREDENTIALS["aws_secret_access_key"],
    }
    with (
        private_redis() as redis_url,
        running_stack(redis_url, worker_processes=1, **environment) as stack,
        stack.client() as client,
    ):
        answer = client.post("/v1/images?wait=30", files={"file": ("a.jpg", astronaut_jpeg)})
        assert answer.status_code == 200, answer.text
        assert int(answer.headers["x-faces"]) >= 1
        job_id = answer.headers["x-job-id"]

        stored = [entry["Key"] for entry in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        assert stored == [f"blobs/{job_id}:result"]  # the original is gone
        sealed = s3.get_object(Bucket=bucket, Key=stored[0])["Body"].read()
        assert not sealed.startswith(b"\xff\xd8")
        assert answer.content not in sealed

        assert client.delete(f"/v1/jobs/{job_id}").status_code == 204
        assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
