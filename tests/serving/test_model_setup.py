"""Staging a model's containers from the artifact store, as SageMaker lays them out on an instance
before ``serve``: model data extracted into ``<container>/model``, remote inference code into
``<container>/code``, the image resolved to a built-in algorithm, and the specs a worker reads."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from forgeml.runtime.packaging import make_tarball
from forgeml.service.platform import Platform
from forgeml.serving.handlers import ModelLoadError
from forgeml.serving.model_setup import ContainerSpec, model_containers, prepare_containers
from forgeml.serving.pipeline import load_pipeline
from forgeml.storage import ArtifactStore

SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
LINEAR_LEARNER_IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1"

DOUBLE = """
def model_fn(model_dir):
    with open(model_dir + "/factor.txt") as handle:
        return int(handle.read())


def transform_fn(factor, body, content_type, accept):
    return ",".join(str(int(v) * factor) for v in body.split(",")), "text/csv"
"""

SUFFIX = """
def model_fn(model_dir):
    return "!"


def transform_fn(mark, body, content_type, accept):
    return body + mark, "text/plain"
"""


@pytest.fixture
def artifacts(forgeml_home: Path) -> ArtifactStore:
    return Platform.get().artifacts


@pytest.fixture(autouse=True)
def _forget_scripts() -> Iterator[None]:
    path = list(sys.path)
    yield
    for name in ("stage_double", "stage_suffix"):
        sys.modules.pop(name, None)
    sys.path[:] = path


def upload_tarball(artifacts: ArtifactStore, files: dict[str, str | bytes], folder: Path, uri: str) -> None:
    """Pack ``files`` as a .tar.gz and store it at ``uri``."""
    for name, content in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    artifacts.put_file(make_tarball([folder], folder.parent / f"{folder.name}.tar.gz"), uri)


def test_each_container_is_staged_in_its_own_folder(artifacts: ArtifactStore, tmp_path: Path) -> None:
    upload_tarball(
        artifacts,
        {"scaler.pkl": b"\x80scaler", "extra/notes.txt": "kept"},
        tmp_path / "pre-model",
        "s3://models/pipeline/preprocess/model.tar.gz",
    )
    upload_tarball(
        artifacts,
        {"inference.py": "STAGE = 'pre'\n", "helpers.py": "X = 1\n"},
        tmp_path / "src",
        "s3://models/code/sourcedir.tar.gz",
    )
    (tmp_path / "ll-model").mkdir()
    (tmp_path / "ll-model" / "model_algo-1").write_bytes(b"weights")
    artifacts.upload_directory(tmp_path / "ll-model", "s3://models/pipeline/learner")
    local_code = tmp_path / "post-code"
    local_code.mkdir()
    model = {
        "ModelName": "churn-pipeline",
        "Containers": [
            {
                "ContainerHostname": "preprocess",
                "Image": SKLEARN_IMAGE,
                "ModelDataUrl": "s3://models/pipeline/preprocess/model.tar.gz",
                "Environment": {
                    "SAGEMAKER_PROGRAM": "inference.py",
                    "SAGEMAKER_SUBMIT_DIRECTORY": "s3://models/code/sourcedir.tar.gz",
                },
            },
            {
                "ContainerHostname": "learner",
                "Image": LINEAR_LEARNER_IMAGE,
                "ModelDataUrl": "s3://models/pipeline/learner",
            },
            {"Image": SKLEARN_IMAGE, "Environment": {"SAGEMAKER_SUBMIT_DIRECTORY": str(local_code)}},
        ],
    }
    destination = tmp_path / "staged"

    specs = prepare_containers(artifacts, model, destination)

    assert specs == [
        ContainerSpec(
            destination / "preprocess" / "model",
            None,
            {
                "SAGEMAKER_PROGRAM": "inference.py",
                "SAGEMAKER_SUBMIT_DIRECTORY": str(destination / "preprocess" / "code"),
            },
            "preprocess",
        ),
        ContainerSpec(destination / "learner" / "model", "linear-learner", {}, "learner"),
        ContainerSpec(destination / "container-3" / "model", None, {"SAGEMAKER_SUBMIT_DIRECTORY": str(local_code)}),
    ]
    preprocess = destination / "preprocess"
    assert (preprocess / "model" / "scaler.pkl").read_bytes() == b"\x80scaler"
    assert (preprocess / "model" / "extra" / "notes.txt").read_text() == "kept"
    assert (preprocess / "code" / "inference.py").read_text() == "STAGE = 'pre'\n"
    assert (preprocess / "code" / "helpers.py").read_text() == "X = 1\n"
    assert [p.name for p in (destination / "learner" / "model").iterdir()] == ["model_algo-1"]
    assert (destination / "learner" / "model" / "model_algo-1").read_bytes() == b"weights"
    assert list((destination / "container-3" / "model").iterdir()) == []
    # the record itself is left alone: its code is still named by its S3 URI
    assert model["Containers"][0]["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == "s3://models/code/sourcedir.tar.gz"


def test_staging_a_model_tarball_again_gives_the_same_layout(artifacts: ArtifactStore, tmp_path: Path) -> None:
    upload_tarball(artifacts, {"model_algo-1": b"weights"}, tmp_path / "km", "s3://models/km/model.tar.gz")
    model = {"PrimaryContainer": {"Image": "kmeans", "ModelDataUrl": "s3://models/km/model.tar.gz"}}

    first = prepare_containers(artifacts, model, tmp_path / "staged")
    again = prepare_containers(artifacts, model, tmp_path / "staged")

    assert first == again == [ContainerSpec(tmp_path / "staged" / "container-1" / "model", "kmeans")]
    assert (tmp_path / "staged" / "container-1" / "model" / "model_algo-1").read_bytes() == b"weights"


def test_a_primary_container_is_one_spec(artifacts: ArtifactStore, tmp_path: Path) -> None:
    model = {"ModelName": "one", "PrimaryContainer": {"Image": "kmeans", "Environment": {"A": "1"}}}

    assert model_containers(model) == [{"Image": "kmeans", "Environment": {"A": "1"}}]
    assert prepare_containers(artifacts, model, tmp_path) == [
        ContainerSpec(tmp_path / "container-1" / "model", "kmeans", {"A": "1"})
    ]


@pytest.mark.parametrize(
    ("image", "algorithm"),
    [
        (LINEAR_LEARNER_IMAGE, "linear-learner"),
        ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1", "xgboost"),
        ("174872318107.dkr.ecr.us-west-2.amazonaws.com/kmeans:1", "kmeans"),
        ("forestry", None),
        (SKLEARN_IMAGE, None),
    ],
)
def test_the_image_names_the_builtin_algorithm(
    artifacts: ArtifactStore, tmp_path: Path, image: str, algorithm: str | None
) -> None:
    [spec] = prepare_containers(artifacts, {"PrimaryContainer": {"Image": image}}, tmp_path)
    assert spec.algorithm == algorithm


def test_missing_model_data_or_code_is_a_load_error_naming_the_uri(artifacts: ArtifactStore, tmp_path: Path) -> None:
    missing_model = {
        "PrimaryContainer": {"Image": LINEAR_LEARNER_IMAGE, "ModelDataUrl": "s3://models/none/model.tar.gz"}
    }
    with pytest.raises(ModelLoadError) as raised:
        prepare_containers(artifacts, missing_model, tmp_path)
    assert str(raised.value) == "the model data s3://models/none/model.tar.gz does not exist"

    missing_code = {
        "PrimaryContainer": {
            "Image": SKLEARN_IMAGE,
            "Environment": {"SAGEMAKER_SUBMIT_DIRECTORY": "s3://models/none/sourcedir.tar.gz"},
        }
    }
    with pytest.raises(ModelLoadError) as raised:
        prepare_containers(artifacts, missing_code, tmp_path)
    assert str(raised.value) == (
        "the inference code s3://models/none/sourcedir.tar.gz (SAGEMAKER_SUBMIT_DIRECTORY) does not exist"
    )


def test_container_specs_survive_a_json_round_trip(tmp_path: Path) -> None:
    spec = ContainerSpec(tmp_path / "model", "xgboost", {"SAGEMAKER_PROGRAM": "serve.py"}, "booster")

    assert spec.to_json() == {
        "ModelDir": str(tmp_path / "model"),
        "Algorithm": "xgboost",
        "Environment": {"SAGEMAKER_PROGRAM": "serve.py"},
        "Hostname": "booster",
    }
    assert ContainerSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    assert ContainerSpec.from_json({"ModelDir": "m", "Environment": None}) == ContainerSpec(Path("m"))


def test_staged_containers_serve_as_a_pipeline(artifacts: ArtifactStore, tmp_path: Path) -> None:
    upload_tarball(
        artifacts,
        {"factor.txt": "3", "code/stage_double.py": textwrap.dedent(DOUBLE)},
        tmp_path / "double",
        "s3://models/double/model.tar.gz",
    )
    upload_tarball(
        artifacts,
        {"stage_suffix.py": textwrap.dedent(SUFFIX)},
        tmp_path / "suffix-code",
        "s3://models/suffix/sourcedir.tar.gz",
    )
    model = {
        "Containers": [
            {
                "ContainerHostname": "double",
                "Image": SKLEARN_IMAGE,
                "ModelDataUrl": "s3://models/double/model.tar.gz",
                "Environment": {
                    "SAGEMAKER_PROGRAM": "stage_double.py",
                    "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv",
                },
            },
            {
                "Image": SKLEARN_IMAGE,
                "Environment": {
                    "SAGEMAKER_PROGRAM": "stage_suffix.py",
                    "SAGEMAKER_SUBMIT_DIRECTORY": "s3://models/suffix/sourcedir.tar.gz",
                },
            },
        ]
    }

    handler = load_pipeline(prepare_containers(artifacts, model, tmp_path / "staged"))
    answer = handler.invoke(b"1,2,5", "text/csv", "text/plain")

    assert (answer.status, answer.body, answer.content_type) == (200, b"3,6,15!", "text/plain")
