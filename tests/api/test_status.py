"""/v1/status and /metrics count what waits in each queue apart: images in ``celery``, the steps
of videos in ``video``. A real gateway on a Redis of its own that no worker consumes, so what is
uploaded stays queued."""

from ..blurcore.video.clips import ClipSpec, make_clip
from ..conftest import private_redis, running_stack


def test_status_and_metrics_count_waiting_images_and_videos_apart(astronaut_jpeg, tmp_path):
    clip = tmp_path / "lesson.mp4"
    make_clip(clip, ClipSpec(frames=10))
    with (
        private_redis() as redis_url,
        running_stack(redis_url, worker_processes=0) as stack,
        stack.client() as client,
    ):
        for name in ("a.jpg", "b.jpg"):
            answer = client.post("/v1/images", files={"file": (name, astronaut_jpeg)})
            assert answer.status_code == 202, answer.text
        answer = client.post("/v1/videos", files={"file": ("lesson.mp4", clip.read_bytes())})
        assert answer.status_code == 202, answer.text

        status = client.get("/v1/status").json()
        assert (status["queue_depth"], status["video_queue_depth"]) == (2, 1)
        metrics = client.get("/metrics").text
        assert 'fpg_queue_depth{queue="celery"} 2.0' in metrics
        assert 'fpg_queue_depth{queue="video"} 1.0' in metrics
