"""Deploy -> invoke -> delete for every tabular built-in algorithm and for custom inference code."""

from __future__ import annotations

import json
import re
import tarfile
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROW = "0.5,1.2,-0.3,2.0"
JSON_ROW = '{"instances": [{"features": [0.5, 1.2, -0.3, 2.0]}]}'
FEATURES = 4  # the training data of the train_model fixture

# algorithm -> (hyperparameters, request body, check on the JSON answer's first prediction)
CASES: dict[str, tuple[dict[str, str], str, Callable[[dict[str, Any]], bool]]] = {
    "linear-learner": ({"predictor_type": "binary_classifier", "feature_dim": str(FEATURES), "epochs": "2"}, ROW,
                       lambda p: p["predicted_label"] in (0, 1)),
    "xgboost": ({"num_round": "5", "objective": "binary:logistic"}, ROW, lambda p: 0.0 <= float(p["score"]) <= 1.0),
    "kmeans": ({"k": "3", "feature_dim": str(FEATURES)}, ROW, lambda p: p["closest_cluster"] in (0, 1, 2)),
    "pca": ({"feature_dim": str(FEATURES), "num_components": "2", "mini_batch_size": "100"}, ROW,
            lambda p: len(p["projection"]) == 2),
    "knn": ({"feature_dim": str(FEATURES), "k": "3", "predictor_type": "classifier", "sample_size": "300"}, ROW,
            lambda p: p["predicted_label"] in (0.0, 1.0)),
    "factorization-machines": ({"feature_dim": str(FEATURES), "num_factors": "2", "predictor_type": "binary_classifier",
                                "epochs": "2"}, JSON_ROW, lambda p: p["predicted_label"] in (0.0, 1.0)),
    "randomcutforest": ({"feature_dim": str(FEATURES), "num_trees": "50", "num_samples_per_tree": "64"}, ROW,
                        lambda p: p["score"] >= 0.0),
    "ipinsights": ({"num_entity_vectors": "40", "vector_dim": "4", "epochs": "1", "mini_batch_size": "100"},
                   "user3, 10.0.3.7", lambda p: isinstance(p["dot_product"], float)),
}


def deploy_and_invoke(platform: Any, wait_for: Callable[..., Any], model: str, body: str) -> dict[str, Any]:
    platform.endpoint_configs.create_endpoint_config({"EndpointConfigName": model, "ProductionVariants": [
        {"VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}]})
    platform.endpoints.create_endpoint({"EndpointName": model, "EndpointConfigName": model})

    def ready() -> bool:
        described = platform.endpoints.describe_endpoint(model)
        assert described["EndpointStatus"] != "Failed", described.get("FailureReason")
        return bool(described["EndpointStatus"] == "InService")

    wait_for(ready, 60, f"{model} InService")
    content_type = "application/json" if body.startswith("{") else "text/csv"
    answer = platform.runtime.invoke_endpoint(EndpointName=model, Body=body, ContentType=content_type,
                                              Accept="application/json")
    platform.endpoints.delete_endpoint(model)
    wait_for(lambda: not platform.endpoints.exists(model), 20, f"{model} deleted")
    return {"content_type": answer["ContentType"], "body": json.loads(answer["Body"].read())}


@pytest.mark.parametrize("algorithm", sorted(CASES))
def test_each_builtin_algorithm_serves(algorithm: str, platform: Any, make_model: Callable[..., str],
                                       wait_for: Callable[..., Any], train_model: Callable[..., Path],
                                       tmp_path: Path) -> None:
    from forgeml.sdk.image_uris import retrieve

    hyperparameters, body, check = CASES[algorithm]
    tarball = train_model(tmp_path, algorithm, hyperparameters)
    model = make_model(algorithm.replace("randomcutforest", "rcf"), tarball=tarball, image=retrieve(algorithm))
    answer = deploy_and_invoke(platform, wait_for, model, body)
    assert answer["content_type"].startswith("application/json")
    records = next(v for k, v in answer["body"].items() if k in ("predictions", "scores", "projections"))
    first = records[0]
    assert check(first), first


def test_custom_inference_code_serves(platform: Any, make_model: Callable[..., str], wait_for: Callable[..., Any],
                                      tmp_path: Path) -> None:
    code = tmp_path / "custom" / "code"
    code.mkdir(parents=True)
    (code / "inference.py").write_text(textwrap.dedent("""
        import json

        def model_fn(model_dir):
            return {"scale": 2.0}

        def input_fn(body, content_type):
            text = body.decode() if isinstance(body, bytes) else body
            return [float(v) for v in text.split(",")]

        def predict_fn(values, model):
            return [v * model["scale"] for v in values]

        def output_fn(prediction, accept):
            return json.dumps({"doubled": prediction}), "application/json"
    """))
    archive = tmp_path / "custom.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(code, arcname="code")
    make_model("custom", tarball=archive, image="forgeml/script-mode:latest",
               environment={"SAGEMAKER_PROGRAM": "inference.py"})
    answer = deploy_and_invoke(platform, wait_for, "custom", "1,2.5")
    assert answer["body"] == {"doubled": [2.0, 5.0]}


def test_custom_attributes_and_inference_id_pass_through(platform: Any, make_model: Callable[..., str],
                                                         wait_for: Callable[..., Any], tmp_path: Path) -> None:
    code = tmp_path / "attributes" / "code"
    code.mkdir(parents=True)
    (code / "inference.py").write_text(textwrap.dedent("""
        def model_fn(model_dir, context):
            return None

        def transform_fn(model, body, content_type, accept, context):
            context.response_custom_attributes = "seen=" + (context.custom_attributes or "")
            return (context.inference_id or "none") + "|" + (body if isinstance(body, str) else body.decode()), "text/plain"
    """))
    archive = tmp_path / "attributes.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(code, arcname="code")
    make_model("attributes", tarball=archive, image="forgeml/script-mode:latest",
               environment={"SAGEMAKER_PROGRAM": "inference.py"})
    platform.endpoint_configs.create_endpoint_config({"EndpointConfigName": "attributes", "ProductionVariants": [
        {"VariantName": "AllTraffic", "ModelName": "attributes", "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large"}]})
    platform.endpoints.create_endpoint({"EndpointName": "attributes", "EndpointConfigName": "attributes"})
    wait_for(lambda: platform.endpoints.describe_endpoint("attributes")["EndpointStatus"] == "InService", 60,
             "InService")
    answer = platform.runtime.invoke_endpoint(EndpointName="attributes", Body="hello", ContentType="text/plain",
                                              CustomAttributes="trace=42", InferenceId="req-7")
    assert answer["Body"].read() == b"req-7|hello"
    assert answer["CustomAttributes"] == "seen=trace=42"


def test_worker_output_goes_to_the_endpoints_log_group(platform: Any, make_model: Callable[..., str],
                                                       wait_for: Callable[..., Any], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """What the model's code prints lands in /aws/sagemaker/Endpoints/<name>, stream <variant>/<instance id>,
    the log group a ModelError's message points to; ``forgeml endpoints logs`` prints it."""
    from sqlalchemy import select

    from forgeml.cli.main import main
    from forgeml.store.tables import log_events

    code = tmp_path / "chatty" / "code"
    code.mkdir(parents=True)
    (code / "inference.py").write_text(textwrap.dedent("""
        def model_fn(model_dir):
            print("loading the chatty model", flush=True)
            return None

        def transform_fn(model, body, content_type, accept):
            print("answering " + (body if isinstance(body, str) else body.decode()), flush=True)
            return "ok", "text/plain"
    """))
    archive = tmp_path / "chatty.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(code, arcname="code")
    make_model("chatty", tarball=archive, image="forgeml/script-mode:latest",
               environment={"SAGEMAKER_PROGRAM": "inference.py"})
    platform.endpoint_configs.create_endpoint_config({"EndpointConfigName": "chatty", "ProductionVariants": [
        {"VariantName": "AllTraffic", "ModelName": "chatty", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}]})
    platform.endpoints.create_endpoint({"EndpointName": "chatty", "EndpointConfigName": "chatty"})
    wait_for(lambda: platform.endpoints.describe_endpoint("chatty")["EndpointStatus"] == "InService", 60, "InService")
    platform.runtime.invoke_endpoint(EndpointName="chatty", Body="hello-17", ContentType="text/plain")

    def lines() -> list[tuple[str, str]]:
        with platform.db.read() as conn:
            rows = conn.execute(select(log_events.c.log_stream, log_events.c.message)
                                .where(log_events.c.log_group == "/aws/sagemaker/Endpoints/chatty")).all()
        return [(stream, message) for stream, message in rows]

    found = wait_for(lambda: [r for r in lines() if r[1] == "answering hello-17"] and lines(), 10, "the log lines")
    messages = [message for _, message in found]
    assert "loading the chatty model" in messages
    assert all(re.fullmatch(r"AllTraffic/i-[0-9a-f]{17}", stream) for stream, _ in found)
    assert [e["message"] for e in platform.endpoints.log_events("chatty")] == messages
    assert main(["endpoints", "logs", "chatty"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == len(messages)
    assert re.fullmatch(r"AllTraffic/i-[0-9a-f]{17}  answering hello-17", printed[messages.index("answering hello-17")])
