"""Real-time hosting: the model server worker that serves one instance of one production variant.

``handlers`` turns an extracted model (a built-in algorithm's artifact, or custom inference code in
the sagemaker-inference-toolkit style) into an ``InferenceHandler``; ``worker`` serves a handler
over SageMaker's container contract (``GET /ping``, ``POST /invocations``) as a raw ASGI app under
uvicorn. Nothing heavy is imported here, so a supervisor can import the package cheaply.
"""
