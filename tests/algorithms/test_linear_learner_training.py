"""Linear Learner training: content types, File and Pipe mode, log lines and metrics, model selection,
normalisation, early stopping, class weights, and the data errors a user can fix."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_classification

from forgeml.algorithms.harness import ChannelData, train_builtin
from forgeml.algorithms.linear_learner import ALGORITHM
from forgeml.algorithms.linear_learner.model import LinearModel
from forgeml.data.csv_format import write_csv
from forgeml.data.recordio_protobuf import write_numpy_to_dense_tensor, write_spmatrix_to_sparse_tensor
from forgeml.errors import ClientError
from forgeml.runtime.pipe import PipeFeeder


def open_object(path: str) -> IO[bytes]:
    """The PipeFeeder's opener: the feeder reads and closes the handle."""
    return open(path, "rb")  # noqa: SIM115


CSV = "text/csv"
RECORDIO = "application/x-recordio-protobuf"


def write_channel(
    folder: Path, features: np.ndarray, labels: np.ndarray | None, kind: str, parts: int = 1
) -> Path:
    """A channel folder with ``parts`` files of CSV, dense RecordIO or sparse RecordIO."""
    folder.mkdir(parents=True, exist_ok=True)
    features = np.asarray(features, dtype=np.float32)
    for number, rows in enumerate(np.array_split(np.arange(features.shape[0]), parts)):
        chunk = features[rows]
        label = None if labels is None else np.asarray(labels, dtype=np.float32)[rows]
        with open(folder / f"part-{number}", "wb") as handle:
            if kind == "csv":
                write_csv(handle, chunk, label)
            elif kind == "dense":
                write_numpy_to_dense_tensor(handle, chunk, label)
            else:
                write_spmatrix_to_sparse_tensor(handle, sp.csr_matrix(chunk), label)
    return folder


def train(tmp: Path, hyperparameters: dict[str, str], channels: dict[str, ChannelData]) -> tuple[str, Path]:
    stream = io.StringIO()
    model_dir = tmp / "model"
    train_builtin("linear-learner", hyperparameters, channels, model_dir, stream=stream)
    return stream.getvalue(), model_dir


def final(log: str, split: str, metric: str) -> float:
    found = re.findall(
        rf"#quality_metric: host=algo-1, {split} {re.escape(metric)} <(?:score|loss)>=(\S+)", log
    )
    assert found, f"no final {split} {metric} line"
    return float(found[-1])


def epoch_values(log: str, split: str) -> list[float]:
    return [
        float(v)
        for v in re.findall(
            rf"#quality_metric: host=algo-1, epoch=\d+, {split} \S+_objective <loss>=(\S+)", log
        )
    ]


@pytest.fixture(scope="module")
def binary() -> tuple[np.ndarray, np.ndarray]:
    features, labels = make_classification(
        n_samples=1600,
        n_features=12,
        n_informative=6,
        n_clusters_per_class=1,
        class_sep=1.2,
        flip_y=0.02,
        random_state=7,
    )
    features[:, 0] = features[:, 0] * 40 + 300  # a badly scaled column: normalisation must handle it
    return features.astype(np.float32), labels.astype(np.float32)


@pytest.fixture(scope="module")
def multiclass() -> tuple[np.ndarray, np.ndarray]:
    features, labels = make_classification(
        n_samples=1500,
        n_features=10,
        n_informative=6,
        n_classes=3,
        n_clusters_per_class=1,
        class_sep=1.5,
        random_state=11,
    )
    return features.astype(np.float32), labels.astype(np.float32)


@pytest.fixture(scope="module")
def regression() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    features = rng.normal(size=(1500, 6)).astype(np.float32)
    features[:, 1] *= 100
    labels = 5000 + features @ np.array([300, 2, -150, 0, 80, 10]) + rng.normal(0, 20, 1500)
    return features, labels.astype(np.float32)


def channels_for(
    tmp: Path, data: tuple[np.ndarray, np.ndarray], kind: str, *, test: bool = False
) -> dict[str, ChannelData]:
    features, labels = data
    cut = int(0.75 * features.shape[0])
    content_type = CSV if kind == "csv" else RECORDIO
    chosen = {
        "train": ChannelData(
            write_channel(tmp / "train", features[:cut], labels[:cut], kind, parts=2), content_type
        ),
        "validation": ChannelData(
            write_channel(tmp / "validation", features[cut:], labels[cut:], kind), content_type
        ),
    }
    if test:
        chosen["test"] = ChannelData(
            write_channel(tmp / "test", features[cut:], labels[cut:], kind), content_type
        )
    return chosen


# -- content types and input modes -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["csv", "dense", "sparse"])
def test_trains_on_every_content_type(
    tmp_path: Path, binary: tuple[np.ndarray, np.ndarray], kind: str
) -> None:
    log, model_dir = train(
        tmp_path,
        {"predictor_type": "binary_classifier", "mini_batch_size": "100", "epochs": "5"},
        channels_for(tmp_path, binary, kind),
    )
    assert final(log, "validation", "binary_classification_accuracy") > 0.85
    assert final(log, "validation", "roc_auc_score") > 0.9
    model = ALGORITHM.load_model(model_dir)
    assert isinstance(model, LinearModel) and model.feature_dim == 12


class Pipes:
    """Feeders for Pipe-mode channels, closed when the test ends."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.feeders: list[PipeFeeder] = []

    def channel(self, name: str, folder: Path, content_type: str) -> ChannelData:
        objects = [str(path) for path in sorted(folder.iterdir())]
        feeder = PipeFeeder(channel=name, folder=self.root, objects=objects, opener=open_object)
        feeder.start()
        self.feeders.append(feeder)
        return ChannelData(path=self.root / name, content_type=content_type, input_mode="Pipe")

    def close(self) -> None:
        for feeder in self.feeders:
            feeder.close()
            assert feeder.error is None


@pytest.fixture
def pipes(tmp_path: Path) -> Iterator[Pipes]:
    feeders = Pipes(tmp_path / "pipes")
    yield feeders
    feeders.close()


@pytest.mark.parametrize("kind", ["csv", "dense", "sparse"])
def test_pipe_mode_streams_every_pass(
    tmp_path: Path, pipes: Pipes, multiclass: tuple[np.ndarray, np.ndarray], kind: str
) -> None:
    files = channels_for(tmp_path, multiclass, kind, test=True)
    content_type = CSV if kind == "csv" else RECORDIO
    piped = {name: pipes.channel(name, data.path, content_type) for name, data in files.items()}
    hyperparameters = {
        "predictor_type": "multiclass_classifier",
        "num_classes": "3",
        "epochs": "6",
        "mini_batch_size": "200",
        "num_point_for_scaler": "300",  # the sample ends inside the first pass, which must still be trained on
        "early_stopping_patience": "10",
    }
    log, model_dir = train(tmp_path, hyperparameters, piped)
    assert len(epoch_values(log, "train")) == 6 and len(epoch_values(log, "validation")) == 6
    assert final(log, "validation", "multiclass_accuracy") > 0.75
    assert final(log, "test", "multiclass_accuracy") == final(log, "validation", "multiclass_accuracy")
    throughput = re.findall(r"train throughput=(\S+) records/second", log)
    assert len(throughput) == 6
    assert ALGORITHM.load_model(model_dir).num_classes == 3


def test_pipe_mode_regression_with_a_sample_ending_mid_batch(
    tmp_path: Path, pipes: Pipes, regression: tuple[np.ndarray, np.ndarray]
) -> None:
    """The scaler sample (70 rows) ends inside the second 50-row batch; the buffered rows are still
    trained on once in epoch 0 and the streamed fit is as good as a File-mode one."""
    files = channels_for(tmp_path, regression, "dense")
    piped = {name: pipes.channel(name, data.path, RECORDIO) for name, data in files.items()}
    hyperparameters = {
        "predictor_type": "regressor",
        "epochs": "20",
        "mini_batch_size": "50",
        "num_point_for_scaler": "70",
    }
    log, _ = train(tmp_path, hyperparameters, piped)
    assert final(log, "validation", "r2") > 0.99


# -- metrics and log lines -------------------------------------------------------------------------


def test_every_metric_definition_matches_a_line(
    tmp_path: Path,
    binary: tuple[np.ndarray, np.ndarray],
    multiclass: tuple[np.ndarray, np.ndarray],
    regression: tuple[np.ndarray, np.ndarray],
) -> None:
    logs = []
    setups = [
        ({"predictor_type": "binary_classifier"}, binary),
        ({"predictor_type": "multiclass_classifier", "num_classes": "3"}, multiclass),
        ({"predictor_type": "regressor"}, regression),
    ]
    for number, (hyperparameters, data) in enumerate(setups):
        folder = tmp_path / str(number)
        base = {"mini_batch_size": "200", "epochs": "4", "early_stopping_patience": "10", **hyperparameters}
        log, _ = train(folder, base, channels_for(folder, data, "dense", test=True))
        logs.append(log)
        lines = log.splitlines()
        per_epoch = {
            name: [v for line in lines if (v := ALGORITHM.match_metric(name, line)) is not None]
            for name in (
                "train:objective_loss",
                "validation:objective_loss",
                "train:progress",
                "train:throughput",
            )
        }
        assert all(len(values) == 4 for values in per_epoch.values()), per_epoch
        assert per_epoch["train:progress"] == [25.0, 50.0, 75.0, 100.0]
    lines = "\n".join(logs).splitlines()
    for definition in ALGORITHM.metric_definitions:
        matched = [line for line in lines if re.search(definition["Regex"], line)]
        assert matched, f"{definition['Name']} matches no line"
        for line in matched:
            value = ALGORITHM.match_metric(definition["Name"], line)
            assert value is not None and np.isfinite(value)


def test_log_lines_have_sagemakers_shapes(tmp_path: Path, binary: tuple[np.ndarray, np.ndarray]) -> None:
    hyperparameters = {
        "predictor_type": "binary_classifier",
        "num_models": "3",
        "mini_batch_size": "200",
        "epochs": "2",
    }
    log, _ = train(tmp_path, hyperparameters, channels_for(tmp_path, binary, "dense"))
    assert "Reading default configuration from" in log and "Final configuration: {" in log
    assert re.search(
        r"Scaling model computed with parameters: \{'stdev_weight': '\[.*\]', 'stdev_label': None, 'mean_label': None, 'mean_weight': '\[",
        log,
    )
    assert re.search(
        r"#quality_metric: host=algo-1, epoch=0, train binary_classification_cross_entropy_objective <loss>=\S+\n",
        log,
    )
    assert re.search(
        r"#quality_metric: host=algo-1, epoch=1, validation binary_classification_cross_entropy_objective <loss>=\S+\n",
        log,
    )
    assert re.search(
        r"#early_stopping_criteria_metric: host=algo-1, epoch=0, criteria=sampled_accuracy, value=0\.\d+", log
    )
    assert "Epoch 0: Loss improved. Updating best model" in log
    assert "#progress_metric: host=algo-1, completed 50 % of epochs" in log
    assert re.search(r"#validation_score \(algo-1\) : \('binary_classification_accuracy', 0\.\d+\)", log)
    assert re.search(r"#quality_metric: host=algo-1, validation binary_f_1\.000 <score>=", log)
    assert "Test data is not provided." in log
    rows = [json.loads(line.split("#metrics ", 1)[1]) for line in log.splitlines() if "#metrics " in line]
    per_model = [row for row in rows if "model" in row["Dimensions"]]
    assert {(row["Dimensions"]["model"], row["Dimensions"]["epoch"]) for row in per_model} == {
        (m, e) for m in range(3) for e in range(2)
    }
    assert all(row["Dimensions"]["Algorithm"] == "Linear Learner" for row in rows)
    assert set(per_model[0]["Metrics"]) == {
        "train_binary_classification_cross_entropy_objective",
        "validation_binary_classification_cross_entropy_objective",
    }
    summary = rows[-1]["Metrics"]
    assert summary["epochs"]["sum"] == 2.0 and summary["totaltime"]["sum"] > 0
    best = json.loads(re.search(r"Best model found for hyperparameters: (\{.*\})", log).group(1))  # type: ignore[union-attr]
    assert set(best) == {
        "optimizer",
        "learning_rate",
        "wd",
        "l1",
        "lr_scheduler_step",
        "lr_scheduler_factor",
        "lr_scheduler_minimum_lr",
    }
    assert best["optimizer"] == "adam"


def test_tuning_jobs_train_a_single_model(tmp_path: Path, binary: tuple[np.ndarray, np.ndarray]) -> None:
    hyperparameters = {
        "predictor_type": "binary_classifier",
        "epochs": "2",
        "num_models": "8",
        "_tuning_objective_metric": "validation:binary_f_beta",
    }
    log, _ = train(tmp_path, hyperparameters, channels_for(tmp_path, binary, "dense"))
    models = {
        json.loads(line.split("#metrics ", 1)[1])["Dimensions"].get("model")
        for line in log.splitlines()
        if "#metrics " in line
    }
    assert models == {0, None}


def test_the_chosen_model_has_the_best_validation_loss(
    tmp_path: Path, regression: tuple[np.ndarray, np.ndarray]
) -> None:
    hyperparameters = {
        "predictor_type": "regressor",
        "epochs": "3",
        "mini_batch_size": "100",
        "num_models": "6",
        "early_stopping_patience": "5",
    }
    log, _ = train(tmp_path, hyperparameters, channels_for(tmp_path, regression, "dense"))
    rows = [json.loads(line.split("#metrics ", 1)[1]) for line in log.splitlines() if '"model"' in line]
    best_per_model: dict[int, float] = {}
    for row in rows:
        value = row["Metrics"]["validation_mse_objective"]["sum"]
        model = row["Dimensions"]["model"]
        best_per_model[model] = min(best_per_model.get(model, np.inf), value)
    assert final(log, "validation", "mse_objective") == pytest.approx(min(best_per_model.values()), rel=1e-4)


def test_early_stopping_stops_after_patience(tmp_path: Path, binary: tuple[np.ndarray, np.ndarray]) -> None:
    hyperparameters = {
        "predictor_type": "binary_classifier",
        "binary_classifier_model_selection_criteria": "loss_function",
        "epochs": "15",
        "early_stopping_patience": "2",
        "early_stopping_tolerance": "0.9",  # only a 90 % improvement counts
    }
    log, _ = train(tmp_path, hyperparameters, channels_for(tmp_path, binary, "dense"))
    assert len(epoch_values(log, "validation")) == 3
    assert "Epoch 2: Loss has not improved for 2 epochs." in log
    assert "Early stop condition met. Stopping training." in log
    assert "criteria=binary_classification_cross_entropy_objective" in log


def test_without_validation_the_training_data_decides(
    tmp_path: Path, binary: tuple[np.ndarray, np.ndarray]
) -> None:
    features, labels = binary
    channels = {"train": ChannelData(write_channel(tmp_path / "train", features, labels, "dense"), RECORDIO)}
    log, model_dir = train(
        tmp_path, {"predictor_type": "binary_classifier", "mini_batch_size": "200"}, channels
    )
    assert epoch_values(log, "validation") == []
    assert len(epoch_values(log, "train")) >= 4
    assert re.search(
        r"#quality_metric: host=algo-1, train binary_classification_cross_entropy_objective <loss>=", log
    )
    assert "#quality_metric: host=algo-1, validation" not in log
    model = ALGORITHM.load_model(model_dir)
    accuracy = np.mean((model.scores(features) >= model.threshold) == labels)
    assert accuracy > 0.85


# -- model behaviour -------------------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop"])
def test_every_optimizer_learns(
    tmp_path: Path, binary: tuple[np.ndarray, np.ndarray], optimizer: str
) -> None:
    hyperparameters = {
        "predictor_type": "binary_classifier",
        "optimizer": optimizer,
        "mini_batch_size": "100",
        "epochs": "5",
    }
    if optimizer == "sgd":
        hyperparameters["momentum"] = "0.5"
    log, _ = train(tmp_path, hyperparameters, channels_for(tmp_path, binary, "dense"))
    assert final(log, "validation", "binary_classification_accuracy") > 0.85
    assert f'"optimizer": "{optimizer}"' in log


def test_regression_labels_are_normalised_and_restored(
    tmp_path: Path, regression: tuple[np.ndarray, np.ndarray]
) -> None:
    hyperparameters = {"predictor_type": "regressor", "mini_batch_size": "100", "epochs": "10"}
    log, model_dir = train(tmp_path, hyperparameters, channels_for(tmp_path, regression, "dense"))
    assert final(log, "validation", "r2") > 0.99
    assert final(log, "validation", "rmse") < 60  # the noise is 20; labels sit around 5000 +- 350
    assert final(log, "validation", "mse_objective") == pytest.approx(
        final(log, "validation", "mse"), rel=1e-5
    )
    scaling = re.search(r"'stdev_label': (\S+), 'mean_label': (\S+),", log)
    assert scaling and float(scaling.group(2)) == pytest.approx(5000, rel=0.05)
    model = ALGORITHM.load_model(model_dir)
    features, labels = regression
    assert np.mean(np.abs(model.scores(features[:50]) - labels[:50])) < 60


def test_quantile_loss_predicts_the_quantile(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    features = rng.normal(size=(2000, 3)).astype(np.float32)
    labels = (features @ np.array([1.0, -2.0, 0.5]) + rng.exponential(2.0, size=2000)).astype(np.float32)
    hyperparameters = {
        "predictor_type": "regressor",
        "loss": "quantile_loss",
        "quantile": "0.9",
        "mini_batch_size": "100",
        "epochs": "15",
    }
    log, model_dir = train(tmp_path, hyperparameters, channels_for(tmp_path, (features, labels), "dense"))
    assert "quantile_loss_objective" in log
    model = ALGORITHM.load_model(model_dir)
    below = np.mean(labels <= model.scores(features))
    assert 0.85 < below < 0.95


def test_target_recall_is_met_on_the_calibration_data(
    tmp_path: Path, binary: tuple[np.ndarray, np.ndarray]
) -> None:
    hyperparameters = {
        "predictor_type": "binary_classifier",
        "binary_classifier_model_selection_criteria": "precision_at_target_recall",
        "target_recall": "0.97",
        "mini_batch_size": "200",
    }
    log, model_dir = train(tmp_path, hyperparameters, channels_for(tmp_path, binary, "dense"))
    assert final(log, "validation", "recall") >= 0.97
    assert "criteria=sampled_precision_at_target_recall" in log
    assert ALGORITHM.load_model(model_dir).threshold != 0.5


def test_positive_weight_balanced_raises_recall(tmp_path: Path) -> None:
    features, labels = make_classification(
        n_samples=2000,
        n_features=8,
        n_clusters_per_class=1,
        weights=[0.9, 0.1],
        class_sep=0.6,
        flip_y=0.05,
        random_state=3,
    )
    data = (features.astype(np.float32), labels.astype(np.float32))
    recalls = {}
    for setting in ("1.0", "balanced", "auto"):
        folder = tmp_path / setting
        hyperparameters = {
            "predictor_type": "binary_classifier",
            "positive_example_weight_mult": setting,
            "binary_classifier_model_selection_criteria": "loss_function",  # fixed 0.5 threshold
            "mini_batch_size": "200",
            "num_models": "4",
        }
        log, _ = train(folder, hyperparameters, channels_for(folder, data, "dense"))
        recalls[setting] = final(log, "validation", "recall")
        if setting == "auto":
            best = json.loads(re.search(r"Best model found for hyperparameters: (\{.*\})", log).group(1))  # type: ignore[union-attr]
            assert best["positive_example_weight_mult"] >= 1.0
    assert recalls["balanced"] > recalls["1.0"] + 0.1


def test_multiclass_class_weights_balance_the_classes(tmp_path: Path) -> None:
    features, labels = make_classification(
        n_samples=1600,
        n_features=8,
        n_informative=5,
        n_classes=3,
        n_clusters_per_class=1,
        weights=[0.7, 0.2, 0.1],
        random_state=4,
    )
    hyperparameters = {
        "predictor_type": "multiclass_classifier",
        "num_classes": "3",
        "balance_multiclass_weights": "true",
        "num_point_for_scaler": "1600",
        "mini_batch_size": "200",
    }
    log, _ = train(tmp_path, hyperparameters, channels_for(tmp_path, (features, labels), "dense"))
    weights = [float(v) for v in re.search(r"Class weights: \[(.*)\]", log).group(1).split()]  # type: ignore[union-attr]
    counts = np.bincount(labels[: int(0.75 * 1600)].astype(int), minlength=3)
    np.testing.assert_allclose(weights, counts.sum() / (3 * counts), rtol=1e-3)
    assert final(log, "validation", "multiclass_balanced_accuracy") > 0.6


def test_without_bias_the_model_has_none(tmp_path: Path, binary: tuple[np.ndarray, np.ndarray]) -> None:
    hyperparameters = {
        "predictor_type": "binary_classifier",
        "use_bias": "false",
        "init_method": "normal",
        "init_bias": "0.5",
    }
    _, model_dir = train(tmp_path, hyperparameters, channels_for(tmp_path, binary, "dense"))
    model = ALGORITHM.load_model(model_dir)
    assert np.all(model.bias == 0) and np.all(model.feature_mean == 0)
    assert np.all(model.raw_parameters()[1] == 0)


def test_sparse_training_never_densifies(
    tmp_path: Path, multiclass: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    features, labels = multiclass
    sparse = features.copy()
    sparse[np.abs(sparse) < 1.0] = 0.0
    channels = channels_for(tmp_path, (sparse, labels), "sparse", test=True)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a sparse matrix was densified")

    for cls in (sp.csr_matrix, sp.csc_matrix, sp.coo_matrix):
        monkeypatch.setattr(cls, "toarray", refuse)
        monkeypatch.setattr(cls, "todense", refuse)
    hyperparameters = {
        "predictor_type": "multiclass_classifier",
        "num_classes": "3",
        "feature_dim": "10",
        "unbias_data": "true",  # centring sparse data goes through the weights, not the data
        "mini_batch_size": "200",
    }
    log, _ = train(tmp_path, hyperparameters, channels)
    assert final(log, "test", "multiclass_accuracy") > 0.6
    assert "'mean_weight': '[" in log


# -- errors ----------------------------------------------------------------------------------------


def test_feature_dim_must_match_the_data(tmp_path: Path, binary: tuple[np.ndarray, np.ndarray]) -> None:
    channels = channels_for(tmp_path, binary, "dense")
    with pytest.raises(ClientError, match=r"^feature_dim=13 but the train channel has 12 features$"):
        train(tmp_path, {"predictor_type": "binary_classifier", "feature_dim": "13"}, channels)


def test_channels_must_agree_on_the_width(tmp_path: Path, binary: tuple[np.ndarray, np.ndarray]) -> None:
    features, labels = binary
    channels = {
        "train": ChannelData(write_channel(tmp_path / "train", features, labels, "csv"), CSV),
        "validation": ChannelData(
            write_channel(tmp_path / "validation", features[:, :11], labels, "csv"), CSV
        ),
    }
    with pytest.raises(
        ClientError, match="the validation channel has 11 features but earlier records have 12"
    ):
        train(tmp_path, {"predictor_type": "binary_classifier"}, channels)


@pytest.mark.parametrize(
    ("hyperparameters", "labels", "message"),
    [
        (
            {"predictor_type": "binary_classifier"},
            [0, 1, 2, 1],
            r"label 2\.0 but predictor_type=binary_classifier needs labels 0 or 1",
        ),
        (
            {"predictor_type": "multiclass_classifier", "num_classes": "3"},
            [0, 1, 3, 2],
            r"label 3\.0 but num_classes=3 needs integer labels from 0 to 2",
        ),
        ({"predictor_type": "multiclass_classifier", "num_classes": "3"}, [0, 1.5, 2, 1], r"label 1\.5"),
        ({"predictor_type": "regressor"}, [0.5, np.nan, 1, 2], "NaN or infinite labels"),
    ],
)
def test_bad_labels_are_client_errors(
    tmp_path: Path, hyperparameters: dict[str, str], labels: list[float], message: str
) -> None:
    features = np.arange(16, dtype=np.float32).reshape(4, 4)
    channels = {
        "train": ChannelData(write_channel(tmp_path / "train", features, np.array(labels), "dense"), RECORDIO)
    }
    with pytest.raises(ClientError, match=message):
        train(tmp_path, hyperparameters, channels)


def test_missing_labels_and_empty_channels_are_client_errors(tmp_path: Path) -> None:
    features = np.ones((5, 3), dtype=np.float32)
    unlabelled = {
        "train": ChannelData(write_channel(tmp_path / "unlabelled", features, None, "dense"), RECORDIO)
    }
    with pytest.raises(ClientError, match="the train channel has no labels"):
        train(tmp_path, {"predictor_type": "regressor"}, unlabelled)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "part-0").write_bytes(b"")
    empty = {"train": ChannelData(tmp_path / "empty", RECORDIO)}
    with pytest.raises(ClientError, match="the train channel has no records"):
        train(tmp_path, {"predictor_type": "regressor"}, empty)


def test_nan_features_are_client_errors(tmp_path: Path) -> None:
    features = np.ones((4, 3), dtype=np.float32)
    features[2, 1] = np.nan
    channels = {
        "train": ChannelData(write_channel(tmp_path / "train", features, np.zeros(4), "dense"), RECORDIO)
    }
    with pytest.raises(ClientError, match="NaN or infinite feature values"):
        train(tmp_path, {"predictor_type": "regressor"}, channels)


def test_unsupported_channel_types_and_bad_hyperparameters_fail_the_job(tmp_path: Path) -> None:
    features = np.ones((4, 3), dtype=np.float32)
    folder = write_channel(tmp_path / "train", features, np.zeros(4), "csv")
    with pytest.raises(ClientError, match="text/libsvm"):
        train(tmp_path, {"predictor_type": "regressor"}, {"train": ChannelData(folder, "text/libsvm")})
    with pytest.raises(ClientError, match="num_classes"):
        train(tmp_path, {"predictor_type": "multiclass_classifier"}, {"train": ChannelData(folder, CSV)})
    with pytest.raises(ClientError, match="requires a 'train' channel"):
        train(tmp_path, {"predictor_type": "regressor"}, {"validation": ChannelData(folder, CSV)})


def test_divergence_is_reported(tmp_path: Path, regression: tuple[np.ndarray, np.ndarray]) -> None:
    hyperparameters = {
        "predictor_type": "regressor",
        "optimizer": "sgd",
        "learning_rate": "1e30",
        "normalize_label": "false",
        "use_lr_scheduler": "false",
        "num_models": "2",
    }
    with pytest.raises(ClientError, match="training diverged in epoch 0: every model's mse_objective overflowed"):
        train(tmp_path, hyperparameters, channels_for(tmp_path, regression, "dense"))
