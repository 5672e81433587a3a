"""``image_uris.retrieve``: the image URI SageMaker would use, which forgeml maps back to the algorithm.

The URIs have SageMaker's shape (``<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>``), so
code that builds or compares them keeps working; forgeml only reads the repository name.
"""

from __future__ import annotations

from forgeml.errors import ValidationException

# framework -> (repository, default tag)
_IMAGES: dict[str, tuple[str, str]] = {
    "linear-learner": ("linear-learner", "1"),
    "xgboost": ("sagemaker-xgboost", "1.7-1"),
    "kmeans": ("kmeans", "1"),
    "pca": ("pca", "1"),
    "knn": ("knn", "1"),
    "factorization-machines": ("factorization-machines", "1"),
    "randomcutforest": ("randomcutforest", "1"),
    "ipinsights": ("ipinsights", "1"),
    "sklearn": ("sagemaker-scikit-learn", "1.2-1"),
    "pytorch": ("pytorch-training", "2.1"),
    "tensorflow": ("tensorflow-training", "2.13"),
}

# the registry account SageMaker serves its first-party algorithms from, in us-east-1
_ACCOUNT = {"xgboost": "683313688378", "sklearn": "683313688378", "pytorch": "763104351884",
            "tensorflow": "763104351884"}
_FIRST_PARTY_ACCOUNT = "382416733822"


def retrieve(framework: str, region: str | None = None, version: str | None = None, py_version: str | None = None,
             instance_type: str | None = None, image_scope: str | None = None, **_: object) -> str:
    key = framework.lower()
    if key not in _IMAGES:
        raise ValidationException(
            f"Unsupported framework: {framework}. Supported: {', '.join(sorted(_IMAGES))}"
        )
    repository, default_tag = _IMAGES[key]
    tag = version if version and version != "latest" else default_tag
    account = _ACCOUNT.get(key, _FIRST_PARTY_ACCOUNT)
    return f"{account}.dkr.ecr.{region or 'us-east-1'}.amazonaws.com/{repository}:{tag}"


def get_image_uri(region_name: str, repo_name: str, repo_version: str = "1") -> str:
    """The sagemaker v1 helper, still used by older notebooks."""
    return retrieve(repo_name, region_name, repo_version if repo_version not in ("1", "latest") else None)
