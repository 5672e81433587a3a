"""Delivering channels to a job: File mode copies (hard links when local), Pipe mode streams.

Resolves a channel's S3 data source (S3Prefix, ManifestFile, AugmentedManifestFile) to a list of
objects, splits them across hosts for ShardedByS3Key, and either places the files under
``input/data/<channel>/`` or starts a PipeFeeder that streams them into ``<channel>_<epoch>`` FIFOs.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from forgeml.errors import ClientError
from forgeml.runtime.layout import HostLayout
from forgeml.runtime.pipe import PipeFeeder
from forgeml.storage import ArtifactStore, StoredObject


@dataclass(frozen=True)
class ChannelObject:
    uri: str
    relative_name: str


def channel_input_mode(channel: dict[str, Any], default: str) -> str:
    mode = channel.get("InputMode") or default
    return "File" if mode == "FastFile" else mode


def resolve_objects(store: ArtifactStore, channel: dict[str, Any]) -> list[ChannelObject]:
    source = channel["DataSource"]["S3DataSource"]
    uri, kind = source["S3Uri"], source["S3DataType"]
    name = channel["ChannelName"]
    if kind == "ManifestFile":
        objects = _manifest_objects(store, uri, name)
    elif kind == "AugmentedManifestFile":
        objects = [ChannelObject(uri, uri.rsplit("/", 1)[-1])]
    else:
        listed: list[StoredObject] = store.list_objects(uri)
        objects = [ChannelObject(o.uri, o.relative_name) for o in listed]
    if not objects:
        raise ClientError(
            f"No objects found under S3 URL \"{uri}\" given in input data source for channel '{name}'. "
            "Make sure the data was uploaded there (Session.upload_data) and the URI is spelled correctly."
        )
    shuffle = channel.get("ShuffleConfig")
    if shuffle is not None and kind != "AugmentedManifestFile":
        random.Random(int(shuffle["Seed"])).shuffle(objects)
    return objects


def _manifest_objects(store: ArtifactStore, uri: str, channel: str) -> list[ChannelObject]:
    if not store.exists(uri):
        raise ClientError(f"The manifest file \"{uri}\" for channel '{channel}' does not exist")
    try:
        entries = json.loads(store.get_bytes(uri))
        prefix = entries[0]["prefix"]
        keys = [str(k) for k in entries[1:]]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ClientError(
            f"The manifest file \"{uri}\" for channel '{channel}' must be a JSON array whose first element is "
            f"{{\"prefix\": \"s3://bucket/prefix/\"}} followed by keys ({exc})"
        ) from exc
    objects = []
    for key in keys:
        full = prefix + key
        if not store.exists(full):
            raise ClientError(f"Object \"{full}\" listed in manifest \"{uri}\" for channel '{channel}' does not exist")
        objects.append(ChannelObject(full, key))
    return objects


def shard(objects: list[ChannelObject], host_index: int, host_count: int, distribution: str) -> list[ChannelObject]:
    """ShardedByS3Key: host i of n gets every n-th object, so each object goes to exactly one host."""
    if distribution != "ShardedByS3Key" or host_count == 1:
        return objects
    return objects[host_index::host_count]


def stage_file_channel(store: ArtifactStore, layout: HostLayout, name: str, objects: list[ChannelObject]) -> None:
    folder = layout.channel_dir(name)
    folder.mkdir(parents=True, exist_ok=True)
    for obj in objects:
        relative = obj.relative_name or obj.uri.rsplit("/", 1)[-1]
        store.get_file(obj.uri, folder / relative, link=True)


def augmented_manifest_opener(store: ArtifactStore, attributes: list[str]) -> Any:
    """Pipe mode over an augmented manifest: each line's attributes become RecordIO records."""
    import io

    from forgeml.data.recordio import write_recordio

    def open_manifest(uri: str) -> io.BytesIO:
        out = io.BytesIO()
        for number, line in enumerate(store.get_bytes(uri).decode("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError as exc:
                raise ClientError(f"augmented manifest {uri}, line {number}: not valid JSON ({exc})") from exc
            for attribute in attributes:
                if attribute not in entry:
                    raise ClientError(f"augmented manifest {uri}, line {number}: attribute '{attribute}' is missing")
                value = entry[attribute]
                if attribute.endswith("-ref"):
                    payload = store.get_bytes(str(value))
                else:
                    payload = (value if isinstance(value, str) else json.dumps(value)).encode()
                write_recordio(out, payload)
        out.seek(0)
        return out

    return open_manifest


def start_pipe_channel(
    store: ArtifactStore, layout: HostLayout, channel: dict[str, Any], objects: list[ChannelObject]
) -> PipeFeeder:
    source = channel["DataSource"]["S3DataSource"]
    if source["S3DataType"] == "AugmentedManifestFile":
        opener = augmented_manifest_opener(store, list(source.get("AttributeNames") or []))
        wrapper = "None"
    else:
        opener = lambda uri: store.open(uri, "rb")  # noqa: E731
        wrapper = channel.get("RecordWrapperType", "None")
    shuffle = channel.get("ShuffleConfig")
    feeder = PipeFeeder(
        channel["ChannelName"],
        layout.data_dir,
        [o.uri for o in objects],
        opener,
        compression=channel.get("CompressionType", "None"),
        record_wrapper=wrapper,
        shuffle_seed=int(shuffle["Seed"]) if shuffle else None,
    )
    feeder.start()
    return feeder


def input_data_config(channels: list[dict[str, Any]], default_mode: str) -> dict[str, Any]:
    """inputdataconfig.json: per-channel facts the job's code reads."""
    config: dict[str, Any] = {}
    for channel in channels:
        entry: dict[str, Any] = {}
        if channel.get("ContentType"):
            entry["ContentType"] = channel["ContentType"]
        entry["TrainingInputMode"] = channel.get("InputMode") or default_mode
        entry["S3DistributionType"] = channel["DataSource"]["S3DataSource"].get("S3DataDistributionType", "FullyReplicated")
        entry["RecordWrapperType"] = channel.get("RecordWrapperType", "None")
        if channel.get("CompressionType", "None") != "None":
            entry["CompressionType"] = channel["CompressionType"]
        config[channel["ChannelName"]] = entry
    return config
