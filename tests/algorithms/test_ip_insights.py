"""IP Insights: encodings, hyperparameters, training with validation AUC, artifact, inference."""

from __future__ import annotations

import io
import json
import re
import zipfile
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from forgeml.algorithms.base import InferenceError, UnsupportedContentType
from forgeml.algorithms.common import mxnet_ndarray
from forgeml.algorithms.common.artifact import MODEL_FILE
from forgeml.algorithms.harness import ChannelData, train_builtin
from forgeml.algorithms.hyperparameters import HyperparameterError
from forgeml.algorithms.ip_insights.encoding import (
    IP_TABLE_ROWS,
    entity_buckets,
    ip_prefix_rows,
    parse_ipv4,
    random_ipv4,
)
from forgeml.algorithms.ip_insights.model import initial_model
from forgeml.algorithms.ip_insights.train import batch_gradients, discriminator_auc, negative_layout
from forgeml.algorithms.registry import get_algorithm
from forgeml.errors import ClientError
from forgeml.runtime.pipe import PipeFeeder

ALGO = get_algorithm("ipinsights")
N_ENTITIES = 300


def events(n: int, seed: int) -> tuple[list[str], list[str]]:
    """Users who log in from two home /24 networks inside a few dozen ISPs' /16s."""
    world = np.random.default_rng(42)
    isps = world.integers(1, 224, size=(30, 2))
    homes = world.integers(0, 30, size=(N_ENTITIES, 2))
    subnets = world.integers(0, 256, size=(N_ENTITIES, 2))
    rng = np.random.default_rng(seed)
    users = rng.integers(0, N_ENTITIES, n)
    which = rng.integers(0, 2, n)
    prefix = isps[homes[users, which]]
    hosts = rng.integers(0, 256, n)
    ips = [f"{a}.{b}.{c}.{d}" for a, b, c, d in zip(prefix[:, 0], prefix[:, 1], subnets[users, which], hosts, strict=True)]
    return [f"user_{u}" for u in users], ips


def write_events(folder: Path, entities: list[str], ips: list[str], name: str = "events.csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(f"{e}, {ip}\n" for e, ip in zip(entities, ips, strict=True)))
    return folder


HP = {
    "num_entity_vectors": "600",
    "vector_dim": "16",
    "epochs": "4",
    "mini_batch_size": "250",
    "learning_rate": "0.02",
    "batch_metrics_publish_interval": "20",
}


def run(tmp: Path, hp: dict[str, str], channels: dict[str, ChannelData]) -> tuple[str, Path]:
    stream = io.StringIO()
    model_dir = tmp / "model"
    train_builtin("ipinsights", hp, channels, model_dir, stream=stream)
    return stream.getvalue(), model_dir


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("ipinsights")
    train = write_events(tmp / "train", *events(12000, seed=1))
    validation = write_events(tmp / "validation", *events(2000, seed=2))
    log, model_dir = run(tmp, HP, {"train": ChannelData(train), "validation": ChannelData(validation)})
    return {"log": log, "model_dir": model_dir}


def metric(log: str, name: str) -> list[float]:
    definition = next(d for d in ALGO.metric_definitions if d["Name"] == name)
    return [float(m.group(1)) for m in re.finditer(definition["Regex"], log)]


# -- encodings ------------------------------------------------------------------------------------


def test_parse_ipv4() -> None:
    ips, bad = parse_ipv4(["1.2.3.4", " 255.255.255.255 ", "0.0.0.0"])
    assert bad is None and ips.tolist() == [0x01020304, 0xFFFFFFFF, 0]
    for wrong in ("256.1.1.1", "1.2.3", "a.b.c.d", "1.2.3.4.5", "::1"):
        assert parse_ipv4(["1.1.1.1", wrong])[1] == 1, wrong


def test_prefix_rows_share_parameters_between_neighbours() -> None:
    ips, _ = parse_ipv4(["10.20.30.1", "10.20.30.200", "10.20.99.1", "11.0.0.0"])
    rows = ip_prefix_rows(ips)
    assert rows[0].tolist() == rows[1].tolist()  # same /24
    assert rows[0, :2].tolist() == rows[2, :2].tolist() and rows[0, 2] != rows[2, 2]
    assert rows[3, 0] != rows[0, 0]
    random_rows = ip_prefix_rows(random_ipv4(np.random.default_rng(0), 1000))
    assert random_rows.min() >= 0 and random_rows.max() < IP_TABLE_ROWS


def test_entity_buckets_are_stable_and_in_range() -> None:
    first = entity_buckets(["alice", "bob", "alice"], 1000)
    assert first[0] == first[2] and first.min() >= 0 and first.max() < 1000
    assert entity_buckets(["alice"], 1000)[0] == first[0]


def test_auc() -> None:
    assert discriminator_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    assert discriminator_auc(np.array([1.0, 1.0]), np.array([1, 0])) == 0.5


def test_shuffled_negatives_never_pair_a_row_with_its_own_ip() -> None:
    entity, ip = negative_layout(50, 2, 3, np.random.default_rng(0))
    assert entity.shape == ip.shape == (50 * 6,)
    shuffled = slice(50 * 3, None)
    assert np.all(entity[shuffled] != ip[shuffled])
    assert np.all(ip[50:150] >= 50)  # random negatives point at the random IPs


def test_gradients_match_finite_differences() -> None:
    rng = np.random.default_rng(0)
    model = initial_model(20, 4, 2, rng)
    for weight in model.weights:
        weight *= 3.0  # keep the ReLU layer mostly active
    ips = parse_ipv4(["1.2.3.4", "9.8.7.6", "200.1.1.1", "1.2.99.4"])[0]
    pair_ip = np.array([0, 1, 2, 3, 1, 0])
    pair_entities = np.array([3, 7, 3, 11, 3, 11])
    labels = np.array([1, 1, 1, 1, 0, 0], dtype=float)

    def loss() -> float:
        scores = model.dot_products(pair_entities, ips[pair_ip])
        return float(np.sum(np.logaddexp(0, scores) - labels * scores))

    grads = batch_gradients(model, pair_entities, ips, pair_ip, labels)

    def numeric(array: np.ndarray, index: tuple[int, ...]) -> float:
        original = array[index]
        array[index] = original + 1e-2
        up = loss()
        array[index] = original - 1e-2
        down = loss()
        array[index] = original
        return (up - down) / 2e-2

    entity_pos = int(np.flatnonzero(grads.entity_rows == 7)[0])
    assert grads.entity_table[entity_pos, 1] == pytest.approx(numeric(model.entity_table, (7, 1)), rel=2e-2, abs=1e-4)
    table_row = int(grads.table_rows[0])
    assert grads.ip_table[0, 2] == pytest.approx(numeric(model.ip_table, (table_row, 2)), rel=2e-2, abs=1e-4)
    assert grads.weights[0][1, 2] == pytest.approx(numeric(model.weights[0], (1, 2)), rel=2e-2, abs=1e-4)
    assert grads.biases[1][3] == pytest.approx(numeric(model.biases[1], (3,)), rel=2e-2, abs=1e-4)


# -- hyperparameters ------------------------------------------------------------------------------


def test_defaults() -> None:
    values = ALGO.validate_hyperparameters({"num_entity_vectors": "100", "vector_dim": "8"})
    assert values["epochs"] == 10 and values["mini_batch_size"] == 10000 and values["learning_rate"] == 0.001
    assert values["num_ip_encoder_layers"] == 1 and values["batch_metrics_publish_interval"] == 1000
    assert values["random_negative_sampling_rate"] == 1 and values["shuffled_negative_sampling_rate"] == 1
    assert values["weight_decay"] == 0.00001


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"vectordim": "8"}, "vectordim"),
        ({"vector_dim": "3"}, "vector_dim"),
        ({"vector_dim": "eight"}, "vector_dim"),
        ({"learning_rate": "11"}, "learning_rate"),
        ({"num_ip_encoder_layers": "101"}, "num_ip_encoder_layers"),
        ({"mini_batch_size": "500001"}, "mini_batch_size"),
        ({"random_negative_sampling_rate": "0", "shuffled_negative_sampling_rate": "0"}, "shuffled_negative_sampling_rate"),
        ({"random_negative_sampling_rate": "300", "shuffled_negative_sampling_rate": "201"}, "random_negative_sampling_rate"),
        ({"num_entity_vectors": "250000000", "vector_dim": "4096"}, "num_entity_vectors"),
    ],
)
def test_invalid_hyperparameters_name_the_parameter(change: dict[str, str], named: str) -> None:
    with pytest.raises(HyperparameterError, match=named):
        ALGO.validate_hyperparameters({"num_entity_vectors": "100", "vector_dim": "8", **change})


def test_missing_required() -> None:
    with pytest.raises(HyperparameterError, match="num_entity_vectors"):
        ALGO.validate_hyperparameters({"vector_dim": "8"})


# -- training -------------------------------------------------------------------------------------


def test_validation_auc_is_high_and_improves(trained: dict) -> None:
    auc = metric(trained["log"], "validation:discriminator_auc")
    assert len(auc) == 4 and auc[-1] > 0.95 and auc[-1] >= auc[0]
    assert "#validation_score (algo-1) : ('discriminator_auc', " in trained["log"]


def test_every_metric_definition_matches(trained: dict) -> None:
    for definition in ALGO.metric_definitions:
        assert re.search(definition["Regex"], trained["log"]), definition["Name"]
    batches = metric(trained["log"], "train:binary_classification_accuracy")
    assert len(batches) == 4 * 2  # 48 batches per epoch, a line every 20
    assert len(metric(trained["log"], "train:binary_classification_cross_entropy:epoch")) == 4
    assert re.search(r"Epoch\[0\] Batch \[20\]\tSpeed: \S+ samples/sec", trained["log"])


def test_training_without_validation_and_without_encoder_layers(tmp_path: Path) -> None:
    folder = write_events(tmp_path / "train", *events(3000, seed=5))
    hp = {**HP, "epochs": "2", "num_ip_encoder_layers": "0", "random_negative_sampling_rate": "0", "shuffled_negative_sampling_rate": "2"}
    log, model_dir = run(tmp_path, hp, {"train": ChannelData(folder)})
    assert metric(log, "validation:discriminator_auc") == []
    assert len(metric(log, "train:binary_classification_accuracy:epoch")) == 2
    assert ALGO.load_model(model_dir).weights == []


def test_pipe_mode_is_refused(tmp_path: Path) -> None:
    folder = write_events(tmp_path / "data", *events(100, seed=3))
    feeder = PipeFeeder("train", tmp_path / "pipes", [str(folder / "events.csv")], partial(open, mode="rb"))
    feeder.start()
    try:
        with pytest.raises(ClientError, match="File input mode only"):
            run(tmp_path, HP, {"train": ChannelData(tmp_path / "pipes" / "train", "text/csv", "Pipe")})
    finally:
        feeder.close()


def test_invalid_ip_names_the_record(tmp_path: Path) -> None:
    entities, ips = events(10, seed=3)
    ips[6] = "10.0.0.300"
    with pytest.raises(ClientError, match=r"'10.0.0.300' is not an IPv4 address.*record 7"):
        run(tmp_path, HP, {"train": ChannelData(write_events(tmp_path / "train", entities, ips))})


def test_wrong_column_count(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "x.csv").write_text("u1,1.2.3.4,extra\n")
    with pytest.raises(ClientError, match="2 CSV columns"):
        run(tmp_path, HP, {"train": ChannelData(tmp_path / "train")})


def test_non_csv_content_type_is_refused(tmp_path: Path) -> None:
    folder = write_events(tmp_path / "train", *events(10, seed=3))
    with pytest.raises(ClientError, match="does not accept"):
        run(tmp_path, HP, {"train": ChannelData(folder, "application/x-recordio-protobuf")})


# -- artifact and inference -----------------------------------------------------------------------


def test_artifact_round_trip(trained: dict) -> None:
    with zipfile.ZipFile(trained["model_dir"] / MODEL_FILE) as archive:
        params = mxnet_ndarray.loads(archive.read("params"))
        meta = json.loads(archive.read("meta.json"))
    assert params["arg:entity_embedding_weight"].shape == (600, 16)
    assert params["arg:ip_encoder_dense0_weight"].shape == (16, 16)
    assert meta["training_parameters"]["num_ip_encoder_layers"] == 1
    model = ALGO.load_model(trained["model_dir"])
    entities, ips = events(5, seed=9)
    rows = entity_buckets(entities, 600)
    expected = model.dot_products(rows, parse_ipv4(ips)[0])
    body = "".join(f"{e},{ip}\n" for e, ip in zip(entities, ips, strict=True)).encode()
    response, content_type = ALGO.invoke(model, body, "text/csv", "application/json")
    assert content_type == "application/json"
    np.testing.assert_allclose([p["dot_product"] for p in json.loads(response)["predictions"]], expected, rtol=1e-5)


def test_real_pairs_score_above_random_ones(trained: dict) -> None:
    model = ALGO.load_model(trained["model_dir"])
    entities, ips = events(500, seed=11)
    rows = entity_buckets(entities, 600)
    real = model.dot_products(rows, parse_ipv4(ips)[0])
    fake = model.dot_products(rows, random_ipv4(np.random.default_rng(1), 500))
    labels = np.r_[np.ones(500), np.zeros(500)]
    assert discriminator_auc(np.r_[real, fake], labels) > 0.95


def test_json_shapes_and_verbose(trained: dict) -> None:
    model = ALGO.load_model(trained["model_dir"])
    body = json.dumps(
        {
            "instances": [
                {"data": {"features": {"values": ["user_1", "192.168.1.2"]}}},
                {"features": ["user_2", "10.10.1.2"]},
            ]
        }
    ).encode()
    plain, _ = ALGO.invoke(model, body, "application/json", "application/json")
    assert [set(p) for p in json.loads(plain)["predictions"]] == [{"dot_product"}] * 2
    verbose, _ = ALGO.invoke(model, body, "application/json", "application/json; verbose=True")
    for row in json.loads(verbose)["predictions"]:
        assert set(row) == {"dot_product", "entity_embedding", "ip_embedding"}
        assert len(row["entity_embedding"]) == len(row["ip_embedding"]) == 16
        assert row["dot_product"] == pytest.approx(float(np.dot(row["entity_embedding"], row["ip_embedding"])), rel=1e-4)


def test_jsonlines_request_and_response(trained: dict) -> None:
    model = ALGO.load_model(trained["model_dir"])
    body = b'{"features": ["user_3", "1.2.3.4"]}\n{"data": {"features": {"values": ["user_4", "5.6.7.8"]}}}\n'
    response, content_type = ALGO.invoke(model, body, "application/jsonlines", "application/jsonlines;verbose=true")
    rows = [json.loads(line) for line in response.decode().splitlines()]
    assert content_type == "application/jsonlines" and len(rows) == 2 and "ip_embedding" in rows[0]


def test_inference_errors(trained: dict) -> None:
    model = ALGO.load_model(trained["model_dir"])
    with pytest.raises(UnsupportedContentType):
        ALGO.invoke(model, b"u,1.2.3.4", "application/x-recordio-protobuf", "application/json")
    with pytest.raises(UnsupportedContentType):
        ALGO.invoke(model, b"u,1.2.3.4", "text/csv", "text/csv")
    with pytest.raises(InferenceError, match="record 2"):
        ALGO.invoke(model, b"u,1.2.3.4\nv,1.2.3\n", "text/csv", "application/json")
    with pytest.raises(InferenceError, match="two values"):
        ALGO.invoke(model, b'{"instances": [{"features": ["only-one"]}]}', "application/json", "application/json")
