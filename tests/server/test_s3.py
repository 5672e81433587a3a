"""The S3 subset, driven by the real boto3 client (path style) against the app served by uvicorn."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import importlib.util
import io
import ipaddress
import os
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import uvicorn
from boto3.s3.transfer import TransferConfig
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum

from forgeml.server.errors import PayloadHashMismatch
from forgeml.server.s3 import create_s3_app
from forgeml.service.platform import Platform
from forgeml.serving.worker import bind_socket

pytestmark = pytest.mark.timeout(120)

MiB = 1024 * 1024
CREDENTIALS = {
    "aws_access_key_id": "AKIAFORGEMLTESTKEY00",
    "aws_secret_access_key": "not-checked-without-auth",
}


def _serve(app: Any, **ssl: str) -> tuple[str, Callable[[], None]]:
    """Serve ``app`` on a free loopback port in a thread; returns its URL and a stop function."""
    sock = bind_socket("127.0.0.1", 0)
    config = uvicorn.Config(
        app, lifespan="off", log_level="warning", access_log=False, timeout_graceful_shutdown=5, **ssl
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the S3 test server did not start")
        time.sleep(0.01)
    port = sock.getsockname()[1]

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()

    return f"{'https' if ssl else 'http'}://127.0.0.1:{port}", stop


def _client(url: str, **options: Any) -> Any:
    config = Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1})
    return boto3.client(
        "s3", endpoint_url=url, region_name="us-east-1", config=config, **CREDENTIALS, **options
    )


@pytest.fixture
def platform(forgeml_home: Path) -> Platform:
    return Platform.get()


@pytest.fixture
def server(platform: Platform) -> Iterator[str]:
    url, stop = _serve(create_s3_app(platform))
    yield url
    stop()


@pytest.fixture
def s3(server: str) -> Any:
    return _client(server)


@pytest.fixture
def bucket(s3: Any) -> str:
    s3.create_bucket(Bucket="data-bucket")
    return "data-bucket"


def _error(call: Callable[[], Any]) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def _files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


# -- buckets ----------------------------------------------------------------------------------------


def test_bucket_lifecycle_and_its_errors(s3: Any, platform: Platform) -> None:
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    assert s3.create_bucket(Bucket="team-bucket")["Location"] == "/team-bucket"
    listed = s3.list_buckets()["Buckets"]
    assert [b["Name"] for b in listed] == ["team-bucket"]
    assert listed[0]["CreationDate"] >= before
    assert s3.head_bucket(Bucket="team-bucket")["BucketRegion"] == "us-east-1"
    assert s3.get_bucket_location(Bucket="team-bucket")["LocationConstraint"] is None
    assert (platform.config.local_s3_root / "team-bucket").is_dir()

    assert _error(lambda: s3.create_bucket(Bucket="team-bucket"))[:2] == ("BucketAlreadyOwnedByYou", 409)
    s3.put_object(Bucket="team-bucket", Key="x/y.txt", Body=b"1")
    assert _error(lambda: s3.delete_bucket(Bucket="team-bucket"))[:2] == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket="team-bucket", Key="x/y.txt")
    s3.delete_bucket(Bucket="team-bucket")
    assert s3.list_buckets()["Buckets"] == []
    # HEAD answers carry no body: botocore reports the bare status, as it does against S3.
    assert _error(lambda: s3.head_bucket(Bucket="team-bucket"))[:3] == ("404", 404, "Not Found")
    assert _error(lambda: s3.delete_bucket(Bucket="team-bucket"))[:2] == ("NoSuchBucket", 404)
    assert _error(lambda: s3.list_objects_v2(Bucket="team-bucket"))[:2] == ("NoSuchBucket", 404)
    assert _error(lambda: s3.put_object(Bucket="team-bucket", Key="k", Body=b"1"))[:2] == (
        "NoSuchBucket",
        404,
    )


def test_bucket_names_are_checked_and_region_constraints_kept(s3: Any) -> None:
    for name in ("Upper_Case", "ab", "bad..dots"):
        assert _error(lambda name=name: s3.create_bucket(Bucket=name))[:2] == ("InvalidBucketName", 400)
    s3.create_bucket(Bucket="west-bucket", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    assert s3.get_bucket_location(Bucket="west-bucket")["LocationConstraint"] == "us-west-2"
    assert s3.head_bucket(Bucket="west-bucket")["BucketRegion"] == "us-west-2"


def test_a_bucket_a_job_created_is_listed(s3: Any, platform: Platform) -> None:
    platform.artifacts.put_bytes(b"model", "s3://job-output/run-1/model.tar.gz")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["job-output"]
    assert s3.get_object(Bucket="job-output", Key="run-1/model.tar.gz")["Body"].read() == b"model"


# -- objects ----------------------------------------------------------------------------------------


def test_put_get_head_keep_content_type_metadata_and_checksum(s3: Any, bucket: str) -> None:
    body = b"label,f1\n1,0.5\n"
    put = s3.put_object(
        Bucket=bucket,
        Key="train/data.csv",
        Body=body,
        ContentType="text/csv",
        Metadata={"Origin": "ufo-course", "rows": "1"},
        CacheControl="no-cache",
        ContentDisposition="attachment; filename=data.csv",
    )
    assert put["ETag"] == f'"{_md5(body)}"'
    assert put["ChecksumCRC32"] == _crc32_b64(body)
    got = s3.get_object(Bucket=bucket, Key="train/data.csv", ChecksumMode="ENABLED")
    assert got["Body"].read() == body
    assert got["ContentType"] == "text/csv"
    assert got["Metadata"] == {"origin": "ufo-course", "rows": "1"}
    assert got["CacheControl"] == "no-cache"
    assert got["ContentDisposition"] == "attachment; filename=data.csv"
    assert got["ChecksumCRC32"] == _crc32_b64(body)
    assert got["ETag"] == put["ETag"]
    head = s3.head_object(Bucket=bucket, Key="train/data.csv")
    assert head["ContentLength"] == len(body)
    assert head["ETag"] == put["ETag"]
    assert head["Metadata"] == {"origin": "ufo-course", "rows": "1"}
    assert head["AcceptRanges"] == "bytes"
    raw = bytes([0, 1])
    plain = s3.put_object(Bucket=bucket, Key="raw.bin", Body=raw)
    assert s3.head_object(Bucket=bucket, Key="raw.bin")["ContentType"] == "binary/octet-stream"
    assert plain["ETag"] == f'"{_md5(raw)}"'
    overridden = s3.get_object(Bucket=bucket, Key="raw.bin", ResponseContentType="application/x-custom")
    assert overridden["ContentType"] == "application/x-custom"


def test_missing_objects_and_idempotent_delete(s3: Any, bucket: str) -> None:
    assert _error(lambda: s3.get_object(Bucket=bucket, Key="absent.txt"))[:3] == (
        "NoSuchKey",
        404,
        "The specified key does not exist.",
    )
    assert _error(lambda: s3.head_object(Bucket=bucket, Key="absent.txt"))[:2] == ("404", 404)
    s3.put_object(Bucket=bucket, Key="gone/soon.txt", Body=b"x")
    first = s3.delete_object(Bucket=bucket, Key="gone/soon.txt")
    again = s3.delete_object(Bucket=bucket, Key="gone/soon.txt")
    assert first["ResponseMetadata"]["HTTPStatusCode"] == again["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert _error(lambda: s3.get_object(Bucket=bucket, Key="gone/soon.txt"))[0] == "NoSuchKey"
    assert (
        "KeyCount" in s3.list_objects_v2(Bucket=bucket) and s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    )


def test_keys_with_spaces_and_non_ascii_round_trip(s3: Any, bucket: str, platform: Platform) -> None:
    keys = [
        "data/a b.csv",
        "data/ünïcødé + plus.txt",
        "data/100%/rate.txt",
        "data/日本語/ファイル.json",
        "data/q?x=1&y",
    ]
    for index, key in enumerate(keys):
        s3.put_object(Bucket=bucket, Key=key, Body=f"object {index}".encode())
    listed = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix="data/")["Contents"]]
    assert listed == sorted(keys, key=lambda k: k.encode())
    for index, key in enumerate(keys):
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == f"object {index}".encode()
        assert platform.artifacts.get_bytes(f"s3://{bucket}/{key}") == f"object {index}".encode()
    # The raw (not URL-encoded) listing a client gets when it does not ask for encoding-type=url.
    raw = httpx.get(f"{s3.meta.endpoint_url}/{bucket}?list-type=2&prefix=data%2Fa")
    assert "<Key>data/a b.csv</Key>" in raw.text


def test_objects_are_shared_with_the_artifact_store_both_ways(
    s3: Any, bucket: str, platform: Platform
) -> None:
    s3.put_object(Bucket=bucket, Key="train/train.csv", Body=b"1,2,3\n", Metadata={"k": "v"})
    assert platform.artifacts.get_bytes(f"s3://{bucket}/train/train.csv") == b"1,2,3\n"
    channel = platform.artifacts.list_objects(f"s3://{bucket}/")
    assert [(obj.relative_name, obj.size) for obj in channel] == [("train/train.csv", 6)]

    platform.artifacts.put_bytes(b"job output", f"s3://{bucket}/output/model.tar.gz")
    got = s3.get_object(Bucket=bucket, Key="output/model.tar.gz")
    assert got["Body"].read() == b"job output"
    assert got["ETag"] == f'"{_md5(b"job output")}"'
    assert got["ContentType"] == "binary/octet-stream"

    # A job overwriting an uploaded object: S3 sees the new bytes and their ETag, not the old record.
    time.sleep(0.01)
    platform.artifacts.put_bytes(b"rewritten by a job", f"s3://{bucket}/train/train.csv")
    head = s3.head_object(Bucket=bucket, Key="train/train.csv")
    assert head["ETag"] == f'"{_md5(b"rewritten by a job")}"'
    assert head["Metadata"] == {}
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert {item["Key"]: item["ETag"] for item in listed} == {
        "output/model.tar.gz": f'"{_md5(b"job output")}"',
        "train/train.csv": f'"{_md5(b"rewritten by a job")}"',
    }
    # Sidecars and staging live outside every bucket folder.
    assert _files_under(platform.config.local_s3_root / bucket) == {"train/train.csv", "output/model.tar.gz"}


def test_ranges(s3: Any, bucket: str) -> None:
    body = bytes(range(100))
    s3.put_object(Bucket=bucket, Key="r.bin", Body=body)
    cases = {
        "bytes=0-9": (body[:10], "bytes 0-9/100"),
        "bytes=90-": (body[90:], "bytes 90-99/100"),
        "bytes=-5": (body[95:], "bytes 95-99/100"),
        "bytes=50-1000": (body[50:], "bytes 50-99/100"),
    }
    for header, (expected, content_range) in cases.items():
        got = s3.get_object(Bucket=bucket, Key="r.bin", Range=header)
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert got["ContentRange"] == content_range
        assert got["ContentLength"] == len(expected)
        assert got["Body"].read() == expected
    assert _error(lambda: s3.get_object(Bucket=bucket, Key="r.bin", Range="bytes=100-"))[:2] == (
        "InvalidRange",
        416,
    )
    assert _error(lambda: s3.get_object(Bucket=bucket, Key="r.bin", Range="bytes=-0"))[:2] == (
        "InvalidRange",
        416,
    )
    unreadable = s3.get_object(Bucket=bucket, Key="r.bin", Range="items=0-3")
    assert unreadable["ResponseMetadata"]["HTTPStatusCode"] == 200 and unreadable["Body"].read() == body
    refused = httpx.get(f"{s3.meta.endpoint_url}/{bucket}/r.bin", headers={"Range": "bytes=200-300"})
    assert refused.status_code == 416 and refused.headers["content-range"] == "bytes */100"


def test_conditional_requests(s3: Any, bucket: str) -> None:
    etag = s3.put_object(Bucket=bucket, Key="c.txt", Body=b"v1")["ETag"]
    assert _error(lambda: s3.get_object(Bucket=bucket, Key="c.txt", IfNoneMatch=etag))[:2] == ("304", 304)
    assert _error(lambda: s3.get_object(Bucket=bucket, Key="c.txt", IfMatch='"0000"'))[:2] == (
        "PreconditionFailed",
        412,
    )
    assert s3.get_object(Bucket=bucket, Key="c.txt", IfMatch=etag)["Body"].read() == b"v1"
    future = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    assert _error(lambda: s3.get_object(Bucket=bucket, Key="c.txt", IfModifiedSince=future))[:2] == (
        "304",
        304,
    )
    assert _error(lambda: s3.put_object(Bucket=bucket, Key="c.txt", Body=b"v2", IfNoneMatch="*"))[:2] == (
        "PreconditionFailed",
        412,
    )
    assert s3.get_object(Bucket=bucket, Key="c.txt")["Body"].read() == b"v1"
    s3.put_object(Bucket=bucket, Key="new.txt", Body=b"v1", IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="new.txt")["Body"].read() == b"v1"


def test_content_md5_is_checked(s3: Any, bucket: str, platform: Platform) -> None:
    good = base64.b64encode(hashlib.md5(b"payload").digest()).decode()
    s3.put_object(Bucket=bucket, Key="ok.txt", Body=b"payload", ContentMD5=good)
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    assert _error(lambda: s3.put_object(Bucket=bucket, Key="bad.txt", Body=b"payload", ContentMD5=wrong))[
        :2
    ] == (
        "BadDigest",
        400,
    )
    assert not platform.artifacts.exists(f"s3://{bucket}/bad.txt")


def test_a_wrong_checksum_header_is_refused_and_nothing_stored(server: str, platform: Platform) -> None:
    s3 = _client(server)
    s3.create_bucket(Bucket="sums")
    bad = {"x-amz-checksum-crc32": _crc32_b64(b"something else")}
    response = httpx.put(f"{server}/sums/obj.bin", content=b"actual bytes", headers=bad)
    assert response.status_code == 400
    assert "<Code>BadDigest</Code>" in response.text
    assert "The CRC32 you specified did not match the calculated checksum." in response.text
    assert not platform.artifacts.exists("s3://sums/obj.bin")
    assert _files_under(platform.config.local_s3_root / ".forgeml" / "staging") == set()


def test_sha256_checksums_are_verified_and_crc32c_accepted_as_sent(server: str, platform: Platform) -> None:
    s3 = _client(server)
    s3.create_bucket(Bucket="algos")
    body = b"sha256 me"
    put = s3.put_object(Bucket="algos", Key="s.bin", Body=body, ChecksumAlgorithm="SHA256")
    expected = base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert put["ChecksumSHA256"] == expected
    assert s3.get_object(Bucket="algos", Key="s.bin", ChecksumMode="ENABLED")["ChecksumSHA256"] == expected
    wrong = {"x-amz-checksum-sha256": base64.b64encode(hashlib.sha256(b"no").digest()).decode()}
    assert httpx.put(f"{server}/algos/w.bin", content=body, headers=wrong).status_code == 400
    # CRC32C needs awscrt (botocore's optional accelerator); without it the value is kept unverified.
    claimed = {"x-amz-checksum-crc32c": "AAAAAA=="}
    answer = httpx.put(f"{server}/algos/c.bin", content=body, headers=claimed)
    if importlib.util.find_spec("awscrt") is None:
        assert answer.status_code == 200 and answer.headers["x-amz-checksum-crc32c"] == "AAAAAA=="
        assert platform.artifacts.get_bytes("s3://algos/c.bin") == body
    else:
        assert answer.status_code == 400 and "<Code>BadDigest</Code>" in answer.text


def test_concurrent_writers_leave_each_object_whole_with_its_own_etag(s3: Any, bucket: str) -> None:
    bodies = {f"w{index}": os.urandom(64 * 1024 + index) for index in range(12)}

    def write(name: str) -> None:
        for key in ("shared/same-key", f"own/{name}"):
            s3.put_object(Bucket=bucket, Key=key, Body=bodies[name], Metadata={"writer": name})

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(write, bodies))
    shared = s3.get_object(Bucket=bucket, Key="shared/same-key")
    content = shared["Body"].read()
    writer = shared["Metadata"]["writer"]
    assert content == bodies[writer]  # one writer's bytes, never a mix
    assert shared["ETag"] == f'"{_md5(content)}"'
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="own/")["Contents"]
    assert {item["Key"]: item["ETag"] for item in listed} == {
        f"own/{n}": f'"{_md5(b)}"' for n, b in bodies.items()
    }


def test_folder_markers_and_file_folder_conflicts(s3: Any, bucket: str, platform: Platform) -> None:
    s3.put_object(Bucket=bucket, Key="empty-folder/", Body=b"")
    assert (platform.config.local_s3_root / bucket / "empty-folder").is_dir()
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    s3.put_object(Bucket=bucket, Key="model", Body=b"a file")
    code, status, message = _error(lambda: s3.put_object(Bucket=bucket, Key="model/part", Body=b"x"))
    assert (code, status) == ("InvalidArgument", 400)
    assert "'model/part' cannot be stored" in message
    assert s3.get_object(Bucket=bucket, Key="model")["Body"].read() == b"a file"


def test_path_traversal_never_leaves_the_bucket(
    s3: Any, bucket: str, platform: Platform, forgeml_home: Path
) -> None:
    before = _files_under(forgeml_home)
    for key in ("../escape.txt", "../../outside.txt", "/absolute.txt", "a/./b.txt", "a/../../up.txt"):
        code, status, _message = _error(lambda key=key: s3.put_object(Bucket=bucket, Key=key, Body=b"x"))
        # Refused before the body is read: the answer closes the connection, so the client's next
        # request (on a new connection) is parsed cleanly.
        assert (code, status) == ("InvalidArgument", 400), key
    code, status, message = _error(lambda: s3.get_object(Bucket=bucket, Key="../data-bucket/x"))
    assert (code, status) == ("InvalidArgument", 400)
    assert "must not contain '.' or '..' segments" in message
    traversal = httpx.get(f"{s3.meta.endpoint_url}/{bucket}/%2E%2E/%2E%2E/forgeml.db")
    assert traversal.status_code == 400 and "<Code>InvalidArgument</Code>" in traversal.text
    assert _files_under(forgeml_home) - before <= {"s3/.forgeml/locks/data-bucket.lock"}
    assert not (forgeml_home / "escape.txt").exists() and not (forgeml_home / "s3" / "escape.txt").exists()


def test_an_oversized_upload_is_refused_before_its_body_is_read(server: str) -> None:
    _client(server).create_bucket(Bucket="sizes")
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            b"PUT /sizes/huge.bin HTTP/1.1\r\nHost: s3\r\nContent-Length: 6000000000\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        reply = b""
        while b"</Error>" not in reply:
            chunk = conn.recv(65536)
            if not chunk:
                break
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"connection: close" in head.lower()
    assert b"<Code>EntityTooLarge</Code>" in body


def test_long_keys_and_unsupported_operations(s3: Any, bucket: str) -> None:
    assert _error(lambda: s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"x"))[:2] == (
        "KeyTooLongError",
        400,
    )
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    for call, operation in (
        (lambda: s3.get_bucket_acl(Bucket=bucket), "GetBucketAcl"),
        (lambda: s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": []}), "PutObjectTagging"),
        (lambda: s3.list_object_versions(Bucket=bucket), "ListObjectVersions"),
        (lambda: s3.list_multipart_uploads(Bucket=bucket), "ListMultipartUploads"),
    ):
        code, status, message = _error(call)
        assert (code, status, message) == (
            "NotImplemented",
            501,
            f"forgeml's S3 subset does not implement {operation}",
        )
    not_allowed = httpx.post(f"{s3.meta.endpoint_url}/")
    assert not_allowed.status_code == 405 and "<Code>MethodNotAllowed</Code>" in not_allowed.text


# -- listing ----------------------------------------------------------------------------------------


def _put_tree(s3: Any, bucket: str, keys: list[str]) -> None:
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())


def test_list_objects_v2_prefix_delimiter_and_pagination(s3: Any, bucket: str) -> None:
    keys = [
        "a.txt", "a/1", "a/2", "a/b/3", "a-b/4", "b/5", "b/6/7", "c", "é/8", "Z", "~tilde",
    ]  # fmt: skip
    _put_tree(s3, bucket, keys)
    everything = s3.list_objects_v2(Bucket=bucket)
    assert [item["Key"] for item in everything["Contents"]] == sorted(keys, key=lambda k: k.encode())
    assert everything["KeyCount"] == len(keys) and everything["IsTruncated"] is False

    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [item["Key"] for item in top["Contents"]] == ["Z", "a.txt", "c", "~tilde"]
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["a-b/", "a/", "b/", "é/"]
    assert top["KeyCount"] == 8

    under_a = s3.list_objects_v2(Bucket=bucket, Prefix="a/", Delimiter="/")
    assert [item["Key"] for item in under_a["Contents"]] == ["a/1", "a/2"]
    assert [p["Prefix"] for p in under_a["CommonPrefixes"]] == ["a/b/"]
    partial = s3.list_objects_v2(Bucket=bucket, Prefix="a")
    assert [item["Key"] for item in partial["Contents"]] == ["a-b/4", "a.txt", "a/1", "a/2", "a/b/3"]
    assert s3.list_objects_v2(Bucket=bucket, Prefix="nothing/")["KeyCount"] == 0
    after = s3.list_objects_v2(Bucket=bucket, StartAfter="b/5")
    assert [item["Key"] for item in after["Contents"]] == ["b/6/7", "c", "~tilde", "é/8"]
    assert after["StartAfter"] == "b/5"
    assert s3.list_objects_v2(Bucket=bucket, MaxKeys=0)["IsTruncated"] is False

    first = s3.list_objects_v2(Bucket=bucket, MaxKeys=3, Delimiter="/")
    assert first["IsTruncated"] is True and first["KeyCount"] == 3
    second = s3.list_objects_v2(
        Bucket=bucket, MaxKeys=3, Delimiter="/", ContinuationToken=first["NextContinuationToken"]
    )
    assert second["ContinuationToken"] == first["NextContinuationToken"]

    paginator = s3.get_paginator("list_objects_v2")
    seen_keys: list[str] = []
    seen_prefixes: list[str] = []
    for page in paginator.paginate(Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 2}):
        assert page["KeyCount"] <= 2
        seen_keys += [item["Key"] for item in page.get("Contents", [])]
        seen_prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    assert seen_keys == ["Z", "a.txt", "c", "~tilde"]
    assert seen_prefixes == ["a-b/", "a/", "b/", "é/"]
    flat = [
        item["Key"]
        for page in paginator.paginate(Bucket=bucket, PaginationConfig={"PageSize": 4})
        for item in page["Contents"]
    ]
    assert flat == sorted(keys, key=lambda k: k.encode())
    assert _error(lambda: s3.list_objects_v2(Bucket=bucket, ContinuationToken="%%%"))[:2] == (
        "InvalidArgument",
        400,
    )


def test_list_objects_v1_markers_and_resource_filter(s3: Any, bucket: str) -> None:
    keys = [f"logs/day-{i:02d}.txt" for i in range(7)] + ["logs/old/x.txt", "other.txt"]
    _put_tree(s3, bucket, keys)
    paginator = s3.get_paginator("list_objects")
    pages = list(
        paginator.paginate(Bucket=bucket, Prefix="logs/", Delimiter="/", PaginationConfig={"PageSize": 3})
    )
    assert [item["Key"] for page in pages for item in page.get("Contents", [])] == keys[:7]
    assert [p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])] == ["logs/old/"]
    assert pages[0]["NextMarker"] == "logs/day-02.txt"
    assert "Owner" in pages[0]["Contents"][0]
    resource = boto3.resource(
        "s3",
        endpoint_url=s3.meta.endpoint_url,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
        **CREDENTIALS,
    )
    # What sagemaker's Session.list_s3_files does: Bucket.objects.filter(Prefix=...) (ListObjects v1).
    assert [obj.key for obj in resource.Bucket(bucket).objects.filter(Prefix="logs/old")] == [
        "logs/old/x.txt"
    ]


# -- copy and delete --------------------------------------------------------------------------------


def test_copy_object_keeps_or_replaces_metadata(s3: Any, bucket: str) -> None:
    s3.put_object(
        Bucket=bucket, Key="src/a b.txt", Body=b"copy me", ContentType="text/plain", Metadata={"m": "1"}
    )
    result = s3.copy_object(
        Bucket=bucket, Key="dst/copied.txt", CopySource={"Bucket": bucket, "Key": "src/a b.txt"}
    )
    assert result["CopyObjectResult"]["ETag"] == f'"{_md5(b"copy me")}"'
    copied = s3.get_object(Bucket=bucket, Key="dst/copied.txt")
    assert (copied["Body"].read(), copied["ContentType"], copied["Metadata"]) == (
        b"copy me",
        "text/plain",
        {"m": "1"},
    )
    s3.copy_object(
        Bucket=bucket,
        Key="dst/copied.txt",
        CopySource=f"{bucket}/src/a b.txt",
        MetadataDirective="REPLACE",
        ContentType="application/json",
        Metadata={"n": "2"},
    )
    replaced = s3.head_object(Bucket=bucket, Key="dst/copied.txt")
    assert (replaced["ContentType"], replaced["Metadata"]) == ("application/json", {"n": "2"})
    code, status, message = _error(
        lambda: s3.copy_object(
            Bucket=bucket, Key="src/a b.txt", CopySource={"Bucket": bucket, "Key": "src/a b.txt"}
        )
    )
    assert (code, status) == ("InvalidRequest", 400) and "copy an object to itself" in message
    missing = {"Bucket": bucket, "Key": "src/none"}
    assert _error(lambda: s3.copy_object(Bucket=bucket, Key="x", CopySource=missing))[:2] == (
        "NoSuchKey",
        404,
    )
    other = {"Bucket": "no-such-bucket", "Key": "k"}
    assert _error(lambda: s3.copy_object(Bucket=bucket, Key="x", CopySource=other))[:2] == (
        "NoSuchBucket",
        404,
    )
    assert _error(
        lambda: s3.copy_object(
            Bucket=bucket,
            Key="x",
            CopySource={"Bucket": bucket, "Key": "src/a b.txt"},
            CopySourceIfMatch='"nope"',
        )
    )[:2] == ("PreconditionFailed", 412)


def test_delete_objects_quiet_and_with_errors(s3: Any, bucket: str, platform: Platform) -> None:
    _put_tree(s3, bucket, ["d/1", "d/2", "d/3"])
    result = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "d/1"}, {"Key": "d/never-existed"}, {"Key": "../outside"}]}
    )
    assert sorted(item["Key"] for item in result["Deleted"]) == ["d/1", "d/never-existed"]
    assert [(e["Key"], e["Code"]) for e in result["Errors"]] == [("../outside", "InvalidArgument")]
    quiet = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "d/2"}, {"Key": "d/3"}], "Quiet": True}
    )
    assert "Deleted" not in quiet and "Errors" not in quiet
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    assert not (platform.config.local_s3_root / bucket / "d").exists()  # no empty folders left behind


# -- multipart --------------------------------------------------------------------------------------


def test_upload_file_download_file_and_managed_copy_of_20_mib(
    s3: Any, bucket: str, tmp_path: Path, platform: Platform
) -> None:
    data = os.urandom(20 * MiB)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    config = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB)
    s3.upload_file(str(source), bucket, "big/blob.bin", Config=config)
    part_md5s = b"".join(hashlib.md5(data[i : i + 8 * MiB]).digest() for i in range(0, len(data), 8 * MiB))
    expected_etag = f'"{hashlib.md5(part_md5s).hexdigest()}-3"'
    head = s3.head_object(Bucket=bucket, Key="big/blob.bin")
    assert (head["ETag"], head["ContentLength"]) == (expected_etag, len(data))
    assert platform.artifacts.get_bytes(f"s3://{bucket}/big/blob.bin") == data

    target = tmp_path / "back.bin"
    s3.download_file(bucket, "big/blob.bin", str(target), Config=config)
    assert target.read_bytes() == data
    part_two = s3.get_object(Bucket=bucket, Key="big/blob.bin", PartNumber=2)
    assert part_two["ContentRange"] == f"bytes {8 * MiB}-{16 * MiB - 1}/{len(data)}"
    assert part_two["PartsCount"] == 3

    s3.copy(
        {"Bucket": bucket, "Key": "big/blob.bin"}, bucket, "big/copy.bin", Config=config
    )  # UploadPartCopy
    assert platform.artifacts.get_bytes(f"s3://{bucket}/big/copy.bin") == data
    resource = boto3.resource(
        "s3",
        endpoint_url=s3.meta.endpoint_url,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
        **CREDENTIALS,
    )
    buffer = io.BytesIO()
    resource.Bucket(bucket).download_fileobj("big/copy.bin", buffer, Config=config)
    assert buffer.getvalue() == data
    assert _files_under(platform.config.local_s3_root / ".forgeml" / "multipart") == set()


def test_low_level_multipart_rules(s3: Any, bucket: str, platform: Platform) -> None:
    upload = s3.create_multipart_upload(
        Bucket=bucket, Key="mp/obj", ContentType="text/plain", Metadata={"a": "b"}
    )
    upload_id = upload["UploadId"]
    big, small = b"x" * (5 * MiB), b"tail"
    one = s3.upload_part(Bucket=bucket, Key="mp/obj", UploadId=upload_id, PartNumber=1, Body=big)
    two = s3.upload_part(Bucket=bucket, Key="mp/obj", UploadId=upload_id, PartNumber=2, Body=small)
    assert one["ETag"] == f'"{_md5(big)}"' and one["ChecksumCRC32"] == _crc32_b64(big)
    parts = s3.list_parts(Bucket=bucket, Key="mp/obj", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in parts] == [
        (1, len(big), one["ETag"]),
        (2, 4, two["ETag"]),
    ]
    assert not platform.artifacts.exists(f"s3://{bucket}/mp/obj")  # nothing visible before completion

    def complete(parts: list[dict[str, Any]]) -> Any:
        return s3.complete_multipart_upload(
            Bucket=bucket, Key="mp/obj", UploadId=upload_id, MultipartUpload={"Parts": parts}
        )

    assert _error(lambda: complete([{"PartNumber": 1, "ETag": '"bad"'}]))[:2] == ("InvalidPart", 400)
    reversed_parts = [{"PartNumber": 2, "ETag": two["ETag"]}, {"PartNumber": 1, "ETag": one["ETag"]}]
    assert _error(lambda: complete(reversed_parts))[:2] == ("InvalidPartOrder", 400)
    done = complete([{"PartNumber": 1, "ETag": one["ETag"]}, {"PartNumber": 2, "ETag": two["ETag"]}])
    expected = f'"{hashlib.md5(hashlib.md5(big).digest() + hashlib.md5(small).digest()).hexdigest()}-2"'
    assert (done["ETag"], done["Bucket"], done["Key"]) == (expected, bucket, "mp/obj")
    assert done["Location"].endswith(f"/{bucket}/mp/obj")
    got = s3.get_object(Bucket=bucket, Key="mp/obj")
    assert (got["Body"].read(), got["ContentType"], got["Metadata"]) == (
        big + small,
        "text/plain",
        {"a": "b"},
    )
    assert _error(lambda: s3.list_parts(Bucket=bucket, Key="mp/obj", UploadId=upload_id))[:2] == (
        "NoSuchUpload",
        404,
    )

    second = s3.create_multipart_upload(Bucket=bucket, Key="mp/small")["UploadId"]
    p1 = s3.upload_part(Bucket=bucket, Key="mp/small", UploadId=second, PartNumber=1, Body=b"too small")
    p2 = s3.upload_part(Bucket=bucket, Key="mp/small", UploadId=second, PartNumber=2, Body=b"end")
    assert _error(
        lambda: s3.complete_multipart_upload(
            Bucket=bucket,
            Key="mp/small",
            UploadId=second,
            MultipartUpload={
                "Parts": [{"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 2, "ETag": p2["ETag"]}]
            },
        )
    )[:2] == ("EntityTooSmall", 400)
    s3.abort_multipart_upload(Bucket=bucket, Key="mp/small", UploadId=second)
    assert _error(lambda: s3.abort_multipart_upload(Bucket=bucket, Key="mp/small", UploadId=second))[:2] == (
        "NoSuchUpload",
        404,
    )
    assert _error(
        lambda: s3.upload_part(Bucket=bucket, Key="mp/small", UploadId="../../etc", PartNumber=1, Body=b"x")
    )[:2] == ("NoSuchUpload", 404)
    assert not platform.artifacts.exists(f"s3://{bucket}/mp/small")


# -- bodies the way other clients send them ---------------------------------------------------------


def _aws_chunked(data: bytes, *, chunk_size: int) -> bytes:
    """The body botocore sends over TLS: aws-chunked framing with a CRC32 trailer."""
    wrapper = AwsChunkedWrapper(
        io.BytesIO(data),
        checksum_cls=Crc32Checksum,
        checksum_name="x-amz-checksum-crc32",
        chunk_size=chunk_size,
    )
    return wrapper.read()


def _chunked_headers(data: bytes, payload: str) -> dict[str, str]:
    return {
        "content-encoding": "aws-chunked",
        "x-amz-content-sha256": payload,
        "x-amz-decoded-content-length": str(len(data)),
        "x-amz-trailer": "x-amz-checksum-crc32",
    }


def test_aws_chunked_bodies_with_trailing_checksums(server: str, platform: Platform) -> None:
    s3 = _client(server)
    s3.create_bucket(Bucket="chunky")
    data = os.urandom(300_000)
    headers = _chunked_headers(data, "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    response = httpx.put(
        f"{server}/chunky/unsigned.bin", content=_aws_chunked(data, chunk_size=65536), headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-amz-checksum-crc32"] == _crc32_b64(data)
    assert response.headers["etag"] == f'"{_md5(data)}"'
    assert platform.artifacts.get_bytes("s3://chunky/unsigned.bin") == data
    assert s3.head_object(Bucket="chunky", Key="unsigned.bin").get("ContentEncoding") is None

    # Per-chunk signatures (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) frame the same way, with ";chunk-signature=".
    signed = (
        b"".join(
            b"%x;chunk-signature=%s\r\n%s\r\n" % (len(part), b"0" * 64, part)
            for part in (data[:100_000], data[100_000:])
        )
        + b"0;chunk-signature="
        + b"0" * 64
        + b"\r\n\r\n"
    )
    signed_headers = {
        "content-encoding": "aws-chunked",
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "x-amz-decoded-content-length": str(len(data)),
    }
    assert httpx.put(f"{server}/chunky/signed.bin", content=signed, headers=signed_headers).status_code == 200
    assert platform.artifacts.get_bytes("s3://chunky/signed.bin") == data

    tampered = _aws_chunked(data, chunk_size=65536).replace(
        _crc32_b64(data).encode(), _crc32_b64(b"x").encode()
    )
    refused = httpx.put(f"{server}/chunky/tampered.bin", content=tampered, headers=headers)
    assert refused.status_code == 400 and "<Code>BadDigest</Code>" in refused.text
    truncated = _aws_chunked(data, chunk_size=65536)[:-40]
    cut = httpx.put(f"{server}/chunky/cut.bin", content=truncated, headers=headers)
    assert cut.status_code == 400 and "<Code>IncompleteBody</Code>" in cut.text
    assert not platform.artifacts.exists("s3://chunky/tampered.bin")
    assert not platform.artifacts.exists("s3://chunky/cut.bin")


def _self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_botocore_over_tls_sends_aws_chunked_bodies_that_are_stored_verbatim(
    platform: Platform, tmp_path: Path
) -> None:
    cert, key = _self_signed_certificate(tmp_path)
    url, stop = _serve(create_s3_app(platform), ssl_certfile=str(cert), ssl_keyfile=str(key))
    try:
        s3 = _client(url, verify=str(cert))
        seen: list[str] = []
        s3.meta.events.register(
            "before-send.s3.PutObject",
            lambda request, **_: seen.append(request.headers.get("Content-Encoding", b"")),
        )
        s3.create_bucket(Bucket="tls-bucket")
        data = os.urandom(2 * MiB + 17)
        put = s3.put_object(Bucket="tls-bucket", Key="streamed.bin", Body=io.BytesIO(data))
        assert seen and b"aws-chunked" in seen[0]
        assert put["ETag"] == f'"{_md5(data)}"' and put["ChecksumCRC32"] == _crc32_b64(data)
        assert platform.artifacts.get_bytes("s3://tls-bucket/streamed.bin") == data
        source = tmp_path / "multi.bin"
        source.write_bytes(os.urandom(11 * MiB))
        s3.upload_file(
            str(source),
            "tls-bucket",
            "multi.bin",
            Config=TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB),
        )
        assert platform.artifacts.get_bytes("s3://tls-bucket/multi.bin") == source.read_bytes()
        s3.close()  # TLS connections left open would hold the server's shutdown until they time out
    finally:
        stop()


def test_a_payload_hash_mismatch_from_the_auth_layer_stores_nothing(platform: Platform) -> None:
    app = create_s3_app(platform)

    async def mismatching(scope: Any, receive: Any, send: Any) -> None:
        async def checked_receive() -> Any:
            message = await receive()
            if (
                scope["method"] == "PUT"
                and scope["path"].count("/") >= 2  # an object, not CreateBucket
                and message["type"] == "http.request"
                and not message.get("more_body")
            ):
                raise PayloadHashMismatch("claimed", "computed")
            return message

        await app(scope, checked_receive, send)

    url, stop = _serve(mismatching)
    try:
        s3 = _client(url)
        s3.create_bucket(Bucket="hashes")
        code, status, message = _error(lambda: s3.put_object(Bucket="hashes", Key="k.bin", Body=b"bytes"))
        assert (code, status) == ("XAmzContentSHA256Mismatch", 400)
        assert "x-amz-content-sha256" in message
        assert not platform.artifacts.exists("s3://hashes/k.bin")
        assert _files_under(platform.config.local_s3_root / ".forgeml" / "staging") == set()
    finally:
        stop()


def test_a_body_that_differs_from_its_signed_hash_is_not_stored(platform: Platform) -> None:
    """With the real auth middleware in front: a signed PUT whose body was swapped in transit."""
    auth = pytest.importorskip("forgeml.server.auth")
    key_id, secret = auth.KeyStore(platform.config).ensure_default()
    app = auth.AuthMiddleware(create_s3_app(platform), auth.SigV4Verifier(auth.KeyStore(platform.config)))
    url, stop = _serve(app)
    try:
        signed = boto3.client(
            "s3",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}),
        )
        signed.create_bucket(Bucket="signed")
        signed.put_object(Bucket="signed", Key="genuine.bin", Body=b"genuine bytes")
        assert platform.artifacts.get_bytes("s3://signed/genuine.bin") == b"genuine bytes"

        request = AWSRequest(method="PUT", url=f"{url}/signed/swapped.bin", data=b"genuine bytes")
        S3SigV4Auth(Credentials(key_id, secret), "s3", "us-east-1").add_auth(request)
        swapped = httpx.put(
            f"{url}/signed/swapped.bin", content=b"swapped bytes", headers=dict(request.headers)
        )
        assert swapped.status_code == 400
        assert "<Code>XAmzContentSHA256Mismatch</Code>" in swapped.text
        assert not platform.artifacts.exists("s3://signed/swapped.bin")
        assert [o["Key"] for o in signed.list_objects_v2(Bucket="signed")["Contents"]] == ["genuine.bin"]
    finally:
        stop()


# -- what the sagemaker SDK and other clients do ----------------------------------------------------


def test_sagemaker_session_bucket_and_data_calls(server: str, platform: Platform, tmp_path: Path) -> None:
    """The S3 calls of sagemaker 2.257's Session.default_bucket/upload_data/download_data/read_s3_file."""
    resource = boto3.resource(
        "s3",
        endpoint_url=server,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
        **CREDENTIALS,
    )
    name = "sagemaker-us-east-1-000000000000"
    bucket = resource.Bucket(name=name)
    assert bucket.creation_date is None  # ListBuckets does not know it yet
    code, _status, message = _error(lambda: resource.meta.client.head_bucket(Bucket=name))
    assert (code, message) == ("404", "Not Found")
    resource.create_bucket(Bucket=name)
    assert resource.Bucket(name=name).creation_date is not None
    resource.meta.client.head_bucket(Bucket=name, ExpectedBucketOwner="000000000000")
    assert _error(lambda: resource.meta.client.head_bucket(Bucket=name, ExpectedBucketOwner="999999999999"))[
        :3
    ] == (
        "403",
        403,
        "Forbidden",
    )

    local = tmp_path / "train.csv"
    local.write_text("1,2\n3,4\n")
    resource.Object(name, "data/train/train.csv").upload_file(str(local))
    resource.Object(name, "data/manifest").put(Body=b'[{"prefix": "s3://x/"}]')
    assert (
        resource.meta.client.get_object(Bucket=name, Key="data/train/train.csv")["Body"].read()
        == b"1,2\n3,4\n"
    )
    contents = resource.meta.client.list_objects_v2(Bucket=name, Prefix="data")["Contents"]
    assert [item["Key"] for item in contents] == ["data/manifest", "data/train/train.csv"]
    resource.meta.client.download_file(
        Bucket=name, Key="data/train/train.csv", Filename=str(tmp_path / "back.csv")
    )
    assert (tmp_path / "back.csv").read_text() == "1,2\n3,4\n"
    assert [obj.key for obj in resource.Bucket(name).objects.filter(Prefix="data/")] == [
        "data/manifest",
        "data/train/train.csv",
    ]
    # ...and a training job's channel sees exactly the uploaded file.
    channel = platform.artifacts.list_objects(f"s3://{name}/data/train")
    assert [obj.relative_name for obj in channel] == ["train.csv"]


def test_virtual_host_style_by_host_header(server: str, platform: Platform) -> None:
    port = server.rsplit(":", 1)[1]
    host = {"host": f"vhost-bucket.localhost:{port}"}
    assert httpx.put(f"{server}/", headers=host).status_code == 200
    assert httpx.put(f"{server}/dir/file.txt", content=b"virtual", headers=host).status_code == 200
    assert platform.artifacts.get_bytes("s3://vhost-bucket/dir/file.txt") == b"virtual"
    assert httpx.get(f"{server}/dir/file.txt", headers=host).content == b"virtual"
    assert httpx.get(f"{server}/vhost-bucket/dir/file.txt").content == b"virtual"  # path style alongside


def test_a_remote_artifact_store_is_not_served(forgeml_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGEML_S3_ENDPOINT_URL", "http://s3.example.invalid:9000")
    url, stop = _serve(create_s3_app(Platform.get()))
    try:
        code, status, message = _error(lambda: _client(url).list_buckets())
        assert (code, status) == ("NotImplemented", 501)
        assert "FORGEML_S3_ENDPOINT_URL" in message
    finally:
        stop()

