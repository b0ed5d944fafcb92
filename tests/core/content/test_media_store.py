"""The media store keeps each file once, under its SHA-256, written atomically."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.core.content.conftest import wav_bytes
from ttcs.core.content import LocalMediaStore
from ttcs.core.errors import InvalidInput, MediaMissing


async def test_a_file_is_stored_once_under_its_sha256(tmp_path: Path) -> None:
    store = LocalMediaStore(tmp_path / "media")
    data = wav_bytes()
    first = await store.put(data)
    again = await store.put(data)
    sha = hashlib.sha256(data).hexdigest()
    assert first == again
    assert (first.sha256, first.size, first.mime) == (sha, len(data), "audio/wav")
    assert store.path(sha) == tmp_path / "media" / sha[:2] / sha
    assert await store.read(sha) == data
    assert await store.exists(sha)
    assert [p.name for p in (tmp_path / "media").rglob("*") if p.is_file()] == [sha]


async def test_a_large_file_is_copied_in_chunks_to_the_same_name(tmp_path: Path) -> None:
    store = LocalMediaStore(tmp_path / "media")
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    stored = await store.put_file(source)
    assert stored.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert stored.size == source.stat().st_size
    assert not list((tmp_path / "media").glob(".incoming-*"))  # no temporary file left
    assert await store.put(source.read_bytes()) == stored


@pytest.mark.parametrize(("head", "mime"), [
    (wav_bytes()[:64], "audio/wav"),
    (b"ID3\x04\x00" + bytes(20), "audio/mpeg"),
    (b"\xff\xfb\x90\x00" + bytes(20), "audio/mpeg"),
    (b"OggS\x00\x02" + bytes(20), "audio/ogg"),
    (b"\x89PNG\r\n\x1a\n" + bytes(20), "image/png"),
    (b"\xff\xd8\xff\xe0" + bytes(20), "image/jpeg"),
    (b"\x00\x00\x00\x18ftypmp42" + bytes(20), "video/mp4"),
    (b"\x00\x00\x00\x18ftypM4A " + bytes(20), "audio/mp4"),
    (b"hello, world" + bytes(20), "application/octet-stream"),
])
async def test_the_media_type_is_sniffed_from_the_bytes(tmp_path: Path, head: bytes,
                                                        mime: str) -> None:
    assert (await LocalMediaStore(tmp_path).put(head)).mime == mime


async def test_bytes_altered_on_disk_no_longer_hash_to_their_name(tmp_path: Path) -> None:
    store = LocalMediaStore(tmp_path)
    stored = await store.put(b"original bytes")
    assert await store.digest(stored.sha256) == stored.sha256
    path = store.path(stored.sha256)
    assert path is not None
    path.write_bytes(b"tampered bytes")
    assert await store.digest(stored.sha256) != stored.sha256
    path.unlink()
    with pytest.raises(MediaMissing):
        await store.digest(stored.sha256)


@pytest.mark.parametrize("name", ["../../etc/passwd", "ABC", "0" * 63, "0" * 64 + "/x"])
async def test_a_name_that_is_not_a_sha256_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidInput, match="not a lower-case hex SHA-256"):
        await LocalMediaStore(tmp_path).read(name)
