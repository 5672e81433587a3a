"""Linear Learner benchmark: our training job beside scikit-learn on the same data, in one process.

Cases: seed 000's UFO job (the shared RecordIO files when present, else a generated 3-class set of
the same shape), a binary and a regression problem, and a sparse binary problem. "ours" is the
algorithm's whole ``train`` with the channels already in memory (scale, train every parallel
model, early-stop, select, calibrate, score validation, write the artifact), beside the
scikit-learn estimator's ``fit`` on the same in-memory arrays (plus its scaler). Times are medians
of ``REPEATS`` runs; quality is measured on the same validation rows for both. A second listing
times one whole job through ``train_builtin``, reading the RecordIO files as a job does.

Run: ``python bench/bench_linear_learner.py``
"""

from __future__ import annotations

import io
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier
from sklearn.metrics import accuracy_score, r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from forgeml.algorithms.base import ChannelInput
from forgeml.algorithms.harness import ChannelData, build_context, train_builtin
from forgeml.algorithms.linear_learner import ALGORITHM
from forgeml.data.dataset import RecordBatch
from forgeml.data.recordio_protobuf import (
    read_recordio_protobuf,
    write_numpy_to_dense_tensor,
    write_spmatrix_to_sparse_tensor,
)

REPEATS = 3
RECORDIO = "application/x-recordio-protobuf"
UFO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ufo"
UFO_HYPERPARAMETERS = {
    "feature_dim": "22",
    "predictor_type": "multiclass_classifier",
    "num_classes": "3",
    "epochs": "15",
    "l1": "0.0005953224641699573",
    "learning_rate": "0.04380096472026997",
    "mini_batch_size": "2977",
    "use_bias": "true",
    "wd": "0.0019134739491125144",
}


@dataclass
class Case:
    name: str
    hyperparameters: dict[str, str]
    train: tuple[np.ndarray | sp.csr_matrix, np.ndarray]
    validation: tuple[np.ndarray | sp.csr_matrix, np.ndarray]
    metric: str  # the log's validation metric, also computed for the anchor
    target: str


@dataclass
class Row:
    case: str
    ours_seconds: float
    anchor_seconds: float
    ours_quality: float
    anchor_quality: float
    target: str


def median_time(run: Callable[[], object]) -> tuple[float, object]:
    times, result = [], None
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def write(folder: Path, data: tuple[np.ndarray | sp.csr_matrix, np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    features, labels = data
    with open(folder / "part-0.pbr", "wb") as handle:
        if sp.issparse(features):
            write_spmatrix_to_sparse_tensor(
                handle, sp.csr_matrix(features, dtype=np.float32), labels.astype(np.float32)
            )
        else:
            write_numpy_to_dense_tensor(
                handle, np.asarray(features, dtype=np.float32), labels.astype(np.float32)
            )
    return folder


@dataclass
class MemoryChannel(ChannelInput):
    """A channel already in memory: times the training itself, like the anchor's ``fit``."""

    batch: RecordBatch | None = None

    def read(self) -> RecordBatch:
        assert self.batch is not None
        return self.batch


def as_batch(data: tuple[np.ndarray | sp.csr_matrix, np.ndarray]) -> RecordBatch:
    """What reading the channel yields: float32 CSR or dense features and float32 labels."""
    features, labels = data
    if sp.issparse(features):
        return RecordBatch(sp.csr_matrix(features, dtype=np.float32), labels.astype(np.float32))
    return RecordBatch(np.ascontiguousarray(features, dtype=np.float32), labels.astype(np.float32))


def ours(case: Case, root: Path) -> tuple[float, float, float]:
    """(median seconds with the data in memory, validation metric, seconds of one whole job)."""
    files = {
        "train": ChannelData(write(root / "train", case.train)),
        "validation": ChannelData(write(root / "validation", case.validation)),
    }
    batches = {
        name: as_batch(data) for name, data in (("train", case.train), ("validation", case.validation))
    }

    def in_memory() -> str:
        stream = io.StringIO()
        with tempfile.TemporaryDirectory() as scratch:
            ctx = build_context(
                ALGORITHM,
                case.hyperparameters,
                files,
                Path(scratch) / "model",
                Path(scratch) / "out",
                stream=stream,
            )
            ctx.channels = {
                name: MemoryChannel(name, files[name].path, RECORDIO, batch=batch)
                for name, batch in batches.items()
            }
            ALGORITHM.train(ctx)
        return stream.getvalue()

    def whole_job() -> None:
        with tempfile.TemporaryDirectory() as scratch:
            train_builtin(
                "linear-learner", case.hyperparameters, files, Path(scratch) / "model", stream=io.StringIO()
            )

    seconds, log = median_time(in_memory)
    found = re.findall(rf"#quality_metric: host=algo-1, validation {case.metric} <\w+>=(\S+)", str(log))
    start = time.perf_counter()
    whole_job()
    return seconds, float(found[-1]), time.perf_counter() - start


def anchor(case: Case, make: Callable[[], object], score: Callable[[object], float]) -> tuple[float, float]:
    features, labels = case.train

    def fit() -> object:
        estimator = make()
        estimator.fit(features, labels)  # type: ignore[attr-defined]
        return estimator

    seconds, estimator = median_time(fit)
    return seconds, score(estimator)


def ufo_data() -> tuple[str, tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    train_file = UFO / "ufo_sightings_train_recordIO_protobuf.data"
    validation_file = UFO / "ufo_sightings_validation_recordIO_protobuf.data"
    if train_file.is_file() and validation_file.is_file():
        train = read_recordio_protobuf(train_file)
        validation = read_recordio_protobuf(validation_file)
        assert train.labels is not None and validation.labels is not None
        return "ufo (seed 000)", (train.features, train.labels), (validation.features, validation.labels)
    features, labels = make_classification(
        n_samples=16_203,
        n_features=22,
        n_informative=10,
        n_classes=3,
        weights=[0.18, 0.71, 0.11],
        random_state=0,
    )
    features = features.astype(np.float32)
    return (
        "ufo-shaped (generated)",
        (features[:14_430], labels[:14_430]),
        (features[14_430:], labels[14_430:]),
    )


def accuracy_of(validation: tuple[np.ndarray | sp.csr_matrix, np.ndarray]) -> Callable[[object], float]:
    return lambda estimator: float(accuracy_score(validation[1], estimator.predict(validation[0])))  # type: ignore[attr-defined]


def main() -> None:
    rows: list[Row] = []
    name, train, validation = ufo_data()
    ufo = Case(name, UFO_HYPERPARAMETERS, train, validation, "multiclass_accuracy", "< 3 s; accuracy >= 0.94")
    binary_x, binary_y = make_classification(
        n_samples=60_000, n_features=50, n_informative=20, n_clusters_per_class=1, flip_y=0.05, random_state=1
    )
    binary = Case(
        "binary 50k x 50",
        {"predictor_type": "binary_classifier", "feature_dim": "50"},
        (binary_x[:50_000], binary_y[:50_000]),
        (binary_x[50_000:], binary_y[50_000:]),
        "binary_classification_accuracy",
        "accuracy within 0.01",
    )
    reg_x, reg_y = make_regression(
        n_samples=60_000, n_features=50, n_informative=30, noise=10.0, bias=500.0, random_state=2
    )
    regression = Case(
        "regression 50k x 50",
        {"predictor_type": "regressor", "feature_dim": "50"},
        (reg_x[:50_000], reg_y[:50_000]),
        (reg_x[50_000:], reg_y[50_000:]),
        "r2",
        "r2 within 0.01",
    )
    rng = np.random.default_rng(3)
    sparse_x = sp.random(60_000, 2_000, density=0.01, format="csr", random_state=4, dtype=np.float64)
    sparse_x.data[:] = 1.0
    truth = rng.normal(size=2_000)
    sparse_y = ((sparse_x @ truth + rng.normal(0, 0.5, 60_000)) > 0).astype(np.float64)
    sparse = Case(
        "sparse binary 50k x 2000 (1%)",
        {"predictor_type": "binary_classifier", "feature_dim": "2000"},
        (sparse_x[:50_000], sparse_y[:50_000]),
        (sparse_x[50_000:], sparse_y[50_000:]),
        "binary_classification_accuracy",
        "accuracy within 0.01",
    )
    anchors: list[tuple[Case, str, Callable[[], object], Callable[[object], float]]] = [
        (
            ufo,
            "LogisticRegression",
            lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
            accuracy_of(ufo.validation),
        ),
        (
            ufo,
            "SGDClassifier",
            lambda: make_pipeline(
                StandardScaler(), SGDClassifier(loss="log_loss", max_iter=15, tol=None, random_state=0)
            ),
            accuracy_of(ufo.validation),
        ),
        (
            binary,
            "LogisticRegression",
            lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
            accuracy_of(binary.validation),
        ),
        (
            regression,
            "Ridge",
            lambda: make_pipeline(StandardScaler(), Ridge()),
            lambda est: float(r2_score(regression.validation[1], est.predict(regression.validation[0]))),
        ),  # type: ignore[attr-defined]
        (
            sparse,
            "LogisticRegression",
            lambda: LogisticRegression(max_iter=1000),
            accuracy_of(sparse.validation),
        ),
    ]
    measured: dict[str, tuple[float, float, float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for number, (case, anchor_name, make, score) in enumerate(anchors):
            if case.name not in measured:
                measured[case.name] = ours(case, Path(scratch) / str(number))
            ours_seconds, ours_quality, _ = measured[case.name]
            anchor_seconds, anchor_quality = anchor(case, make, score)
            rows.append(
                Row(
                    f"{case.name} vs {anchor_name}",
                    ours_seconds,
                    anchor_seconds,
                    ours_quality,
                    anchor_quality,
                    case.target,
                )
            )
    print_table(rows)
    print()
    print("whole job (train_builtin: read the RecordIO channel files, train, score, save), one run:")
    for name, (_, _, job_seconds) in measured.items():
        print(f"  {name}: {job_seconds:.3f} s")


def print_table(rows: list[Row]) -> None:
    header = ("case", "ours time s", "anchor time s", "ratio", "ours quality", "anchor quality", "target")
    cells = [
        (
            r.case,
            f"{r.ours_seconds:.3f}",
            f"{r.anchor_seconds:.3f}",
            f"{r.ours_seconds / r.anchor_seconds:.2f}",
            f"{r.ours_quality:.4f}",
            f"{r.anchor_quality:.4f}",
            r.target,
        )
        for r in rows
    ]
    widths = [max(len(str(line[i])) for line in [header, *cells]) for i in range(len(header))]
    for line in [header, tuple("-" * w for w in widths), *cells]:
        print("  ".join(str(value).ljust(width) for value, width in zip(line, widths, strict=True)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
