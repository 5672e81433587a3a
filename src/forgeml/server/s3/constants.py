"""S3's fixed names and limits, shared by every part of the S3 subset."""

from __future__ import annotations

S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
DEFAULT_CONTENT_TYPE = "binary/octet-stream"
MAX_KEYS = 1000
MAX_KEY_BYTES = 1024
MAX_OBJECT_SIZE = 5 * 1024**3
MIN_PART_SIZE = 5 * 1024**2
MAX_PART_NUMBER = 10_000
MAX_XML_BODY = 4 * 1024 * 1024
MAX_METADATA_BYTES = 2048
MAX_DELETE_KEYS = 1000
IO_BLOCK = 1024 * 1024
INTERNAL_FOLDER = ".forgeml"
# Headers S3 stores with an object and returns on GET/HEAD.
STORED_HEADERS = ("cache-control", "content-disposition", "content-encoding", "content-language", "expires")
RESPONSE_OVERRIDES = {
    "response-content-type": "content-type",
    "response-content-language": "content-language",
    "response-expires": "expires",
    "response-cache-control": "cache-control",
    "response-content-disposition": "content-disposition",
    "response-content-encoding": "content-encoding",
}
# Query parameters that qualify an operation rather than name a sub-resource (acl, tagging, ...).
NEUTRAL_QUERY = {
    "list-type",
    "prefix",
    "delimiter",
    "max-keys",
    "continuation-token",
    "start-after",
    "encoding-type",
    "fetch-owner",
    "marker",
    "x-id",
    "partNumber",
    "uploadId",
    "versionId",
    "max-parts",
    "part-number-marker",
    "max-buckets",
    "bucket-region",
    *RESPONSE_OVERRIDES,
}
UNSUPPORTED_OPERATION_NAMES = {
    ("GET", "bucket", "versions"): "ListObjectVersions",
    ("GET", "bucket", "uploads"): "ListMultipartUploads",
    ("GET", "bucket", "object-lock"): "GetObjectLockConfiguration",
    ("PUT", "bucket", "object-lock"): "PutObjectLockConfiguration",
    ("POST", "object", "restore"): "RestoreObject",
    ("POST", "object", "select"): "SelectObjectContent",
    ("POST", "bucket", ""): "PostObject",
}
CHECKSUM_HEADER_PREFIX = "x-amz-checksum-"
CHECKSUM_NON_VALUES = {"x-amz-checksum-algorithm", "x-amz-checksum-mode", "x-amz-checksum-type"}
