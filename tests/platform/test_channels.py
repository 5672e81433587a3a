"""Channel delivery: File and Pipe mode, manifests, sharding across instances, gzip, checkpoints."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from forgeml import Estimator, Session, TrainingInput


def logs(session: Session, name: str) -> list[str]:
    return [e["message"] for e in session.platform.logs.job_events(name)]


def test_pipe_mode_streams_each_epoch_through_a_fifo(session: Session, write_script, tmp_path: Path) -> None:
    source = write_script("train.py", """
        import os, stat
        base = os.environ["SM_INPUT_DIR"] + "/data"
        for epoch in range(2):
            path = f"{base}/train_{epoch}"
            while not os.path.exists(path):
                pass
            assert stat.S_ISFIFO(os.stat(path).st_mode)
            with open(path, "rb") as pipe:
                print(f"epoch {epoch}: {len(pipe.read())} bytes")
    """)
    folder = tmp_path / "pipe-data"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"x" * 1000)
    (folder / "b.bin").write_bytes(gzip.compress(b"y" * 500))
    uri = session.upload_data(str(folder), key_prefix="pipe-data")
    estimator = Estimator(entry_point="train.py", source_dir=str(source), sagemaker_session=session, input_mode="Pipe")
    estimator.fit({"train": TrainingInput(f"{uri}/a.bin")}, logs=False, job_name="pipe-plain")
    assert logs(session, "pipe-plain")[-2:] == ["epoch 0: 1000 bytes", "epoch 1: 1000 bytes"]
    estimator.fit({"train": TrainingInput(f"{uri}/b.bin", compression="Gzip")}, logs=False, job_name="pipe-gzip")
    assert logs(session, "pipe-gzip")[-1] == "epoch 1: 500 bytes"


def test_sharded_by_s3_key_splits_objects_across_instances(session: Session, write_script, tmp_path: Path) -> None:
    source = write_script("train.py", """
        import os
        files = sorted(os.listdir(os.environ["SM_CHANNEL_TRAIN"]))
        everywhere = sorted(os.listdir(os.environ["SM_CHANNEL_ALL"]))
        print(os.environ["SM_CURRENT_HOST"], "shard", ",".join(files), "all", ",".join(everywhere))
        open(os.path.join(os.environ["SM_MODEL_DIR"], os.environ["SM_CURRENT_HOST"]), "w").write("x")
    """)
    folder = tmp_path / "shards"
    folder.mkdir()
    for index in range(4):
        (folder / f"part-{index}.csv").write_text(f"{index}\n")
    uri = session.upload_data(str(folder), key_prefix="shards")
    estimator = Estimator(entry_point="train.py", source_dir=str(source), sagemaker_session=session, instance_count=2)
    estimator.fit({"train": TrainingInput(uri, distribution="ShardedByS3Key"), "all": TrainingInput(uri)},
                  logs=False, job_name="sharded")
    lines = sorted(line for line in logs(session, "sharded") if " shard " in line)
    assert lines == [
        "algo-1 shard part-0.csv,part-2.csv all part-0.csv,part-1.csv,part-2.csv,part-3.csv",
        "algo-2 shard part-1.csv,part-3.csv all part-0.csv,part-1.csv,part-2.csv,part-3.csv",
    ]
    streams = {s["logStreamName"].split("/")[1].rsplit("-", 1)[0]
               for s in session.platform.logs.job_log_streams("sharded")}
    assert streams == {"algo-1", "algo-2"}
    import io
    import tarfile

    archive = session.platform.artifacts.get_bytes(estimator.model_data)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        assert sorted(tar.getnames()) == ["algo-1", "algo-2"]


def test_manifest_file_channel(session: Session, write_script, tmp_path: Path) -> None:
    source = write_script("train.py", """
        import os
        root = os.environ["SM_CHANNEL_TRAIN"]
        for folder, _, files in sorted(os.walk(root)):
            for name in sorted(files):
                print("got", os.path.relpath(os.path.join(folder, name), root))
    """)
    folder = tmp_path / "m"
    (folder / "sub").mkdir(parents=True)
    (folder / "one.csv").write_text("1\n")
    (folder / "sub" / "two.csv").write_text("2\n")
    (folder / "skipped.csv").write_text("3\n")
    prefix = session.upload_data(str(folder), key_prefix="manifested")
    manifest = tmp_path / "train.manifest"
    manifest.write_text(json.dumps([{"prefix": prefix + "/"}, "one.csv", "sub/two.csv"]))
    manifest_uri = session.upload_data(str(manifest), key_prefix="manifests")
    estimator = Estimator(entry_point="train.py", source_dir=str(source), sagemaker_session=session)
    estimator.fit({"train": TrainingInput(manifest_uri, s3_data_type="ManifestFile")}, logs=False, job_name="manifest")
    assert [line for line in logs(session, "manifest") if line.startswith("got")] == ["got one.csv", "got sub/two.csv"]


def test_checkpoints_are_synced_and_restored_for_the_next_job(session: Session, write_script) -> None:
    source = write_script("train.py", """
        import os
        folder = os.environ["SM_CHECKPOINT_DIR"]
        path = os.path.join(folder, "step.txt")
        step = int(open(path).read()) if os.path.exists(path) else 0
        print("resumed at", step)
        open(path, "w").write(str(step + 10))
    """)
    bucket = session.default_bucket()
    checkpoint = f"s3://{bucket}/checkpoints/run-1"
    for name in ("ckpt-first", "ckpt-second"):
        estimator = Estimator(entry_point="train.py", source_dir=str(source), sagemaker_session=session,
                              checkpoint_s3_uri=checkpoint)
        estimator.fit(logs=False, job_name=name)
    assert "resumed at 0" in logs(session, "ckpt-first")
    assert "resumed at 10" in logs(session, "ckpt-second")
    assert session.platform.artifacts.get_bytes(f"{checkpoint}/step.txt") == b"20"


def test_uncompressed_model_output(session: Session, write_script) -> None:
    source = write_script("train.py", """
        import os
        open(os.path.join(os.environ["SM_MODEL_DIR"], "weights.bin"), "wb").write(b"abc")
    """)
    estimator = Estimator(entry_point="train.py", source_dir=str(source), sagemaker_session=session)
    request = estimator.training_request(job_name="uncompressed")
    request["OutputDataConfig"]["CompressionType"] = "NONE"
    session.platform.training_jobs.create_training_job(request)
    description = session.wait_for_job("uncompressed")
    uri = description["ModelArtifacts"]["S3ModelArtifacts"]
    assert uri.endswith("/uncompressed/output/model/")
    assert session.platform.artifacts.get_bytes(uri + "weights.bin") == b"abc"
