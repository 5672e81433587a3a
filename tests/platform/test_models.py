"""CreateModel / DescribeModel / ListModels / DeleteModel through the boto3-shaped client."""

from __future__ import annotations

import pytest

from forgeml import Session, ValidationException
from forgeml.image_uris import retrieve


def test_model_lifecycle(session: Session) -> None:
    client = session.sagemaker_client
    image = retrieve("linear-learner")
    arn = client.create_model(ModelName="ufo-model", ExecutionRoleArn="arn:aws:iam::000000000000:role/r",
                              PrimaryContainer={"Image": image, "ModelDataUrl": "s3://bucket-one/m/model.tar.gz"})["ModelArn"]
    assert arn == "arn:aws:sagemaker:us-east-1:000000000000:model/ufo-model"
    described = client.describe_model(ModelName="ufo-model")
    assert described["PrimaryContainer"] == {"Image": image, "ModelDataUrl": "s3://bucket-one/m/model.tar.gz",
                                             "Mode": "SingleModel"}
    assert described["ModelArn"] == arn and described["CreationTime"].tzinfo is not None
    client.create_model(ModelName="custom-code", Containers=[
        {"Image": "my-sklearn:1", "ModelDataUrl": "s3://bucket-one/c/model.tar.gz",
         "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}}])
    with pytest.raises(ValidationException, match="already existing model"):
        client.create_model(ModelName="ufo-model", PrimaryContainer={"Image": image})
    names = [m["ModelName"] for m in client.list_models(SortBy="Name", SortOrder="Ascending")["Models"]]
    assert names == ["custom-code", "ufo-model"]
    pages = list(client.get_paginator("list_models").paginate(MaxResults=1))
    assert len(pages) == 2
    client.delete_model(ModelName="ufo-model")
    with pytest.raises(ValidationException, match='Could not find model "arn:aws:sagemaker:us-east-1:000000000000:model/ufo-model"'):
        client.describe_model(ModelName="ufo-model")
    with pytest.raises(ValidationException, match="Could not find model"):
        client.delete_model(ModelName="ufo-model")


@pytest.mark.parametrize(
    ("request_members", "message"),
    [
        ({"ModelName": "bad_name", "PrimaryContainer": {"Image": "kmeans"}}, "at 'modelName'"),
        ({"ModelName": "m"}, "at 'primaryContainer'"),
        ({"ModelName": "m", "PrimaryContainer": {"Image": "unknown-image:1"}},
         "must name a built-in algorithm image"),
        ({"ModelName": "m", "PrimaryContainer": {"Image": "kmeans", "ModelDataUrl": "ftp://x/y"}},
         "at 'primaryContainer.modelDataUrl'"),
        ({"ModelName": "m", "PrimaryContainer": {"Image": "kmeans"}, "InferenceExecutionConfig": {"Mode": "Parallel"}},
         "at 'inferenceExecutionConfig.mode'"),
    ],
)
def test_bad_create_model_requests(session: Session, request_members: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValidationException, match=message):
        session.sagemaker_client.create_model(**request_members)
    assert session.sagemaker_client.list_models()["Models"] == []
