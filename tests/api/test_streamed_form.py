"""A multipart form received straight into a blob store (a real directory), in process: the
file part lands in the store whatever the chunking, the fields are kept, and a form that is not
one upload is refused."""

import os

import pytest
from urllib3 import encode_multipart_formdata

from fpg_api.errors import ApiError
from fpg_api.streamed_form import store_form
from jobstore.blobs.directory import DirectoryBlobStore

ARCHIVE = os.urandom(3 * 1024 * 1024 + 17)


def _chunked(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])
def test_the_file_part_is_stored_and_the_fields_kept(tmp_path, chunk):
    store = DirectoryBlobStore(tmp_path)
    body, content_type = encode_multipart_formdata(
        {"mode": "pixelate", "file": ("photos.zip", ARCHIVE), "padding": "2.0"}
    )
    form = store_form(
        iter(_chunked(body, chunk if chunk > 1 else 997)), content_type, store, "b1:archive", 60
    )
    assert (form.filename, form.file_bytes) == ("photos.zip", len(ARCHIVE))
    assert form.fields == {"mode": "pixelate", "padding": "2.0"}
    assert store.get("b1:archive") == ARCHIVE


def test_a_form_without_a_file_stores_nothing(tmp_path):
    store = DirectoryBlobStore(tmp_path)
    body, content_type = encode_multipart_formdata({"mode": "blur"})
    form = store_form(iter([body]), content_type, store, "b2:archive", 60)
    assert form.filename is None
    assert store.get("b2:archive") is None


@pytest.mark.parametrize(
    "fields",
    [
        {"file": ("a.zip", b"one"), "other": ("b.zip", b"two")},  # a second file
        {"photos": ("a.zip", b"one")},  # the file under another name
    ],
)
def test_anything_but_one_file_in_its_field_is_refused_and_nothing_kept(tmp_path, fields):
    store = DirectoryBlobStore(tmp_path)
    body, content_type = encode_multipart_formdata(fields)
    with pytest.raises(ApiError) as refused:
        store_form(iter([body]), content_type, store, "b3:archive", 60)
    assert refused.value.status == 400
    assert store.get("b3:archive") is None
    assert list(tmp_path.glob("*/*")) == []  # no temporary file left either


def test_a_body_that_is_not_multipart_is_refused(tmp_path):
    store = DirectoryBlobStore(tmp_path)
    with pytest.raises(ApiError) as refused:
        store_form(iter([b"PK\x03\x04"]), "application/zip", store, "b4:archive", 60)
    assert refused.value.status == 400
    body, content_type = encode_multipart_formdata({"file": ("a.zip", b"x")})
    with pytest.raises(ApiError):
        store_form(iter([body[:-40], b"\r\n--garbage\r\n"]), content_type, store, "b5:archive", 60)
