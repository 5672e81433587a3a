"""S3's REST-XML protocol (the subset SageMaker clients use) over forgeml's artifact folder.

What boto3 uploads here is the very file a training job reads as ``s3://bucket/key``, and what a job
writes is what boto3 downloads: both live at ``$FORGEML_HOME/s3/<bucket>/<key>``.  What S3 keeps
about an object that a file system does not (ETag, Content-Type, ``x-amz-meta-*``, checksums) lives
in sidecar records under ``$FORGEML_HOME/s3/.forgeml/``, a folder no bucket name can reach, so
listings and jobs never see them.  A sidecar is trusted only while the file's size, mtime and inode
still match it: when a job overwrites an object, its ETag is recomputed from the new content.

Bodies stream in and out in 1 MiB blocks (objects can be GBs), file work runs in worker threads,
uploads land in a staging folder and are renamed into place, so a reader never sees half an object.
Addressing is path style (``/{bucket}/{key}``); virtual-host style (``{bucket}.localhost:port``, or
any domain listed in ``FORGEML_S3_DOMAIN``) is accepted too.

The package's modules, each with one job: ``app`` (ASGI entry, routing), ``buckets``, ``listing``,
``objects`` and ``multipart`` (the operations), ``store`` (the object store on disk), ``records``
(object metadata), ``bodies`` (request-body decoding and checks), ``xml_wire`` (XML and dates),
``messages`` (request/response shapes), ``errors`` and ``constants``.
"""

from __future__ import annotations

from forgeml.server.s3.app import S3App, create_s3_app
from forgeml.server.s3.errors import S3Error
from forgeml.server.s3.listing import ListingPage
from forgeml.server.s3.records import ObjectInfo, ObjectRecord, PartInfo
from forgeml.server.s3.store import LocalObjectStore

__all__ = [
    "ListingPage",
    "LocalObjectStore",
    "ObjectInfo",
    "ObjectRecord",
    "PartInfo",
    "S3App",
    "S3Error",
    "create_s3_app",
]
