"""forgeml server: SageMaker's API, runtime, job logs and the S3/STS subset over HTTP."""
