"""What the worker serves: an ``InferenceHandler`` built once from an extracted model.

A handler answers ``ping`` and ``invoke`` and never raises from ``invoke``: every failure becomes a
``Response`` with SageMaker's status (415 for a content type or Accept it does not serve, 400 for a
payload it cannot use, 500 for anything the model or the user's code raised). The worker then only
moves bytes, and the endpoint router can wrap any non-2xx answer in SageMaker's ``ModelError``
(``OriginalStatusCode`` = the status, ``OriginalMessage`` = the body).

Two kinds, chosen by ``load_handler``:

* a built-in algorithm by registry name: ``load_model`` once, then one ``invoke`` per request;
* custom inference code (``SAGEMAKER_PROGRAM``), see ``forgeml.serving.script``. With an algorithm
  as well, the script's ``model_fn`` (or the algorithm's loader) and the algorithm's request
  handling fill in whatever the script leaves out, as SageMaker's XGBoost framework container does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from forgeml.algorithms.base import UnsupportedContentType
from forgeml.errors import ClientError, ForgeMLError

if TYPE_CHECKING:
    from forgeml.algorithms.base import BuiltinAlgorithm

log = logging.getLogger("forgeml.serving")

TEXT_PLAIN = "text/plain; charset=utf-8"


@dataclass(slots=True)
class Response:
    """One answer to ``/invocations``; ``custom_attributes`` becomes the response's header."""

    body: bytes
    content_type: str | None = None
    status: int = 200
    custom_attributes: str | None = None


class InferenceHandler(Protocol):
    """The model as the worker sees it; ``invoke`` returns errors as responses, never raises."""

    def ping(self) -> bool: ...

    def invoke(
        self,
        body: bytes,
        content_type: str | None,
        accept: str | None,
        custom_attributes: str | None = None,
        *,
        inference_id: str | None = None,
    ) -> Response: ...


class ModelLoadError(Exception):
    """The model or its inference code cannot be loaded: the worker exits instead of serving."""


def classify_error(exc: BaseException) -> tuple[int, str]:
    """The HTTP status and message for an exception raised while answering a request.

    Besides forgeml's own errors, any exception with an integer ``status_code`` in 400..599 keeps
    it (the inference toolkit's ``BaseInferenceToolkitError`` works this way), so a script can
    answer 400 for input it rejects.
    """
    if isinstance(exc, UnsupportedContentType):
        return 415, exc.message
    if isinstance(exc, ForgeMLError):
        return (exc.http_status if 400 <= exc.http_status < 500 else 500), exc.message
    if isinstance(exc, ClientError):
        return 400, exc.message
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool) and 400 <= status < 600:
        return status, str(getattr(exc, "message", None) or exc)
    return 500, f"{type(exc).__name__}: {exc}"


def error_response(exc: BaseException) -> Response:
    """A plain-text error response; server-side failures are logged with their traceback."""
    status, message = classify_error(exc)
    if status >= 500:
        log.error("invocation failed with %s", message, exc_info=exc)
    return Response(message.encode("utf-8", "replace"), TEXT_PLAIN, status)


class BuiltinHandler:
    """A built-in algorithm's model: each request is one ``algorithm.invoke``, called inline.

    An empty answer (XGBoost's reply to an empty body) is HTTP 204, as SageMaker's containers send.
    """

    __slots__ = ("algorithm", "model", "_invoke")

    def __init__(self, algorithm: BuiltinAlgorithm, model: Any) -> None:
        self.algorithm = algorithm
        self.model = model
        self._invoke = algorithm.invoke

    def ping(self) -> bool:
        return True

    def invoke(
        self,
        body: bytes,
        content_type: str | None,
        accept: str | None,
        custom_attributes: str | None = None,
        *,
        inference_id: str | None = None,
    ) -> Response:
        try:
            answer, answer_type = self._invoke(self.model, body, content_type or "", accept or "")
        except Exception as exc:
            return error_response(exc)
        if not answer:
            return Response(b"", None, 204)
        return Response(answer, answer_type)


def load_handler(
    model_dir: Path,
    *,
    algorithm: str | None = None,
    environment: Mapping[str, str] | None = None,
) -> InferenceHandler:
    """The handler for an extracted model; raises ModelLoadError when it cannot serve.

    ``algorithm`` alone serves the built-in algorithm. Custom code is used when ``environment``
    sets ``SAGEMAKER_PROGRAM``, or when no algorithm is given (the program then defaults to
    ``inference.py``, as in the inference toolkit).
    """
    env = dict(environment or {})
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelLoadError(f"the model directory {model_dir} does not exist")
    builtin = _builtin(algorithm) if algorithm else None
    if builtin is not None and "SAGEMAKER_PROGRAM" not in env:
        return BuiltinHandler(builtin, _load_model(builtin.load_model, model_dir))

    from forgeml.serving.script import ScriptHandler, defines_request_hooks, find_program, load_script

    module = load_script(find_program(model_dir, env))
    fallback = builtin.load_model if builtin is not None else None
    script = ScriptHandler(module, model_dir, env, fallback_model_fn=fallback)
    if builtin is not None and not defines_request_hooks(module):
        return BuiltinHandler(builtin, script.model)
    return script


def _builtin(name: str) -> BuiltinAlgorithm:
    from forgeml.algorithms.registry import get_algorithm

    try:
        return get_algorithm(name)
    except ForgeMLError as exc:
        raise ModelLoadError(f"unknown algorithm '{name}': {exc.message}") from exc


def _load_model(loader: Callable[[Path], Any], model_dir: Path) -> Any:
    try:
        return loader(model_dir)
    except Exception as exc:
        raise ModelLoadError(f"could not load the model from {model_dir}: {type(exc).__name__}: {exc}") from exc
