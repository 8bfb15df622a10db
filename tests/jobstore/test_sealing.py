"""Encryption at rest: what lies in the directory is not the image, and once an object's data key
is destroyed (DELETE) or expired (retention) no copy of its file can be read, even put back."""

import os
import shutil
import time
from pathlib import Path

import pytest

from jobstore.blobs.directory import DirectoryBlobStore
from jobstore.blobs.sealing import SEGMENT_BYTES, DataKeys, SealedBlobStore, UnreadableBlobError


@pytest.fixture
def sealed(directory_store: DirectoryBlobStore, data_keys: DataKeys) -> SealedBlobStore:
    return SealedBlobStore(directory_store, data_keys)


def _file_of(store: SealedBlobStore, key: str) -> Path:
    assert isinstance(store.inner, DirectoryBlobStore)
    (path,) = store.inner.root.glob(f"*/{key}")
    return path


def _restore(backup: Path, path: Path) -> None:
    """Put a copy back as a backup restore would, still within its retention on disk."""
    path.parent.mkdir(exist_ok=True)
    shutil.copy2(backup, path)
    os.utime(path, (time.time() + 600, time.time() + 600))


def _rewrite(path: Path, data: bytes) -> None:
    """Change a stored file's bytes, keeping its expiry (its modification time)."""
    expires_at = path.stat().st_mtime
    path.write_bytes(data)
    os.utime(path, (expires_at, expires_at))


def test_the_bytes_on_disk_are_not_the_image(sealed, astronaut_jpeg):
    sealed.put("bb01:input", astronaut_jpeg, 60)
    on_disk = _file_of(sealed, "bb01:input").read_bytes()
    assert not on_disk.startswith(b"\xff\xd8")
    # No stretch of the photo appears in the file, wherever it is taken from.
    for start in range(0, len(astronaut_jpeg) - 32, len(astronaut_jpeg) // 50):
        assert astronaut_jpeg[start : start + 32] not in on_disk
    assert sealed.get("bb01:input") == astronaut_jpeg


def test_after_delete_a_restored_copy_cannot_be_decrypted(sealed, astronaut_jpeg, tmp_path):
    sealed.put("bb02:result", astronaut_jpeg, 60)
    backup = tmp_path / "backup"
    shutil.copy2(_file_of(sealed, "bb02:result"), backup)
    path = _file_of(sealed, "bb02:result")

    assert sealed.destroy_keys("bb02:result") == 1
    sealed.delete("bb02:result")
    assert not path.exists()
    _restore(backup, path)

    assert sealed.inner.get("bb02:result") == backup.read_bytes()  # the ciphertext is back...
    assert sealed.get("bb02:result") is None  # ...and unreadable: its key is gone
    assert not sealed.exists("bb02:result")


def test_after_expiry_a_restored_copy_cannot_be_decrypted(sealed, astronaut_jpeg, tmp_path):
    sealed.put("bb03:result", astronaut_jpeg, 1)
    path = _file_of(sealed, "bb03:result")
    backup = tmp_path / "backup"
    shutil.copy2(path, backup)
    time.sleep(1.2)
    assert sealed.remove_expired() == 1
    _restore(backup, path)
    assert sealed.get("bb03:result") is None


def test_an_altered_object_is_refused_not_returned(sealed):
    sealed.put("bb04:result", os.urandom(1000), 60)
    path = _file_of(sealed, "bb04:result")
    altered = bytearray(path.read_bytes())
    altered[-20] ^= 1
    _rewrite(path, bytes(altered))
    chunks = sealed.read("bb04:result")
    assert chunks is not None
    with pytest.raises(UnreadableBlobError):
        b"".join(chunks)


def test_an_object_copied_under_another_name_reads_as_nothing(sealed):
    # Its key id names a key of the other object: this one's keys cannot open it.
    sealed.put("bb05:input", b"one photo", 60)
    sealed.put("bb06:input", b"another photo", 60)
    _rewrite(_file_of(sealed, "bb06:input"), _file_of(sealed, "bb05:input").read_bytes())
    assert sealed.get("bb06:input") is None


def test_an_object_cut_at_a_segment_boundary_is_refused(sealed):
    sealed.put("bb07:input", os.urandom(2 * SEGMENT_BYTES + 10), 60)
    path = _file_of(sealed, "bb07:input")
    whole = path.read_bytes()
    header = len(whole) - (2 * SEGMENT_BYTES + 10) - 3 * 16
    _rewrite(path, whole[: header + SEGMENT_BYTES + 16])  # the first segment alone
    with pytest.raises(UnreadableBlobError):
        sealed.get("bb07:input")
