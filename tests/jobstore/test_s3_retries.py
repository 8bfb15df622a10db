"""The S3 store rides out a flaky object store with the production retry setting (``RETRIES``:
botocore's standard mode, backoff with jitter): a proxy between the store and the test S3 server
fails the first attempts of each request (faulty_s3.py). Fewer failures than the attempt limit
and a multipart object still goes up and comes back whole; as many as the limit and the store
raises within seconds, saying so, with nothing readable left behind."""

import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import boto3
import pytest
from botocore.exceptions import ClientError, ConnectionClosedError
from botocore.retries.standard import ExponentialBackoff

from jobstore.blobs.s3 import PART_BYTES, RETRIES, S3BlobStore

from ..conftest import S3_CREDENTIALS
from .faulty_s3 import FAULTS, FaultPlan, faulty_proxy

ATTEMPTS = 1 + RETRIES.retries["max_attempts"]  # botocore's max_attempts counts the retries only
WRITE_OPERATIONS = ("CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload")
DATA = os.urandom(PART_BYTES + 4321)  # two parts
SECONDS_TO_GIVE_UP = 10  # one request's whole backoff is under 2 s: a hang would show


def _chunks() -> Iterator[bytes]:
    return (DATA[i : i + 65536] for i in range(0, len(DATA), 65536))


@pytest.fixture
def shorter_throttling_backoff(monkeypatch) -> None:
    # Throttling waits up to 1 s x 2^retry where other faults wait up to 50 ms x 2^retry: the
    # same curve on the shorter base keeps the tests in seconds. Production keeps botocore's.
    monkeypatch.setitem(ExponentialBackoff._DEFAULT_BACKOFF_CONFIG, "throttling_base_scale", 0.05)


@pytest.fixture(params=FAULTS)
def fault(request, shorter_throttling_backoff) -> str:
    return str(request.param)


@pytest.fixture
def faulty_store(s3_endpoint, s3_store) -> Iterator[Callable[[FaultPlan], S3BlobStore]]:
    """The store's bucket reached through a proxy injecting a plan's faults."""
    with ExitStack() as proxies:

        def through(plan: FaultPlan) -> S3BlobStore:
            proxy_url = proxies.enter_context(faulty_proxy(s3_endpoint, plan))
            client = boto3.client("s3", endpoint_url=proxy_url, config=RETRIES, **S3_CREDENTIALS)
            return S3BlobStore(s3_store.bucket, s3_store.prefix, client=client)

        yield through


def test_a_multipart_object_goes_up_and_back_through_faults_below_the_attempt_limit(
    fault, faulty_store, s3_store: S3BlobStore, s3_client
):
    plan = FaultPlan(fault, ATTEMPTS - 1, frozenset({*WRITE_OPERATIONS, "GetObject"}))
    store = faulty_store(plan)

    store.write("dd01:input", _chunks(), 60)
    assert store.get("dd01:input") == DATA

    head = s3_client.head_object(Bucket=s3_store.bucket, Key="blobs/dd01:input")
    assert head["ETag"].strip('"').endswith("-2")
    assert plan.injected == {
        "CreateMultipartUpload": ATTEMPTS - 1,
        "UploadPart": 2 * (ATTEMPTS - 1),
        "CompleteMultipartUpload": ATTEMPTS - 1,
        "GetObject": ATTEMPTS - 1,
    }


@pytest.mark.parametrize(("fault", "operation"), list(zip(FAULTS, WRITE_OPERATIONS, strict=True)))
def test_a_write_failing_as_often_as_the_attempt_limit_raises_and_leaves_nothing(
    shorter_throttling_backoff, fault, operation, faulty_store, s3_store: S3BlobStore, s3_client
):
    plan = FaultPlan(fault, ATTEMPTS, frozenset({operation}))
    store = faulty_store(plan)

    started = time.monotonic()
    with pytest.raises((ClientError, ConnectionClosedError)) as raised:
        store.write("dd02:input", _chunks(), 60)
    assert time.monotonic() - started < SECONDS_TO_GIVE_UP
    _assert_says_retries_ran_out(raised.value, fault, operation)
    assert plan.injected[operation] >= ATTEMPTS  # two parts go up at once, each may use them all

    assert s3_store.get("dd02:input") is None
    assert s3_client.list_multipart_uploads(Bucket=s3_store.bucket).get("Uploads", []) == []


def test_a_read_failing_as_often_as_the_attempt_limit_raises(fault, faulty_store, s3_store):
    s3_store.write("dd03:result", _chunks(), 60)
    plan = FaultPlan(fault, ATTEMPTS, frozenset({"GetObject"}))
    store = faulty_store(plan)

    started = time.monotonic()
    with pytest.raises((ClientError, ConnectionClosedError)) as raised:
        store.read("dd03:result")
    assert time.monotonic() - started < SECONDS_TO_GIVE_UP
    _assert_says_retries_ran_out(raised.value, fault, "GetObject")
    assert plan.injected == {"GetObject": ATTEMPTS}
    assert s3_store.get("dd03:result") == DATA  # a failed read spoils nothing


def _assert_says_retries_ran_out(error: Exception, fault: str, operation: str) -> None:
    if fault == "dropped":
        assert isinstance(error, ConnectionClosedError)  # after the same retries, with no answer
    else:
        assert isinstance(error, ClientError)
        assert error.operation_name == operation
        assert f"reached max retries: {ATTEMPTS - 1}" in str(error)
