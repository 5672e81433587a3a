"""Benchmark: Factorization Machines, Random Cut Forest and IP Insights beside simple anchors.

Run as ``python bench/bench_fm_rcf_ipinsights.py`` (from the repository root, with ``src`` on the
path or the package installed). Every case trains through ``train_builtin`` exactly as a job does
(reading the channel files, logging, writing the artifact), on generated data, and reports the
median wall time of three runs beside an anchor fitted on the same arrays in the same process:

* FM regressor / binary classifier on sparse one-hot (user, item) data whose target is driven by
  user-item interactions, against scikit-learn's Ridge / LogisticRegression on the same CSR matrix
  (a linear model cannot represent the interactions; FM should beat it).
* RCF on Gaussian data with 1% injected anomalies, against scikit-learn's IsolationForest with the
  same number of trees and samples per tree: training time, scoring time and ROC AUC.
* IP Insights on generated login events (users with two home networks): ROC AUC of held-out real
  pairs against pairs with random IPs, against a counting baseline (how often the user was seen in
  the IP's /16 during training).
"""

from __future__ import annotations

import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from forgeml.algorithms.harness import ChannelData, train_builtin  # noqa: E402
from forgeml.algorithms.registry import get_algorithm  # noqa: E402
from forgeml.data.csv_format import write_csv  # noqa: E402
from forgeml.data.recordio_protobuf import write_spmatrix_to_sparse_tensor  # noqa: E402

RUNS = 3


def median_time(fn: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(RUNS):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def train(algorithm: str, hp: dict[str, str], channels: dict[str, ChannelData], model_dir: Path) -> Any:
    train_builtin(algorithm, hp, channels, model_dir, stream=io.StringIO())
    return get_algorithm(algorithm).load_model(model_dir)


# -- Factorization Machines -------------------------------------------------------------------------


def ratings(n: int, seed: int, users: int = 2000, items: int = 1000) -> tuple[sp.csr_matrix, np.ndarray]:
    truth = np.random.default_rng(0)
    user_f, item_f = truth.normal(size=(users, 4)), truth.normal(size=(items, 4))
    user_b, item_b = truth.normal(scale=0.5, size=users), truth.normal(scale=0.5, size=items)
    rng = np.random.default_rng(seed)
    u, i = rng.integers(0, users, n), rng.integers(0, items, n)
    y = (user_f[u] * item_f[i]).sum(axis=1) + user_b[u] + item_b[i] + 0.1 * rng.normal(size=n)
    x = sp.csr_matrix(
        (np.ones(2 * n, dtype=np.float32), np.stack([u, users + i], axis=1).ravel(), np.arange(0, 2 * n + 1, 2)),
        shape=(n, users + items),
    )
    return x, y.astype(np.float32)


def fm_fit(hp: dict[str, Any], x: sp.csr_matrix, labels: np.ndarray) -> Any:
    """Our FM training loop on in-memory mini-batches, as ``train`` runs it after reading."""
    from threadpoolctl import threadpool_limits

    from forgeml.algorithms.factorization_machines.train import fit
    from forgeml.algorithms.logging import AlgorithmLogger

    typed = get_algorithm("factorization-machines").validate_hyperparameters(hp)
    size = typed["mini_batch_size"]

    def batches() -> Any:
        for start in range(0, x.shape[0], size):
            yield x[start : start + size], labels[start : start + size]

    with threadpool_limits(limits=1, user_api="blas"):
        return fit(typed, batches, AlgorithmLogger(stream=io.StringIO()))


def fm_hp(kind: str, feature_dim: int) -> dict[str, str]:
    return {
        "feature_dim": str(feature_dim),
        "num_factors": "16",
        "predictor_type": kind,
        "epochs": "10",
        "mini_batch_size": "1000",
        "bias_lr": "0.02",
        "linear_lr": "0.02",
        "factors_lr": "0.02",
        "factors_init_sigma": "0.1",
    }


def bench_fm(tmp: Path) -> list[tuple]:
    from sklearn.linear_model import LogisticRegression, Ridge

    x, y = ratings(200_000, seed=1)
    xt, yt = ratings(20_000, seed=2)
    threshold = float(np.median(y))
    rows = []
    ours_time, model = median_time(lambda: fm_fit(fm_hp("regressor", x.shape[1]), x, y))
    anchor_time, ridge = median_time(lambda: Ridge(alpha=1.0).fit(x, y))
    rmse = float(np.sqrt(np.mean((model.predict(xt) - yt) ** 2)))
    ridge_rmse = float(np.sqrt(np.mean((ridge.predict(xt) - yt) ** 2)))
    rows.append(("FM regressor fit, 200k x 3000 sparse, 10 epochs (test RMSE)", ours_time, anchor_time, rmse, ridge_rmse, "RMSE below Ridge"))
    labels, test_labels = (y > threshold).astype(np.float32), (yt > threshold).astype(np.float32)
    ours_time, model = median_time(lambda: fm_fit(fm_hp("binary_classifier", x.shape[1]), x, labels))
    anchor_time, logistic = median_time(lambda: LogisticRegression(max_iter=200).fit(x, labels))
    rows.append(
        (
            "FM binary fit, 200k x 3000 sparse, 10 epochs (test AUC)",
            ours_time,
            anchor_time,
            auc(model.predict(xt), test_labels),
            auc(logistic.predict_proba(xt)[:, 1], test_labels),
            "AUC above LogisticRegression",
        )
    )
    return rows


def fm_job_note(tmp: Path) -> str:
    """One whole job (RecordIO read + fit + test + artifact) on 50k records, read cost shown apart."""
    from forgeml.data.recordio_protobuf import read_recordio_protobuf

    x, y = ratings(50_000, seed=3)
    folder = tmp / "fm_job"
    folder.mkdir()
    with open(folder / "train.pbr", "wb") as handle:
        write_spmatrix_to_sparse_tensor(handle, x, y)
    start = time.perf_counter()
    train("factorization-machines", fm_hp("regressor", x.shape[1]), {"train": ChannelData(folder)}, tmp / "fm_job_model")
    job = time.perf_counter() - start
    start = time.perf_counter()
    read_recordio_protobuf(folder / "train.pbr")
    read = time.perf_counter() - start
    return f"FM job end to end on 50k sparse RecordIO records, 10 epochs: {job:.2f} s, of which reading the channel {read:.2f} s"


# -- Random Cut Forest ------------------------------------------------------------------------------


def bench_rcf(tmp: Path) -> list[tuple]:
    from sklearn.ensemble import IsolationForest

    rng = np.random.default_rng(3)
    n, dim = 50_000, 6
    x = rng.normal(size=(n, dim)).astype(np.float32)
    anomalous = rng.choice(n, n // 100, replace=False)
    shifted = rng.random((anomalous.size, dim)) < 0.5  # anomalous in about half of the dimensions
    x[anomalous] += shifted * rng.choice([-1.0, 1.0], size=(anomalous.size, dim)) * rng.uniform(1.5, 3.5, size=(anomalous.size, dim))
    labels = np.zeros(n)
    labels[anomalous] = 1
    folder = tmp / "rcf"
    folder.mkdir()
    with open(folder / "train.csv", "wb") as handle:
        write_csv(handle, x)
    hp = {"feature_dim": str(dim), "num_trees": "100", "num_samples_per_tree": "256"}
    channels = {"train": ChannelData(folder, "text/csv;label_size=0")}
    ours_fit, forest = median_time(lambda: train("randomcutforest", hp, channels, tmp / "rcf_model"))
    iso = IsolationForest(n_estimators=100, max_samples=256, random_state=0)
    anchor_fit, _ = median_time(lambda: iso.fit(x))
    probe = x[:10_000]
    ours_score, ours_scores = median_time(lambda: forest.score(probe))
    anchor_score, iso_scores = median_time(lambda: -iso.score_samples(probe))
    return [
        ("RCF train 50k x 6 CSV, 100 trees x 256 (AUC)", ours_fit, anchor_fit, auc(forest.score(x), labels), auc(-iso.score_samples(x), labels), "AUC within 0.02 of IsolationForest"),
        ("RCF score 10k points x 100 trees (AUC)", ours_score, anchor_score, auc(ours_scores, labels[:10_000]), auc(iso_scores, labels[:10_000]), "seconds, not minutes"),
    ]


# -- IP Insights ------------------------------------------------------------------------------------


def login_events(n: int, seed: int, users: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    world = np.random.default_rng(42)
    isps = world.integers(1, 224, size=(200, 2), dtype=np.uint64)
    homes = world.integers(0, 200, size=(users, 2))
    subnets = world.integers(0, 256, size=(users, 2), dtype=np.uint64)
    rng = np.random.default_rng(seed)
    user = rng.integers(0, users, n)
    which = rng.integers(0, 2, n)
    isp = isps[homes[user, which]]
    ips = (isp[:, 0] << 24) | (isp[:, 1] << 16) | (subnets[user, which] << 8) | rng.integers(0, 256, n, dtype=np.uint64)
    return user, ips.astype(np.uint32)


def dotted(ips: np.ndarray) -> list[str]:
    return [f"{ip >> 24}.{(ip >> 16) & 255}.{(ip >> 8) & 255}.{ip & 255}" for ip in ips.tolist()]


def bench_ipinsights(tmp: Path) -> list[tuple]:
    from forgeml.algorithms.ip_insights.encoding import entity_buckets, random_ipv4

    users, ips = login_events(200_000, seed=1)
    folder = tmp / "ipinsights"
    folder.mkdir()
    names = [f"user_{u}" for u in users.tolist()]
    (folder / "train.csv").write_text("".join(f"{e},{ip}\n" for e, ip in zip(names, dotted(ips), strict=True)))
    hp = {
        "num_entity_vectors": "6000",
        "vector_dim": "32",
        "epochs": "5",
        "mini_batch_size": "1000",
        "learning_rate": "0.01",
    }
    ours_time, model = median_time(lambda: train("ipinsights", hp, {"train": ChannelData(folder)}, tmp / "ipi_model"))
    test_users, test_ips = login_events(20_000, seed=2)
    random_ips = random_ipv4(np.random.default_rng(5), test_users.size)
    other_ips = test_ips[np.roll(np.arange(test_users.size), 1)]  # another user's real login
    rows = entity_buckets(np.array([f"user_{u}" for u in test_users.tolist()], dtype=object), 6000)
    labels = np.r_[np.ones(test_users.size), np.zeros(test_users.size)]
    real = model.dot_products(rows, test_ips)

    def counting_baseline() -> dict[int, int]:
        keys, counts = np.unique(users.astype(np.int64) * 65536 + (ips >> 16), return_counts=True)
        return dict(zip(keys.tolist(), counts.tolist(), strict=True))

    anchor_time, seen = median_time(counting_baseline)

    def counts(negatives: np.ndarray) -> np.ndarray:
        probe = np.r_[test_users, test_users].astype(np.int64) * 65536 + (np.r_[test_ips, negatives] >> 16)
        return np.array([seen.get(k, 0) for k in probe.tolist()], dtype=float)

    results = []
    for what, negatives, target in (("random IP", random_ips, "AUC >= 0.95"), ("another user's IP", other_ips, "AUC >= 0.9")):
        ours_q = auc(np.r_[real, model.dot_products(rows, negatives)], labels)
        results.append((f"IP Insights 200k events, 5 epochs (AUC real vs {what})", ours_time, anchor_time, ours_q, auc(counts(negatives), labels), target))
    return results


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        rows = bench_fm(tmp) + bench_rcf(tmp) + bench_ipinsights(tmp)
        note = fm_job_note(tmp)
    header = ("case", "ours time s", "anchor time s", "ratio", "ours quality", "anchor quality", "target")
    table = [header] + [
        (case, f"{ours:.3f}", f"{anchor:.3f}", f"{ours / anchor:.2f}", f"{q_ours:.4f}", f"{q_anchor:.4f}", target)
        for case, ours, anchor, q_ours, q_anchor, target in rows
    ]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for index, row in enumerate(table):
        print(" | ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            print("-+-".join("-" * width for width in widths))
    print("anchors: scikit-learn Ridge / LogisticRegression / IsolationForest; IP Insights: per-user /16 visit counts")
    print(note)


if __name__ == "__main__":
    main()
