"""S3's error answers: the exception every part raises, and one factory per recurring error."""

from __future__ import annotations


class S3Error(Exception):
    """An S3 error answer: HTTP status, S3's error code and message, and any extra headers."""

    def __init__(
        self, status: int, code: str, message: str, headers: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or []


def _no_such_bucket() -> S3Error:
    return S3Error(404, "NoSuchBucket", "The specified bucket does not exist")


def _no_such_key() -> S3Error:
    return S3Error(404, "NoSuchKey", "The specified key does not exist.")


def _no_such_upload() -> S3Error:
    return S3Error(
        404,
        "NoSuchUpload",
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been "
        "aborted or completed.",
    )


def _invalid_argument(message: str) -> S3Error:
    return S3Error(400, "InvalidArgument", message)


def _malformed_xml() -> S3Error:
    return S3Error(
        400,
        "MalformedXML",
        "The XML you provided was not well-formed or did not validate against our published schema",
    )


def _precondition_failed() -> S3Error:
    return S3Error(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")


def _invalid_range(size: int) -> S3Error:
    return S3Error(
        416, "InvalidRange", "The requested range is not satisfiable", [("Content-Range", f"bytes */{size}")]
    )


def _not_implemented(operation: str) -> S3Error:
    return S3Error(501, "NotImplemented", f"forgeml's S3 subset does not implement {operation}")


def _key_conflict(key: str) -> S3Error:
    return _invalid_argument(
        f"The key '{key}' cannot be stored: forgeml keeps objects as files, and this key would need a file "
        "and a folder at the same path (a shorter key is an object, or this key is a prefix of other objects)."
    )


def _entity_too_large() -> S3Error:
    return S3Error(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size.")
