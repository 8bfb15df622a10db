"""The contract every blob store keeps, run against each of them (``conftest.STORES``): whole
objects or none, chunked reads, expiry, deletion and the retention sweep."""

import io
import os
import time
from collections.abc import Iterator

import pytest

from jobstore.blobs import BlobStore
from jobstore.blobs.base import CHUNK_BYTES
from jobstore.blobs.reader import open_blob

LARGE = os.urandom(3 * CHUNK_BYTES + 12345)


def test_an_object_reads_back_as_written(store: BlobStore):
    store.put("aa01:input", b"photo bytes", 60)
    assert store.get("aa01:input") == b"photo bytes"
    assert store.exists("aa01:input")


def test_a_large_object_streams_in_and_out_in_chunks(store: BlobStore):
    pieces = [LARGE[i : i + 100_000] for i in range(0, len(LARGE), 100_000)]
    store.write("aa02:input", iter(pieces), 60)
    chunks = store.read("aa02:input")
    assert chunks is not None
    received = list(chunks)
    assert b"".join(received) == LARGE
    assert max(len(chunk) for chunk in received) <= 2 * CHUNK_BYTES  # never the whole object


def test_an_empty_object_is_an_object(store: BlobStore):
    store.put("aa03:result", b"", 60)
    assert store.get("aa03:result") == b""


def test_an_absent_object_reads_as_none(store: BlobStore):
    assert store.get("aa04:input") is None
    assert store.read("aa04:input") is None
    assert not store.exists("aa04:input")


def test_a_second_write_replaces_the_object_whole(store: BlobStore):
    store.put("aa05:result", LARGE, 60)
    store.put("aa05:result", b"second", 60)
    assert store.get("aa05:result") == b"second"


def test_a_write_that_fails_half_way_leaves_the_previous_object(store: BlobStore):
    store.put("aa06:input", b"first", 60)

    def broken_upload() -> Iterator[bytes]:
        yield LARGE[:CHUNK_BYTES]
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        store.write("aa06:input", broken_upload(), 60)
    with pytest.raises(ConnectionResetError):
        store.write("aa07:input", broken_upload(), 60)
    assert store.get("aa06:input") == b"first"
    assert store.get("aa07:input") is None


def test_deleted_objects_are_gone_and_absent_ones_are_no_error(store: BlobStore):
    store.put("aa08:input", b"a", 60)
    store.put("aa08:result", b"b", 60)
    store.delete("aa08:input", "aa08:result", "aa09:input")
    store.delete()
    assert store.get("aa08:input") is None
    assert not store.exists("aa08:result")


def test_an_object_opened_before_its_deletion_is_read_whole(store: BlobStore):
    store.put("aa10:result", LARGE, 60)
    chunks = store.read("aa10:result")
    assert chunks is not None
    store.delete("aa10:result")
    assert b"".join(chunks) == LARGE


def test_expired_objects_are_unreadable_and_swept(store: BlobStore):
    store.put("aa11:input", b"short-lived", 1)
    store.put("aa11:result", b"kept", 60)
    time.sleep(1.2)
    assert store.get("aa11:input") is None
    assert not store.exists("aa11:input")
    assert store.remove_expired() == 1
    assert store.remove_expired() == 0
    assert store.get("aa11:result") == b"kept"


def test_size_is_what_a_read_gives(store: BlobStore):
    store.put("aa12:result", LARGE, 60)
    store.put("aa13:result", b"", 60)
    assert store.size("aa12:result") == len(LARGE)
    assert store.size("aa13:result") == 0
    assert store.size("aa14:result") is None


@pytest.mark.parametrize(
    "start", [1, CHUNK_BYTES - 1, CHUNK_BYTES, CHUNK_BYTES + 1, 2 * CHUNK_BYTES + 7, len(LARGE) - 1]
)
def test_a_read_from_an_offset_gives_the_rest(store: BlobStore, start: int):
    store.put("aa15:result", LARGE, 60)
    chunks = store.read("aa15:result", start)
    assert chunks is not None
    assert b"".join(chunks) == LARGE[start:]


def test_an_object_opens_as_a_seekable_file(store: BlobStore):
    store.put("aa16:input", LARGE, 60)
    opened = open_blob(store, "aa16:input")
    assert opened is not None
    with opened:
        opened.seek(-100, io.SEEK_END)
        assert opened.read() == LARGE[-100:]
        opened.seek(2 * CHUNK_BYTES - 5)
        assert opened.read(10) == LARGE[2 * CHUNK_BYTES - 5 : 2 * CHUNK_BYTES + 5]
        opened.seek(7)
        assert opened.read(3) == LARGE[7:10]
    assert open_blob(store, "aa17:input") is None
