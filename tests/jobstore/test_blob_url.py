"""FPG_BLOB_URL names the store, a directory or a bucket; nothing else gets past the settings."""

import pytest
from pydantic import ValidationError

from jobstore.blobs import store_at
from jobstore.blobs.directory import DirectoryBlobStore
from jobstore.blobs.s3 import S3BlobStore
from jobstore.settings import StoreSettings


def test_a_file_url_is_a_directory_relative_or_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    relative = store_at("file:./var/blobs")
    absolute = store_at(f"file://{tmp_path}/elsewhere")
    assert isinstance(relative, DirectoryBlobStore)
    assert relative.root.resolve() == tmp_path / "var" / "blobs"
    assert isinstance(absolute, DirectoryBlobStore)
    assert absolute.root == tmp_path / "elsewhere"


def test_an_s3_url_is_a_bucket_and_prefix(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    store = store_at("s3://photos/fpg/blobs")
    assert isinstance(store, S3BlobStore)
    assert (store.bucket, store.prefix) == ("photos", "fpg/blobs/")


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "s3:/photos", "/var/lib/fpg", ""])
def test_anything_else_is_refused_by_the_settings(url):
    with pytest.raises(ValidationError):
        StoreSettings(blob_url=url)
