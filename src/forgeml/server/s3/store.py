"""The object store on disk: buckets and objects as folders and files, S3's metadata in sidecars,
uploads staged and renamed into place under a per-bucket lock, multipart parts in upload folders.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from forgeml.errors import ValidationException
from forgeml.server.s3.constants import INTERNAL_FOLDER, IO_BLOCK, MAX_KEY_BYTES
from forgeml.server.s3.errors import (
    S3Error,
    _invalid_argument,
    _key_conflict,
    _no_such_bucket,
    _no_such_key,
    _no_such_upload,
    _precondition_failed,
)
from forgeml.server.s3.listing import (
    ListingPage,
    _holds_listable_key,
    _iter_listing,
    _ListingQuery,
    _sorted_entries,
)
from forgeml.server.s3.multipart import _checked_parts
from forgeml.server.s3.records import (
    ObjectInfo,
    ObjectRecord,
    PartInfo,
    _etag_matches,
    _normalized_key,
    _unquoted_etag,
)
from forgeml.storage.uri import check_key, parse_s3_uri


def _stat_identity(stat: os.stat_result) -> list[int]:
    return [stat.st_size, stat.st_mtime_ns, stat.st_ino]


def _md5_of(handle: IO[bytes]) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    handle.seek(0)
    while block := handle.read(IO_BLOCK):
        digest.update(block)
    handle.seek(0)
    return digest.hexdigest()


def _copy_range(source: IO[bytes], target: IO[bytes], start: int, length: int) -> str:
    """Copy ``length`` bytes from ``start``; returns the MD5 of what was copied."""
    digest = hashlib.md5(usedforsecurity=False)
    source.seek(start)
    remaining = length
    while remaining > 0:
        block = source.read(min(IO_BLOCK, remaining))
        if not block:
            raise S3Error(500, "InternalError", "The source object changed while it was being copied")
        digest.update(block)
        target.write(block)
        remaining -= len(block)
    return digest.hexdigest()


class LocalObjectStore:
    """Buckets and objects as folders and files under ``root``, with S3's metadata in sidecars.

    Every commit, delete and sidecar write of a bucket happens under that bucket's file lock, so
    concurrent requests (threads or server worker processes) never pair an object with another
    write's record.
    """

    def __init__(self, root: Path, region: str) -> None:
        self.root = root
        self.region = region
        internal = root / INTERNAL_FOLDER
        self._staging = internal / "staging"
        self._metadata = internal / "metadata"
        self._uploads = internal / "multipart"
        self._locks = internal / "locks"

    # -- names --------------------------------------------------------------------------------------
    @staticmethod
    def check_bucket(bucket: str) -> None:
        try:
            parse_s3_uri(f"s3://{bucket}/")
        except ValidationException as exc:
            raise S3Error(400, "InvalidBucketName", "The specified bucket is not valid.") from exc

    def bucket_path(self, bucket: str) -> Path:
        self.check_bucket(bucket)
        return self.root / bucket

    def object_path(self, bucket: str, key: str) -> Path:
        """The file behind a key; keys that would leave the bucket are refused, never resolved."""
        bucket_root = self.bucket_path(bucket)
        if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
            raise S3Error(400, "KeyTooLongError", "Your key is too long")
        try:
            check_key(key, field="key")
        except ValidationException as exc:
            raise _invalid_argument(exc.message) from exc
        return bucket_root / key

    def require_bucket(self, bucket: str) -> Path:
        path = self.bucket_path(bucket)
        if not path.is_dir():
            raise _no_such_bucket()
        return path

    def staging_file(self) -> Path:
        return self._staging / uuid.uuid4().hex

    # -- locks and sidecars -------------------------------------------------------------------------
    @contextlib.contextmanager
    def _lock(self, bucket: str) -> Iterator[None]:
        self._locks.mkdir(parents=True, exist_ok=True)
        with open(self._locks / f"{bucket}.lock", "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _sidecar(self, bucket: str, key: str) -> Path:
        digest = hashlib.sha256(_normalized_key(key).encode("utf-8", "surrogateescape")).hexdigest()
        return self._metadata / bucket / "objects" / digest[:2] / f"{digest}.json"

    def _read_record(self, bucket: str, key: str, stat: os.stat_result) -> ObjectRecord | None:
        try:
            data = json.loads(self._sidecar(bucket, key).read_text())
            if data.get("stat") != _stat_identity(stat):
                return None  # the file changed behind S3's back (a job wrote it): the record is stale
            return ObjectRecord.from_json(data["record"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write_record(self, bucket: str, key: str, stat: os.stat_result, record: ObjectRecord) -> None:
        path = self._sidecar(bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}")
        tmp.write_text(json.dumps({"stat": _stat_identity(stat), "record": record.to_json()}))
        os.replace(tmp, path)

    def describe(self, bucket: str, key: str, handle: IO[bytes], *, cache: bool = True) -> ObjectInfo:
        """The object open in ``handle``; an object without a valid record gets its MD5 ETag now.

        ``cache=False`` while the bucket's lock is held (the cache write takes that lock).
        """
        stat = os.fstat(handle.fileno())
        record = self._read_record(bucket, key, stat)
        if record is None:
            record = ObjectRecord(etag=f'"{_md5_of(handle)}"')
            if cache:
                self._cache_record(bucket, key, stat, record)
        return ObjectInfo(_normalized_key(key), stat.st_size, stat.st_mtime, record)

    def _cache_record(self, bucket: str, key: str, stat: os.stat_result, record: ObjectRecord) -> None:
        with self._lock(bucket):
            try:
                current = (self.root / bucket / key).stat()
            except OSError:
                return
            if (
                _stat_identity(current) == _stat_identity(stat)
                and self._read_record(bucket, key, current) is None
            ):
                self._write_record(bucket, key, stat, record)

    def _info_at(self, bucket: str, key: str, path: Path, *, cache: bool = True) -> ObjectInfo | None:
        try:
            with open(path, "rb") as handle:
                return self.describe(bucket, key, handle, cache=cache)
        except OSError:
            return None  # deleted between listing and reading

    # -- buckets ------------------------------------------------------------------------------------
    def list_buckets(self) -> list[tuple[str, float, str]]:
        """(name, creation time, region) of every bucket folder, by name."""
        buckets = []
        for entry in _sorted_entries(self.root, ""):
            name = entry[0].rstrip("/")
            if not entry[2]:
                continue
            try:
                self.check_bucket(name)
            except S3Error:
                continue
            buckets.append((name, *self._bucket_info(name)))
        return buckets

    def _bucket_info(self, bucket: str) -> tuple[float, str]:
        """(creation time, region); buckets a job made implicitly report their folder's time."""
        try:
            data = json.loads((self._metadata / bucket / "bucket.json").read_text())
            return float(data["created"]), str(data.get("region") or self.region)
        except (OSError, ValueError, KeyError, TypeError):
            try:
                return (self.root / bucket).stat().st_mtime, self.region
            except OSError:
                return time.time(), self.region

    def bucket_region(self, bucket: str) -> str:
        return self._bucket_info(bucket)[1]

    def create_bucket(self, bucket: str, region: str) -> None:
        path = self.bucket_path(bucket)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock(bucket):
            try:
                path.mkdir()
            except FileExistsError as exc:
                raise S3Error(
                    409,
                    "BucketAlreadyOwnedByYou",
                    "Your previous request to create the named bucket succeeded and you already own it.",
                ) from exc
            info = self._metadata / bucket / "bucket.json"
            info.parent.mkdir(parents=True, exist_ok=True)
            info.write_text(json.dumps({"created": time.time(), "region": region}))

    def delete_bucket(self, bucket: str) -> None:
        path = self.require_bucket(bucket)
        with self._lock(bucket):
            if _holds_listable_key(path, "", _ListingQuery.create("", "", "")):
                raise S3Error(409, "BucketNotEmpty", "The bucket you tried to delete is not empty")
            shutil.rmtree(path)
            shutil.rmtree(self._metadata / bucket, ignore_errors=True)
        for upload in self._uploads_of(bucket):
            shutil.rmtree(upload, ignore_errors=True)

    # -- objects ------------------------------------------------------------------------------------
    def open_object(self, bucket: str, key: str) -> tuple[IO[bytes], ObjectInfo]:
        path = self.object_path(bucket, key)
        self.require_bucket(bucket)
        if key.endswith("/"):
            raise _no_such_key()
        try:
            handle = open(path, "rb")  # noqa: SIM115 - handed to the caller, who closes it
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise _no_such_key() from exc
        try:
            return handle, self.describe(bucket, key, handle)
        except BaseException:
            handle.close()
            raise

    def head_object(self, bucket: str, key: str) -> ObjectInfo:
        handle, info = self.open_object(bucket, key)
        handle.close()
        return info

    def commit(
        self,
        bucket: str,
        key: str,
        staged: Path,
        record: ObjectRecord,
        conditions: dict[str, str] | None = None,
    ) -> ObjectInfo:
        """Move a fully written staging file into place with its record, atomically for readers."""
        path = self.object_path(bucket, key)
        bucket_root = self.bucket_path(bucket)
        stat = staged.stat()
        with self._lock(bucket):
            if not bucket_root.is_dir():
                raise _no_such_bucket()
            self._check_write_conditions(bucket, key, path, conditions or {})
            self._write_record(bucket, key, stat, record)  # first, so the object is never seen without it
            installed = self._install(staged, path, key)
            if _stat_identity(installed) != _stat_identity(stat):
                self._write_record(bucket, key, installed, record)  # copied across file systems
        return ObjectInfo(_normalized_key(key), installed.st_size, installed.st_mtime, record)

    def _check_write_conditions(self, bucket: str, key: str, path: Path, conditions: dict[str, str]) -> None:
        """``If-None-Match: *`` (create only) and ``If-Match: <etag>`` (replace only that version)."""
        if_none_match, if_match = conditions.get("if-none-match"), conditions.get("if-match")
        if if_none_match is None and if_match is None:
            return
        current = self._info_at(bucket, key, path, cache=False) if path.is_file() else None
        if (
            if_none_match is not None
            and current is not None
            and _etag_matches(if_none_match, current.record.etag)
        ):
            raise _precondition_failed()
        if if_match is not None and (current is None or not _etag_matches(if_match, current.record.etag)):
            raise _precondition_failed() if current is not None else _no_such_key()

    def _install(self, staged: Path, path: Path, key: str) -> os.stat_result:
        for _attempt in range(3):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._replace(staged, path)
                return path.stat()
            except FileNotFoundError:
                continue  # a folder on the way was pruned by a delete: make it again
            except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
                raise _key_conflict(key) from exc
        raise S3Error(500, "InternalError", "We encountered an internal error. Please try again.")

    @staticmethod
    def _replace(staged: Path, path: Path) -> None:
        try:
            os.replace(staged, path)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            # The bucket folder is on another file system: copy next to the target, then rename.
            sibling = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
            shutil.copyfile(staged, sibling)
            os.replace(sibling, path)
            staged.unlink()

    def make_folder(self, bucket: str, key: str) -> None:
        """A zero-byte ``dir/`` key: the folder itself (a file system cannot hold both)."""
        path = self.object_path(bucket, key)
        with self._lock(bucket):
            if not self.bucket_path(bucket).is_dir():
                raise _no_such_bucket()
            try:
                path.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError) as exc:
                raise _key_conflict(key) from exc

    def delete_object(self, bucket: str, key: str) -> None:
        path = self.object_path(bucket, key)
        bucket_root = self.require_bucket(bucket)
        with self._lock(bucket):
            if key.endswith("/"):
                with contextlib.suppress(OSError):
                    path.rmdir()  # an empty folder marker; a folder holding objects stays
            elif path.is_file():
                path.unlink()
                self._sidecar(bucket, key).unlink(missing_ok=True)
            self._prune(path.parent, bucket_root)

    @staticmethod
    def _prune(folder: Path, bucket_root: Path) -> None:
        """Remove folders left empty, as S3 has no folders once their last object is gone."""
        while folder != bucket_root and bucket_root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def copy_to_staging(self, source: IO[bytes], start: int, length: int) -> tuple[Path, str]:
        staged = self.staging_file()
        staged.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(staged, "wb") as target:
                md5_hex = _copy_range(source, target, start, length)
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
        return staged, md5_hex

    def list_page(self, bucket: str, query: _ListingQuery, max_keys: int) -> ListingPage:
        bucket_root = self.require_bucket(bucket)
        objects: list[ObjectInfo] = []
        prefixes: list[str] = []
        last: str | None = None
        truncated = False
        if max_keys == 0:
            return ListingPage(objects, prefixes, False, None)
        for name, path in _iter_listing(bucket_root, query):
            if len(objects) + len(prefixes) >= max_keys:
                truncated = True
                break
            if path is None:
                prefixes.append(name)
            else:
                info = self._info_at(bucket, name, path)
                if info is None:
                    continue
                objects.append(info)
            last = name
        return ListingPage(objects, prefixes, truncated, last)

    # -- multipart uploads ---------------------------------------------------------------------------
    def create_upload(self, bucket: str, key: str, template: ObjectRecord, algorithm: str | None) -> str:
        self.object_path(bucket, key)
        self.require_bucket(bucket)
        upload_id = uuid.uuid4().hex
        folder = self._uploads / upload_id
        folder.mkdir(parents=True)
        manifest = {
            "bucket": bucket,
            "key": key,
            "initiated": time.time(),
            "record": template.to_json(),
            "algorithm": algorithm,
        }
        (folder / "upload.json").write_text(json.dumps(manifest))
        return upload_id

    def upload_folder(self, bucket: str, key: str, upload_id: str) -> tuple[Path, dict[str, Any]]:
        if not re.fullmatch(r"[0-9a-f]{32}", upload_id):
            raise _no_such_upload()
        folder = self._uploads / upload_id
        try:
            manifest: dict[str, Any] = json.loads((folder / "upload.json").read_text())
        except (OSError, ValueError) as exc:
            raise _no_such_upload() from exc
        if manifest.get("bucket") != bucket or manifest.get("key") != key:
            raise _no_such_upload()
        return folder, manifest

    def _uploads_of(self, bucket: str) -> list[Path]:
        found = []
        for manifest in self._uploads.glob("*/upload.json"):
            with contextlib.suppress(OSError, ValueError):
                if json.loads(manifest.read_text()).get("bucket") == bucket:
                    found.append(manifest.parent)
        return found

    @staticmethod
    def store_part(folder: Path, number: int, staged: Path, etag: str, checksums: dict[str, str]) -> PartInfo:
        target = folder / f"part-{number:05d}"
        os.replace(staged, target)
        stat = target.stat()
        part = PartInfo(number, etag, stat.st_size, stat.st_mtime, checksums)
        info = {"etag": etag, "size": stat.st_size, "modified": stat.st_mtime, "checksums": checksums}
        tmp = folder / f".part-{number:05d}.json.{uuid.uuid4().hex}"
        tmp.write_text(json.dumps(info))
        os.replace(tmp, folder / f"part-{number:05d}.json")
        return part

    @staticmethod
    def list_parts(folder: Path) -> list[PartInfo]:
        parts = []
        for path in sorted(folder.glob("part-*.json")):
            with contextlib.suppress(OSError, ValueError, KeyError):
                data = json.loads(path.read_text())
                number = int(path.name[len("part-") : -len(".json")])
                parts.append(
                    PartInfo(
                        number, data["etag"], int(data["size"]), float(data["modified"]), data["checksums"]
                    )
                )
        return parts

    def complete_upload(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        requested: list[tuple[int, str, dict[str, str]]],
        conditions: dict[str, str],
    ) -> ObjectInfo:
        folder, manifest = self.upload_folder(bucket, key, upload_id)
        parts = _checked_parts(self.list_parts(folder), requested)
        staged = self.staging_file()
        staged.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(staged, "wb") as target:
                for part in parts:
                    with open(folder / f"part-{part.number:05d}", "rb") as source:
                        shutil.copyfileobj(source, target, IO_BLOCK)
            record = ObjectRecord.from_json(manifest["record"])
            digests = b"".join(bytes.fromhex(_unquoted_etag(part.etag)) for part in parts)
            record.etag = f'"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(parts)}"'
            record.part_sizes = [part.size for part in parts]
            info = self.commit(bucket, key, staged, record, conditions)
        finally:
            staged.unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
        return info

    def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        folder, _manifest = self.upload_folder(bucket, key, upload_id)
        shutil.rmtree(folder, ignore_errors=True)
