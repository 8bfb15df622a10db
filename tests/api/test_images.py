import io
from collections.abc import Iterator

import numpy as np
from PIL import Image

from blurcore.anonymize import region_mask
from blurcore.boxes import as_boxes
from blurcore.params import Shape

from ..conftest import (
    MAX_IMAGE_BYTES,
    RETENTION_SECONDS,
    animated,
    png_declaring,
    wait_for_job,
)


def _rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)


def test_post_image_round_trip_blurs_faces_and_keeps_the_rest(client, astronaut_jpeg):
    accepted = client.post("/v1/images", files={"file": ("me.jpg", astronaut_jpeg, "image/jpeg")})
    assert accepted.status_code == 202
    body = accepted.json()
    assert set(body) == {"id", "status", "status_url", "result_url"}
    assert accepted.headers["location"] == body["status_url"]

    job = wait_for_job(client, body["id"])
    assert job["status"] == "done"
    assert job["faces"] >= 1
    result = client.get(body["result_url"])
    assert result.status_code == 200
    assert result.headers["content-type"] == "image/jpeg"

    regions = as_boxes([[x, y, x + w, y + h, s] for x, y, w, h, s in job["regions"]])
    inside = region_mask(regions, 512, 512, Shape.ELLIPSE)
    difference = np.abs(_rgb(result.content) - _rgb(astronaut_jpeg)).mean(axis=2)
    assert difference[inside].mean() > 15
    assert difference[~inside].mean() < 3


def test_post_image_with_wait_answers_the_image(client, astronaut_jpeg):
    answer = client.post(
        "/v1/images?wait=30",
        files={"file": ("me.jpg", astronaut_jpeg)},
        data={"mode": "pixelate", "shape": "rectangle"},
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/jpeg"
    assert int(answer.headers["x-faces"]) >= 1
    job = client.get(f"/v1/jobs/{answer.headers['x-job-id']}").json()
    assert job["params"]["mode"] == "pixelate"
    assert job["output_sha256"] != job["input_sha256"]


def test_post_truncated_image_fails_closed(client, astronaut_jpeg):
    broken = astronaut_jpeg[: len(astronaut_jpeg) // 2]  # a sound header, half the picture
    accepted = client.post("/v1/images", files={"file": ("broken.jpg", broken)})
    assert accepted.status_code == 202
    job = wait_for_job(client, accepted.json()["id"])
    assert job["status"] == "failed"
    assert "corrupt" in job["error"] or "truncated" in job["error"]
    result = client.get(accepted.json()["result_url"])
    assert result.status_code == 409
    assert result.json()["code"] == "job_failed"


def test_post_truncated_image_with_wait_is_unprocessable(client, astronaut_jpeg):
    broken = astronaut_jpeg[: len(astronaut_jpeg) // 2]
    answer = client.post("/v1/images?wait=30", files={"file": ("broken.jpg", broken)})
    assert answer.status_code == 422
    assert answer.json()["code"] == "unprocessable_image"
    assert "truncated" in answer.json()["message"]


def test_post_unreadable_header_is_refused_at_once(client):
    broken = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
    answer = client.post("/v1/images", files={"file": ("broken.png", broken)})
    assert answer.status_code == 422
    assert answer.json()["code"] == "unreadable_image"


def test_post_animated_image_is_refused_not_cut_to_its_first_frame(client):
    answer = client.post("/v1/images", files={"file": ("wave.png", animated("PNG", frames=4))})
    assert answer.status_code == 422
    assert answer.json()["code"] == "animated_image"
    assert "4 frames" in answer.json()["message"]


def test_post_decompression_bomb_is_refused_before_decoding(client):
    answer = client.post("/v1/images", files={"file": ("bomb.png", png_declaring(50_000, 50_000))})
    assert answer.status_code == 413
    assert answer.json()["code"] == "image_too_large"
    assert "50000x50000" in answer.json()["message"]


def test_post_16_bit_rgba_at_the_pixel_limit_is_refused_for_its_memory(client):
    # Exactly the pixel limit, but at 8 bytes a pixel one worker process peaked at 3 GB on it.
    hostile = png_declaring(10_000, 10_000, bit_depth=16, colour_type=6)
    answer = client.post("/v1/images", files={"file": ("deep.png", hostile)})
    assert answer.status_code == 413
    assert answer.json()["code"] == "image_too_large"
    assert "about 2,400,000,000 bytes of memory" in answer.json()["message"]


def test_post_non_image_is_unsupported_media_type(client):
    answer = client.post("/v1/images", files={"file": ("notes.jpg", b"hello, not a photo")})
    assert answer.status_code == 415
    assert answer.json() == {
        "code": "unsupported_media_type",
        "message": "not a JPEG, PNG or WebP image",
    }


def test_post_empty_file_is_bad_request(client):
    answer = client.post("/v1/images", files={"file": ("empty.jpg", b"")})
    assert answer.status_code == 400
    assert answer.json()["code"] == "empty_file"


def test_post_out_of_range_parameter_is_validation_error(client, astronaut_jpeg):
    answer = client.post(
        "/v1/images", files={"file": ("me.jpg", astronaut_jpeg)}, data={"padding": "9"}
    )
    assert answer.status_code == 422
    body = answer.json()
    assert body["code"] == "validation_error"
    assert body["details"][0]["field"] == "padding"


def test_post_oversize_upload_is_refused(client):
    answer = client.post(
        "/v1/images", files={"file": ("huge.jpg", b"\xff\xd8\xff" + b"\x00" * MAX_IMAGE_BYTES * 2)}
    )
    assert answer.status_code == 413
    assert answer.json()["code"] == "payload_too_large"


def test_chunked_oversize_upload_is_refused_with_the_same_code(client):
    """No Content-Length to judge by: the body is counted as it streams in, and refused with
    the code a declared oversize upload gets."""
    boundary = "fpg-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="huge.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    chunk = b"\x00" * (64 * 1024)

    def chunked_body() -> Iterator[bytes]:
        yield head + b"\xff\xd8\xff"
        for _ in range(2 * MAX_IMAGE_BYTES // len(chunk)):
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    answer = client.post(
        "/v1/images",
        content=chunked_body(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert "content-length" not in answer.request.headers
    assert answer.status_code == 413
    assert answer.json()["code"] == "payload_too_large"


def test_get_unknown_job_is_not_found(client):
    answer = client.get("/v1/jobs/" + "0" * 32)
    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"


def test_delete_job_leaves_no_key_behind(client, stack, astronaut_jpeg):
    job_id = client.post("/v1/images?wait=30", files={"file": ("me.jpg", astronaut_jpeg)}).headers[
        "x-job-id"
    ]
    assert list(stack.redis.scan_iter(f"*{job_id}*"))
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 204
    assert list(stack.redis.scan_iter(f"*{job_id}*")) == []
    assert client.get(f"/v1/jobs/{job_id}").status_code == 404
    assert client.get(f"/v1/jobs/{job_id}/result").status_code == 404


def test_only_the_jobstore_keeps_results_no_celery_task_results(client, stack, astronaut_jpeg):
    # The outcome lives in the job record and the result blob; Celery's per-task results would
    # duplicate it, and its Redis backend would subscribe the gateway to a channel per task.
    answer = client.post("/v1/images?wait=30", files={"file": ("me.jpg", astronaut_jpeg)})
    assert answer.status_code == 200
    assert list(stack.redis.scan_iter("celery-task-meta-*")) == []
    assert stack.redis.pubsub_channels() == []


def test_stored_keys_expire_within_retention_and_original_is_gone(client, stack, astronaut_jpeg):
    job_id = client.post("/v1/images?wait=30", files={"file": ("me.jpg", astronaut_jpeg)}).headers[
        "x-job-id"
    ]
    keys = [key.decode() for key in stack.redis.scan_iter(f"*{job_id}*")]
    assert any(key.endswith(":result") for key in keys)
    assert not any(key.endswith(":input") for key in keys)  # the original left once done
    for key in keys:
        assert 0 < stack.redis.ttl(key) <= RETENTION_SECONDS


def test_post_json_instead_of_multipart_is_validation_error(client):
    answer = client.post("/v1/images", json={"file": "not an upload"})
    assert answer.status_code == 422
    assert answer.json()["code"] == "validation_error"


def test_a_result_streams_with_its_length_and_serves_byte_ranges(client, astronaut_jpeg):
    done = client.post("/v1/images?wait=30", files={"file": ("a.jpg", astronaut_jpeg)})
    assert done.status_code == 200
    assert int(done.headers["content-length"]) == len(done.content)
    url = f"/v1/jobs/{done.headers['x-job-id']}/result"
    whole = client.get(url)
    assert (whole.content, whole.headers["accept-ranges"]) == (done.content, "bytes")
    size = len(whole.content)

    part = client.get(url, headers={"Range": "bytes=100-1123"})
    assert part.status_code == 206
    assert part.content == whole.content[100:1124]
    assert part.headers["content-range"] == f"bytes 100-1123/{size}"
    assert int(part.headers["content-length"]) == 1024
    tail = client.get(url, headers={"Range": "bytes=-10"})
    assert (tail.status_code, tail.content) == (206, whole.content[-10:])

    beyond = client.get(url, headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416
    assert beyond.json()["code"] == "range_not_satisfiable"
    assert beyond.headers["content-range"] == f"bytes */{size}"
