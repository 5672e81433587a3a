"""sagemaker v2's first-party algorithm estimators: ``LinearLearner``, ``KMeans``, ``PCA`` ...

They are Estimators with the algorithm's image, typed hyperparameters as constructor arguments and
``record_set()``, which writes a numpy array as RecordIO-protobuf shards plus a manifest, as the
UFO course's k-means lab does: ``kmeans.fit(kmeans.record_set(data_train))``. Hyperparameter
names are checked against the algorithm's schema when the estimator is built.

Each has the SDK's model and predictor classes (``LinearLearnerModel``, ``LinearLearnerPredictor`` ...):
``deploy`` returns a predictor that speaks RecordIO-protobuf both ways, as SageMaker's does, so
``predictor.predict(array)`` answers with Records whose outputs sit under ``label``
(``record.label["score"].float32_tensor.values[0]``); IP Insights speaks CSV in and JSON out.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

from forgeml.algorithms.registry import get_algorithm
from forgeml.errors import ValidationException
from forgeml.sdk.deserializers import BaseDeserializer, JSONDeserializer, RecordDeserializer
from forgeml.sdk.estimator import Estimator, TrainingJob
from forgeml.sdk.image_uris import retrieve
from forgeml.sdk.inputs import TrainingInput
from forgeml.sdk.model import Model
from forgeml.sdk.predictor import Predictor
from forgeml.sdk.serializers import BaseSerializer, CSVSerializer, RecordSerializer
from forgeml.sdk.session import Session
from forgeml.service.names import timestamp


class AmazonAlgorithmPredictor(Predictor):
    """A first-party algorithm's endpoint: RecordIO-protobuf requests and responses by default."""

    def __init__(self, endpoint_name: str, sagemaker_session: Session | None = None,
                 serializer: BaseSerializer | None = None, deserializer: BaseDeserializer | None = None,
                 component_name: str | None = None) -> None:
        super().__init__(endpoint_name, sagemaker_session, serializer or self._default_serializer(),
                         deserializer or self._default_deserializer(), component_name)

    @staticmethod
    def _default_serializer() -> BaseSerializer:
        return RecordSerializer()

    @staticmethod
    def _default_deserializer() -> BaseDeserializer:
        return RecordDeserializer()


class LinearLearnerPredictor(AmazonAlgorithmPredictor):
    """Records with ``label["score"]`` and ``label["predicted_label"]``."""


class KMeansPredictor(AmazonAlgorithmPredictor):
    """Records with ``label["closest_cluster"]`` and ``label["distance_to_cluster"]``."""


class PCAPredictor(AmazonAlgorithmPredictor):
    """Records with ``label["projection"]``."""


class KNNPredictor(AmazonAlgorithmPredictor):
    """Records with ``label["predicted_label"]``."""


class FactorizationMachinesPredictor(AmazonAlgorithmPredictor):
    """Records with ``label["score"]`` (and ``label["predicted_label"]`` for a classifier)."""


class RandomCutForestPredictor(AmazonAlgorithmPredictor):
    """Records with ``label["score"]``, the anomaly score."""


class IPInsightsPredictor(AmazonAlgorithmPredictor):
    """CSV ``entity,ip`` rows in, ``{"predictions": [{"dot_product": ...}]}`` out, as the SDK's."""

    @staticmethod
    def _default_serializer() -> BaseSerializer:
        return CSVSerializer()

    @staticmethod
    def _default_deserializer() -> BaseDeserializer:
        return JSONDeserializer()


class AmazonAlgorithmModel(Model):
    """A first-party algorithm's artifact served by its image, deployed as its predictor class."""

    repo_name: str = ""
    predictor_class: type[Predictor] = Predictor

    def __init__(self, model_data: str, role: str | None = None, sagemaker_session: Session | None = None,
                 **kwargs: Any) -> None:
        session = sagemaker_session or Session()
        kwargs.pop("predictor_cls", None)
        kwargs.pop("image_uri", None)
        super().__init__(retrieve(self.repo_name, session.boto_region_name), model_data, role,
                         predictor_cls=self.predictor_class, sagemaker_session=session, **kwargs)


class LinearLearnerModel(AmazonAlgorithmModel):
    repo_name = "linear-learner"
    predictor_class = LinearLearnerPredictor


class KMeansModel(AmazonAlgorithmModel):
    repo_name = "kmeans"
    predictor_class = KMeansPredictor


class PCAModel(AmazonAlgorithmModel):
    repo_name = "pca"
    predictor_class = PCAPredictor


class KNNModel(AmazonAlgorithmModel):
    repo_name = "knn"
    predictor_class = KNNPredictor


class FactorizationMachinesModel(AmazonAlgorithmModel):
    repo_name = "factorization-machines"
    predictor_class = FactorizationMachinesPredictor


class RandomCutForestModel(AmazonAlgorithmModel):
    repo_name = "randomcutforest"
    predictor_class = RandomCutForestPredictor


class IPInsightsModel(AmazonAlgorithmModel):
    repo_name = "ipinsights"
    predictor_class = IPInsightsPredictor


class RecordSet:
    """RecordIO-protobuf data uploaded for a first-party algorithm (sagemaker.amazon's RecordSet)."""

    def __init__(self, s3_data: str, num_records: int, feature_dim: int, s3_data_type: str = "ManifestFile",
                 channel: str = "train") -> None:
        self.s3_data = s3_data
        self.num_records = num_records
        self.feature_dim = feature_dim
        self.s3_data_type = s3_data_type
        self.channel = channel

    def records_s3_input(self) -> TrainingInput:
        # SageMaker shards the training channel across instances and replicates the others
        distribution = "ShardedByS3Key" if self.channel == "train" else "FullyReplicated"
        return TrainingInput(self.s3_data, distribution=distribution, s3_data_type=self.s3_data_type)

    def __repr__(self) -> str:
        return f"RecordSet(s3_data={self.s3_data!r}, num_records={self.num_records}, feature_dim={self.feature_dim}, channel={self.channel!r})"


class AmazonAlgorithmEstimatorBase(Estimator):
    """Common behaviour; subclasses set ``repo_name`` and their required hyperparameters."""

    repo_name: str = ""
    #: the constructor's positional hyperparameters, in sagemaker's order
    required: tuple[str, ...] = ()
    #: what ``create_model`` returns (its predictor class is what ``deploy`` returns)
    model_class: type[AmazonAlgorithmModel] = AmazonAlgorithmModel

    def __init__(self, role: str | None = None, instance_count: int | None = None, instance_type: str | None = None,
                 *args: Any, data_location: str | None = None, **kwargs: Any) -> None:
        instance_count = instance_count or kwargs.pop("train_instance_count", 1)
        instance_type = instance_type or kwargs.pop("train_instance_type", "ml.m5.large")
        platform_args = {k: kwargs.pop(k) for k in list(kwargs) if k in _ESTIMATOR_ARGS}
        if len(args) > len(self.required):
            raise TypeError(f"{type(self).__name__} takes at most {len(self.required)} positional hyperparameters")
        values = dict(zip(self.required, args, strict=False))
        values.update(kwargs)
        self.algorithm = get_algorithm(self.repo_name)
        unknown = sorted(k for k in values if k not in self.algorithm.hyperparameters.by_name)
        if unknown:
            raise ValidationException(
                f"{type(self).__name__} got unknown hyperparameter(s) {', '.join(unknown)}; "
                f"accepted: {', '.join(sorted(self.algorithm.hyperparameters.by_name))}"
            )
        session = platform_args.pop("sagemaker_session", None)
        super().__init__(
            image_uri=retrieve(self.repo_name, session.boto_region_name if session else None),
            role=role, instance_count=instance_count, instance_type=instance_type,
            sagemaker_session=session, **platform_args,
        )
        self.data_location = data_location
        for name, value in values.items():
            if value is not None:
                self._hyperparameters[name] = value

    @classmethod
    def attach(cls, training_job_name: str, sagemaker_session: Session | None = None) -> Estimator:
        """This algorithm's estimator for an existing job: its hyperparameters, resources and results."""
        session = sagemaker_session or Session()
        description = session.describe_training_job(training_job_name)
        resources = description["ResourceConfig"]
        hyperparameters = {k: v for k, v in description.get("HyperParameters", {}).items() if not k.startswith("_")}
        estimator = cls(description["RoleArn"], resources["InstanceCount"], resources["InstanceType"],
                        sagemaker_session=session, output_path=description["OutputDataConfig"]["S3OutputPath"],
                        **hyperparameters)
        estimator.latest_training_job = TrainingJob(session, training_job_name)
        estimator._current_job_name = training_job_name
        return estimator

    def __getattr__(self, name: str) -> Any:
        hyperparameters = self.__dict__.get("_hyperparameters", {})
        if name in hyperparameters:
            return hyperparameters[name]
        raise AttributeError(name)

    def _serialized_hyperparameters(self) -> dict[str, str]:
        serialized = {}
        for key, value in self.hyperparameters().items():
            if value is None:
                continue
            serialized[key] = json.dumps(value) if isinstance(value, list | dict) else str(value)
        return serialized

    def record_set(self, train: np.ndarray, labels: np.ndarray | None = None, channel: str = "train",
                   encrypt: bool = False) -> RecordSet:
        """Upload ``train`` (and ``labels``) as one RecordIO shard per instance plus a manifest."""
        from forgeml.data.recordio_protobuf import write_numpy_to_dense_tensor

        session = self.sagemaker_session
        location = self.data_location or f"s3://{session.default_bucket()}/sagemaker-record-sets/"
        prefix = f"{location.rstrip('/')}/{type(self).__name__}-{timestamp()}/"
        store = session.platform.artifacts
        shards = max(1, int(self.instance_count or 1))
        keys = []
        for index, rows in enumerate(np.array_split(np.arange(train.shape[0]), shards)):
            if rows.size == 0:
                continue
            buffer = io.BytesIO()
            write_numpy_to_dense_tensor(buffer, train[rows], None if labels is None else labels[rows])
            key = f"matrix_{index}.pbr"
            store.put_bytes(buffer.getvalue(), prefix + key)
            keys.append(key)
        manifest = prefix + ".amazon.manifest"
        store.put_bytes(json.dumps([{"prefix": prefix}, *keys]).encode(), manifest)
        return RecordSet(manifest, num_records=int(train.shape[0]), feature_dim=int(train.shape[1]), channel=channel)

    def training_request(self, inputs: Any = None, job_name: str | None = None) -> dict[str, Any]:
        """As Estimator's, with ``feature_dim`` taken from the train RecordSet, as sagemaker does."""
        record_sets = inputs if isinstance(inputs, list) else [inputs]
        train = next((r for r in record_sets if isinstance(r, RecordSet) and r.channel == "train"), None)
        if train is not None and "feature_dim" in self.algorithm.hyperparameters.by_name:
            self._hyperparameters["feature_dim"] = train.feature_dim
        batch = self.algorithm.hyperparameters.by_name.get("mini_batch_size")
        if train is not None and batch is not None and batch.required and "mini_batch_size" not in self._hyperparameters:
            # sagemaker's default for the algorithms that require it: at most 1000 records per host
            per_host = train.num_records // max(1, int(self.instance_count or 1))
            self._hyperparameters["mini_batch_size"] = min(1000, max(1, per_host))
        return super().training_request(inputs, job_name)

    def create_model(self, role: str | None = None, **kwargs: Any) -> AmazonAlgorithmModel:  # type: ignore[override]
        """The algorithm's Model (``LinearLearnerModel`` ...) of the trained artifact; its image, its predictor."""
        return self.model_class(self.model_data, role or self.role, self.sagemaker_session, **kwargs)

    def fit(self, records: Any = None, mini_batch_size: int | None = None, wait: bool = True,  # type: ignore[override]
            logs: bool | str = True, job_name: str | None = None, experiment_config: dict[str, str] | None = None) -> None:
        if mini_batch_size is not None:
            self._hyperparameters["mini_batch_size"] = mini_batch_size
        super().fit(records, wait=wait, logs=logs, job_name=job_name, experiment_config=experiment_config)


_ESTIMATOR_ARGS = frozenset({
    "sagemaker_session", "output_path", "base_job_name", "max_run", "input_mode", "volume_size", "tags",
    "checkpoint_s3_uri", "checkpoint_local_path", "environment", "metric_definitions",
})


class LinearLearner(AmazonAlgorithmEstimatorBase):
    repo_name = "linear-learner"
    required = ("predictor_type",)
    model_class = LinearLearnerModel


class KMeans(AmazonAlgorithmEstimatorBase):
    repo_name = "kmeans"
    required = ("k",)
    model_class = KMeansModel


class PCA(AmazonAlgorithmEstimatorBase):
    repo_name = "pca"
    required = ("num_components",)
    model_class = PCAModel


class KNN(AmazonAlgorithmEstimatorBase):
    repo_name = "knn"
    required = ("k", "sample_size", "predictor_type")
    model_class = KNNModel


class FactorizationMachines(AmazonAlgorithmEstimatorBase):
    repo_name = "factorization-machines"
    required = ("num_factors", "predictor_type")
    model_class = FactorizationMachinesModel


class RandomCutForest(AmazonAlgorithmEstimatorBase):
    repo_name = "randomcutforest"
    required = ("num_samples_per_tree", "num_trees", "eval_metrics")
    model_class = RandomCutForestModel


class IPInsights(AmazonAlgorithmEstimatorBase):
    repo_name = "ipinsights"
    required = ("num_entity_vectors", "vector_dim")
    model_class = IPInsightsModel
