"""sagemaker v2's first-party estimators, as the course notebooks use them."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest
from tests.conftest import shared_path

from forgeml import KMeans, LinearLearner, Session, TrainingInput, ValidationException


def test_kmeans_record_set_flow_and_centroids_from_model_algo_1(session: Session) -> None:
    rng = np.random.default_rng(3)
    centers = np.array([[0, 0], [10, 10], [-10, 10]], dtype=np.float32)
    data = np.concatenate([c + rng.normal(size=(300, 2)).astype(np.float32) for c in centers])
    kmeans = KMeans(role="arn:aws:iam::000000000000:role/r", instance_count=1, instance_type="ml.c4.xlarge",
                    k=3, sagemaker_session=session)
    records = kmeans.record_set(data)
    assert records.s3_data.endswith(".amazon.manifest") and records.feature_dim == 2 and records.num_records == 900
    kmeans.fit(records, logs=False)
    description = kmeans.latest_training_job.describe()  # type: ignore[union-attr]
    assert description["HyperParameters"]["feature_dim"] == "2" and description["HyperParameters"]["k"] == "3"
    assert any(m["MetricName"] == "train:msd" for m in description["FinalMetricDataList"])

    archive = session.platform.artifacts.get_bytes(kmeans.model_data)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        assert "model_algo-1" in tar.getnames()
        payload = tar.extractfile("model_algo-1").read()  # type: ignore[union-attr]
    from forgeml.algorithms.common.mxnet_ndarray import loads

    arrays = loads(payload)
    centroids = np.asarray(arrays[0] if isinstance(arrays, list) else next(iter(arrays.values())))
    assert centroids.shape == (3, 2)
    found = sorted(map(tuple, np.round(centroids / 10).astype(int)))
    assert found == sorted(map(tuple, (centers / 10).astype(int)))


def test_linear_learner_with_train_and_validation_record_sets(session: Session) -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(2000, 5)).astype(np.float32)
    labels = (features @ np.array([1, -2, 0.5, 0, 1]) > 0).astype(np.float32)
    learner = LinearLearner(predictor_type="binary_classifier", epochs=5, sagemaker_session=session,
                            instance_type="ml.m5.large")
    train = learner.record_set(features[:1500], labels[:1500])
    validation = learner.record_set(features[1500:], labels[1500:], channel="validation")
    learner.fit([train, validation], mini_batch_size=200, logs=False)
    metrics = {m["MetricName"]: m["Value"] for m in learner.latest_training_job.describe()["FinalMetricDataList"]}  # type: ignore[union-attr]
    assert metrics["validation:binary_classification_accuracy"] > 0.95
    assert learner.hyperparameters()["feature_dim"] == 5 and learner.mini_batch_size == 200


def test_unknown_hyperparameter_is_refused_when_the_estimator_is_built(session: Session) -> None:
    with pytest.raises(ValidationException, match="mini_batch_siz"):
        LinearLearner(predictor_type="regressor", mini_batch_siz=10, sagemaker_session=session)


def test_bad_hyperparameter_value_is_refused_at_job_creation(session: Session) -> None:
    learner = LinearLearner(predictor_type="multiclass_classifier", num_classes=3, epochs=0, sagemaker_session=session)
    with pytest.raises(ValidationException, match="HyperParameters.epochs"):
        learner.fit({"train": "s3://bucket-one/unused"}, logs=False)


def test_seed_000_linear_learner_on_the_ufo_files(session: Session) -> None:
    """The course's tuned run: SageMaker reported validation multiclass_accuracy 0.9470."""
    train = session.upload_data(str(shared_path("data", "ufo", "ufo_sightings_train_recordIO_protobuf.data")),
                                key_prefix="ufo/train")
    validation = session.upload_data(
        str(shared_path("data", "ufo", "ufo_sightings_validation_recordIO_protobuf.data")), key_prefix="ufo/validation")
    learner = LinearLearner(predictor_type="multiclass_classifier", num_classes=3, feature_dim=22, epochs=15,
                            l1=0.000595, learning_rate=0.0438, mini_batch_size=2977, use_bias=True, wd=0.00191,
                            input_mode="Pipe", sagemaker_session=session)
    learner.fit({"train": TrainingInput(train, content_type="application/x-recordio-protobuf"),
                 "validation": TrainingInput(validation, content_type="application/x-recordio-protobuf")}, logs=False)
    metrics = {m["MetricName"]: m["Value"] for m in learner.latest_training_job.describe()["FinalMetricDataList"]}  # type: ignore[union-attr]
    assert metrics["validation:multiclass_accuracy"] >= 0.94
    assert metrics["validation:macro_f_beta"] >= 0.89


def test_malformed_csv_record_fails_the_job_naming_file_and_record(session: Session, tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "bad-csv"
    folder.mkdir()
    (folder / "train.csv").write_text("1,0.5,0.25\n0,0.1,0.2\n1,oops,0.3\n")
    uri = session.upload_data(str(folder), key_prefix="bad-csv")
    learner = LinearLearner(predictor_type="binary_classifier", sagemaker_session=session)
    with pytest.raises(Exception, match="ClientError"):
        learner.fit({"train": TrainingInput(uri, content_type="text/csv")}, logs=False)
    reason = learner.latest_training_job.describe()["FailureReason"]  # type: ignore[union-attr]
    assert reason.startswith("ClientError:")
    assert "train.csv" in reason and "record 3" in reason


def test_pca_estimator_fills_in_mini_batch_size_like_the_sdk(session: Session) -> None:
    from forgeml import PCA

    data = np.random.default_rng(1).normal(size=(400, 6)).astype(np.float32)
    pca = PCA(num_components=2, sagemaker_session=session)
    pca.fit(pca.record_set(data), logs=False)
    description = pca.latest_training_job.describe()  # type: ignore[union-attr]
    assert description["TrainingJobStatus"] == "Completed"
    assert description["HyperParameters"]["mini_batch_size"] == "400"
