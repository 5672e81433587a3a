"""K-Means, PCA and k-NN beside scikit-learn: training time and quality on the same data.

Run: ``python bench/bench_kmeans_pca_knn.py`` (about a minute on two cores). Ours is timed end to
end as a job runs it, ``train_builtin`` reading a RecordIO-protobuf (or CSV) channel from disk and
writing ``model_algo-1``; scikit-learn is timed fitting the same rows already in memory. Times are
medians of ``REPEATS`` alternating runs. Target: ours within 1.5× of scikit-learn's time at equal quality.

Quality columns:
* K-Means: inertia on the training rows (sum of squared distances to the closest centroid; lower is
  better). scikit-learn runs Lloyd's with n_init=1 and k-means++ seeding (ours: SageMaker defaults,
  random seeding of k×10 centres, then a k-means++-seeded local Lloyd's).
* PCA: share of the data's variance the components capture (higher is better); regular mode vs
  ``svd_solver="full"``, randomized mode vs ``svd_solver="randomized"``.
* k-NN: test accuracy; our ``test`` channel is scored inside the job, so scikit-learn's time is
  ``fit`` + ``score`` on the same test rows.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sklearn.cluster import KMeans  # noqa: E402
from sklearn.datasets import load_digits, make_blobs, make_classification  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402

from forgeml.algorithms.harness import ChannelData, train_builtin  # noqa: E402
from forgeml.algorithms.kmeans.webscale import nearest_centers  # noqa: E402
from forgeml.algorithms.registry import get_algorithm  # noqa: E402
from forgeml.data.csv_format import write_csv  # noqa: E402
from forgeml.data.recordio_protobuf import write_numpy_to_dense_tensor  # noqa: E402

REPEATS = 5
RECORDIO = "application/x-recordio-protobuf"
CSV0 = "text/csv;label_size=0"


def race(ours: Callable[[], Any], anchor: Callable[[], Any]) -> tuple[float, Any, float, Any]:
    """Median wall times of REPEATS alternating runs of each, and each one's last result.

    Alternating keeps both sides under the same background load on a shared machine.
    """
    ours_times: list[float] = []
    anchor_times: list[float] = []
    ours_result = anchor_result = None
    for _ in range(REPEATS):
        start = time.perf_counter()
        ours_result = ours()
        ours_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        anchor_result = anchor()
        anchor_times.append(time.perf_counter() - start)
    return statistics.median(ours_times), ours_result, statistics.median(anchor_times), anchor_result


def write_channel(
    folder: Path, features: np.ndarray, labels: np.ndarray | None = None, csv: bool = False
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "part-0", "wb") as handle:
        if csv:
            write_csv(handle, features, labels)
        else:
            write_numpy_to_dense_tensor(handle, features, labels)
    return folder


def train(
    algorithm: str, hyperparameters: dict[str, str], channels: dict[str, ChannelData], model_dir: Path
) -> str:
    shutil.rmtree(model_dir, ignore_errors=True)
    stream = io.StringIO()
    train_builtin(algorithm, hyperparameters, channels, model_dir, stream=stream)
    return stream.getvalue()


def kmeans_case(tmp: Path, name: str, features: np.ndarray, k: int, csv: bool = False) -> list[Any]:
    folder = write_channel(tmp / name, features, csv=csv)
    model_dir = tmp / f"{name}-model"
    hyperparameters = {"k": str(k), "feature_dim": str(features.shape[1])}
    channel = {"train": ChannelData(folder, CSV0 if csv else RECORDIO)}
    ours_time, _, anchor_time, anchor = race(
        lambda: train("kmeans", hyperparameters, channel, model_dir),
        lambda: KMeans(n_clusters=k, n_init=1, init="k-means++", random_state=0).fit(features),
    )
    centroids = get_algorithm("kmeans").load_model(model_dir).centroids
    ours_inertia = float(nearest_centers(features, centroids)[1].sum())
    return [
        f"kmeans {name}",
        ours_time,
        anchor_time,
        f"inertia {ours_inertia:.4g}",
        f"inertia {anchor.inertia_:.4g}",
    ]


def captured_variance(features: np.ndarray, components: np.ndarray) -> float:
    centred = features - features.mean(axis=0)
    return float(np.sum((centred @ components) ** 2) / np.sum(centred**2))


def pca_case(tmp: Path, name: str, features: np.ndarray, components: int, mode: str) -> list[Any]:
    folder = write_channel(tmp / name, features)
    model_dir = tmp / f"{name}-{mode}-model"
    hyperparameters = {
        "feature_dim": str(features.shape[1]),
        "num_components": str(components),
        "mini_batch_size": "5000",
        "algorithm_mode": mode,
    }
    solver = "full" if mode == "regular" else "randomized"
    ours_time, _, anchor_time, anchor = race(
        lambda: train("pca", hyperparameters, {"train": ChannelData(folder, RECORDIO)}, model_dir),
        lambda: PCA(n_components=components, svd_solver=solver, random_state=0).fit(features),
    )
    ours = captured_variance(features, get_algorithm("pca").load_model(model_dir).v)
    theirs = captured_variance(features, anchor.components_.T)
    return [f"pca {name} {mode}", ours_time, anchor_time, f"variance {ours:.4f}", f"variance {theirs:.4f}"]


def knn_case(tmp: Path, name: str, data: tuple[np.ndarray, ...], k: int, index_type: str) -> list[Any]:
    train_x, train_y, test_x, test_y = data
    channels = {
        "train": ChannelData(write_channel(tmp / f"{name}-train", train_x, train_y), RECORDIO),
        "test": ChannelData(write_channel(tmp / f"{name}-test", test_x, test_y), RECORDIO),
    }
    hyperparameters = {
        "feature_dim": str(train_x.shape[1]),
        "k": str(k),
        "predictor_type": "classifier",
        "sample_size": str(len(train_x)),
        "index_type": index_type,
    }
    ours_time, log, anchor_time, anchor = race(
        lambda: train("knn", hyperparameters, channels, tmp / f"{name}-model"),
        lambda: KNeighborsClassifier(n_neighbors=k).fit(train_x, train_y).score(test_x, test_y),
    )
    ours = float(re.findall(r"test accuracy <score>=(\S+)", log)[-1])
    return [
        f"knn {name} {index_type}",
        ours_time,
        anchor_time,
        f"accuracy {ours:.4f}",
        f"accuracy {anchor:.4f}",
    ]


def main() -> None:
    digits = load_digits().data.astype(np.float32)
    blobs, _ = make_blobs(100_000, n_features=20, centers=10, cluster_std=2.0, random_state=0)
    blobs = blobs.astype(np.float32)
    rng = np.random.default_rng(0)
    # 60,000 × 100 with a decaying spectrum (a correlated, MNIST-like shape)
    spectrum = np.exp(-np.arange(100) / 12.0)
    mixing = np.linalg.qr(rng.normal(size=(100, 100)))[0]
    wide = ((rng.normal(size=(60_000, 100)) * spectrum) @ mixing.T + 1.0).astype(np.float32)
    features, labels = make_classification(
        45_000, 30, n_informative=12, n_classes=4, n_clusters_per_class=2, class_sep=1.5, random_state=0
    )
    features = features.astype(np.float32)
    labels = labels.astype(np.float32)
    classification = (features[:40_000], labels[:40_000], features[40_000:], labels[40_000:])

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        rows.append(kmeans_case(tmp, "blobs 100k×20 k=10", blobs, 10))
        rows.append(kmeans_case(tmp, "digits 1797×64 k=10 (csv)", digits, 10, csv=True))
        rows.append(pca_case(tmp, "60k×100 k=10", wide, 10, "regular"))
        rows.append(pca_case(tmp, "60k×100 k=10", wide, 10, "randomized"))
        rows.append(pca_case(tmp, "digits k=10", digits, 10, "regular"))
        rows.append(knn_case(tmp, "40k×30 (5k test) k=10", classification, 10, "faiss.Flat"))
        rows.append(knn_case(tmp, "40k×30 (5k test) k=10", classification, 10, "faiss.IVFFlat"))

    header = ["case", "ours time s", "anchor time s", "ratio", "ours quality", "anchor quality", "target"]
    table = [header]
    for case, ours_time, anchor_time, ours_quality, anchor_quality in rows:
        table.append(
            [
                case,
                f"{ours_time:.3f}",
                f"{anchor_time:.3f}",
                f"{ours_time / anchor_time:.2f}",
                ours_quality,
                anchor_quality,
                "≤1.5× time, equal quality",
            ]
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    print(
        f"threads: {os.cpu_count()} cores; median of {REPEATS} runs; ours = train_builtin from files on disk"
    )
    for number, row in enumerate(table):
        print(" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if number == 0:
            print("-+-".join("-" * width for width in widths))


if __name__ == "__main__":
    main()
