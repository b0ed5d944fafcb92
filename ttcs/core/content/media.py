"""Media files kept by content hash, behind an interface an object store can implement.

A file's name is its SHA-256, so the same bytes are stored once, a name can never point at
other bytes, and a device can check what it downloaded. :class:`LocalMediaStore` keeps them
under ``<home>/media/<first two hex digits>/<sha256>`` and writes atomically (temporary file,
fsync, rename): a crash leaves either the whole file or none.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from ..errors import InvalidInput, MediaMissing

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class StoredMedia:
    """What the store knows about one file."""

    sha256: str
    size: int
    mime: str


class MediaStore(Protocol):
    """Content-addressed storage of media bytes.

    Methods are async so an object store (S3, MinIO) can implement them without blocking the
    hub; ``path`` may return ``None`` when the bytes do not live on a local disk, and the HTTP
    route then streams ``open()``.
    """

    async def put(self, data: bytes) -> StoredMedia:
        """Store ``data`` (idempotent) and return its hash, size and sniffed type."""
        ...

    async def put_file(self, source: Path) -> StoredMedia:
        """Store a file's bytes without reading it into memory at once."""
        ...

    async def read(self, sha256: str) -> bytes:
        """All bytes of a stored file (raises :class:`MediaMissing`)."""
        ...

    def open(self, sha256: str) -> BinaryIO:
        """A binary file object positioned at the start (blocking I/O; use in a thread)."""
        ...

    async def exists(self, sha256: str) -> bool: ...

    async def info(self, sha256: str) -> StoredMedia:
        """Size and type of a stored file (raises :class:`MediaMissing`)."""
        ...

    async def digest(self, sha256: str) -> str:
        """Re-hash the stored bytes; differs from ``sha256`` if the file was altered."""
        ...

    def path(self, sha256: str) -> Path | None:
        """The local path of a stored file, or None for remote stores."""
        ...


def check_sha256(sha256: str) -> str:
    """``sha256`` if it is 64 lower-case hex digits; refuses anything that could be a path."""
    if not _SHA256.match(sha256):
        raise InvalidInput(f"'{sha256[:80]}' is not a lower-case hex SHA-256")
    return sha256


class LocalMediaStore:
    """:class:`MediaStore` on a local directory (``<home>/media`` by default)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # re-hashing a large video on every dispatch would be wasteful: remember the digest
        # of a file as long as its inode, size and mtime stay the same
        self._digests: dict[str, tuple[tuple[int, int, int], str]] = {}

    def _path(self, sha256: str) -> Path:
        check_sha256(sha256)
        return self.root / sha256[:2] / sha256

    def path(self, sha256: str) -> Path | None:
        return self._path(sha256)

    async def put(self, data: bytes) -> StoredMedia:
        return await asyncio.to_thread(self._put_bytes, data)

    async def put_file(self, source: Path) -> StoredMedia:
        return await asyncio.to_thread(self._put_file, source)

    def _put_bytes(self, data: bytes) -> StoredMedia:
        sha = hashlib.sha256(data).hexdigest()
        target = self._path(sha)
        if not target.exists():
            self._write_atomically(target, [data])
        return StoredMedia(sha, len(data), sniff_mime(data[:64]))

    def _put_file(self, source: Path) -> StoredMedia:
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size, head = 0, b""
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out, source.open("rb") as src:
                while chunk := src.read(_CHUNK):
                    head = head or chunk[:64]
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            sha = digest.hexdigest()
            target = self._path(sha)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                os.unlink(tmp)
            else:
                os.chmod(tmp, 0o644)
                os.replace(tmp, target)
                _fsync_dir(target.parent)
        except OSError as exc:
            if os.path.exists(tmp):
                os.unlink(tmp)
            if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
                raise InvalidInput(f"cannot read {source}: {exc.strerror or exc}") from exc
            raise
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return StoredMedia(sha, size, sniff_mime(head))

    def _write_atomically(self, target: Path, chunks: list[bytes]) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as fh:
                for chunk in chunks:
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        _fsync_dir(target.parent)

    async def read(self, sha256: str) -> bytes:
        try:
            return await asyncio.to_thread(self._path(sha256).read_bytes)
        except FileNotFoundError:
            raise MediaMissing(f"media {sha256} is not in the store") from None

    def open(self, sha256: str) -> BinaryIO:
        try:
            return self._path(sha256).open("rb")
        except FileNotFoundError:
            raise MediaMissing(f"media {sha256} is not in the store") from None

    async def exists(self, sha256: str) -> bool:
        return self._path(sha256).is_file()

    async def info(self, sha256: str) -> StoredMedia:
        return await asyncio.to_thread(self._info, sha256)

    def _info(self, sha256: str) -> StoredMedia:
        try:
            with self.open(sha256) as fh:
                head = fh.read(64)
                size = os.fstat(fh.fileno()).st_size
        except FileNotFoundError:
            raise MediaMissing(f"media {sha256} is not in the store") from None
        return StoredMedia(sha256, size, sniff_mime(head))

    async def digest(self, sha256: str) -> str:
        return await asyncio.to_thread(self._digest, sha256)

    def _digest(self, sha256: str) -> str:
        path = self._path(sha256)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise MediaMissing(f"media {sha256} is not in the store") from None
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        cached = self._digests.get(sha256)
        if cached is not None and cached[0] == key:
            return cached[1]
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
        self._digests[sha256] = (key, digest.hexdigest())
        return digest.hexdigest()


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable (the directory entry, not only the file)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# Magic numbers of the formats devices play or show. Sniffing keeps the store free of
# metadata files; an object store would keep the type as object metadata instead.
_MAGIC: list[tuple[int, bytes, str]] = [
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"OggS", "audio/ogg"),
    (0, b"fLaC", "audio/flac"),
    (0, b"\x1a\x45\xdf\xa3", "video/webm"),
    (0, b"%PDF-", "application/pdf"),
]


def sniff_mime(head: bytes) -> str:
    """The media type of a file from its first bytes (``application/octet-stream`` if unknown)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    for offset, magic, mime in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return mime
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        return "video/mp4"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        # MPEG audio frame sync (MP3 without an ID3 tag); AAC ADTS also starts 0xFFF
        return "audio/aac" if head[1] & 0xF6 == 0xF0 else "audio/mpeg"
    return "application/octet-stream"
