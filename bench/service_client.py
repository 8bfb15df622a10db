"""The benchmarks' HTTP client: uploads encoded before any timing, posted with ``?wait=`` so that
the answer is the anonymized image."""

import asyncio
import time
from dataclasses import dataclass
from http import HTTPStatus

import aiohttp
import httpx

from .rounds import Payload

WAIT_SECONDS = 30


HTTP_TIMEOUT_SECONDS = WAIT_SECONDS + 30


# Idle connections close on the client's side before uvicorn's 5 s keep-alive ends: otherwise a
# request sent after a library round of about 5 s can meet a connection the server is closing.
CLIENT_KEEPALIVE_SECONDS = 2


WORKER_START_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class Upload:
    """A multipart request body, encoded before any timing starts, as the library's photos are
    read into memory first: the client's own encoding is not the service's cost."""

    body: bytes
    content_type: str


def multipart_upload(payload: Payload) -> Upload:
    extension, data = payload
    request = httpx.Request("POST", "/", files={"file": (f"photo{extension}", data)})
    return Upload(request.read(), request.headers["Content-Type"])


def gateway_client(gateway_url: str) -> aiohttp.ClientSession:
    """aiohttp: it spends about 0.8 ms of CPU per upload where httpx spends about 3, on the cores
    the service being measured runs on."""
    return aiohttp.ClientSession(
        gateway_url,
        timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_SECONDS),
        connector=aiohttp.TCPConnector(keepalive_timeout=CLIENT_KEEPALIVE_SECONDS),
    )


async def wait_for_worker(client: aiohttp.ClientSession, prepared: Upload) -> None:
    """Returns once an upload is answered with its image: a worker process has its models."""
    deadline = time.monotonic() + WORKER_START_TIMEOUT_SECONDS
    while (await upload(client, prepared)).status != HTTPStatus.OK:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no worker answered within {WORKER_START_TIMEOUT_SECONDS} s")


async def post_all(
    client: aiohttp.ClientSession, uploads: list[Upload], in_flight: int
) -> tuple[float, list[str]]:
    """Seconds from the first upload to the last image received, and the job ids; the uploads
    start in the order given."""
    slots = asyncio.Semaphore(in_flight)

    async def post_in_slot(prepared: Upload) -> str:
        async with slots:
            return await post_image(client, prepared)

    started = time.perf_counter()
    job_ids = await asyncio.gather(*(post_in_slot(prepared) for prepared in uploads))
    return time.perf_counter() - started, job_ids


async def post_image(client: aiohttp.ClientSession, prepared: Upload) -> str:
    """Uploads with ``?wait=`` and returns the job id once the anonymized image is received."""
    answer = await upload(client, prepared)
    if answer.status != HTTPStatus.OK:
        raise RuntimeError(
            f"POST /v1/images?wait={WAIT_SECONDS} answered {answer.status}, "
            f"not the image: {answer.body[:200]!r}"
        )
    return answer.job_id


@dataclass(frozen=True)
class Answer:
    status: int
    job_id: str
    body: bytes  # the image, or the error


async def upload(client: aiohttp.ClientSession, prepared: Upload) -> Answer:
    async with client.post(
        "/v1/images",
        params={"wait": str(WAIT_SECONDS)},
        data=prepared.body,
        headers={"Content-Type": prepared.content_type},
    ) as response:
        body = await response.read()
        return Answer(response.status, response.headers.get("X-Job-Id", ""), body)


async def worker_job_seconds(client: aiohttp.ClientSession, job_ids: list[str]) -> list[float]:
    """How long each job took in the worker: fetch, ``process()``, store the result."""

    async def processing_seconds(job_id: str) -> float:
        async with client.get(f"/v1/jobs/{job_id}", raise_for_status=True) as response:
            return float((await response.json())["processing_seconds"])

    return list(await asyncio.gather(*(processing_seconds(job_id) for job_id in job_ids)))
