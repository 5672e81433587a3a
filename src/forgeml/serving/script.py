"""Custom inference code in the sagemaker-inference-toolkit style.

The program named by ``SAGEMAKER_PROGRAM`` (default ``inference.py``; a module name without
``.py`` works too) is looked up in ``SAGEMAKER_SUBMIT_DIRECTORY`` (a local folder, ``file://``
folder or local ``.tar.gz``) and then in the model's ``code/`` folder, where SageMaker's framework
containers find it. It may define:

* ``model_fn(model_dir)`` -> model (required unless a built-in algorithm supplies the loader);
* ``input_fn(request_body, request_content_type)`` -> input (default: ``codecs.decode``);
* ``predict_fn(input_data, model)`` -> prediction (default: ``model.predict(x)`` or ``model(x)``);
* ``output_fn(prediction, accept)`` -> bytes/str, or (body, content_type) (default: ``codecs.encode``);
* or ``transform_fn(model, request_body, content_type, accept)`` instead of the three above.

As in the toolkit, JSON and CSV bodies reach the script as ``str``, a missing or ``*/*`` Accept is
``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` (default ``application/json``), and a function declaring
one more parameter than the above receives a context: here an ``InferenceContext`` carrying the
request's custom attributes and inference id, on which the script may set the response's custom
attributes. Dependencies in a ``requirements.txt`` are not installed: the worker never reaches a
package index.
"""

from __future__ import annotations

import atexit
import importlib.util
import inspect
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from forgeml.algorithms.base import InferenceError
from forgeml.serving import codecs
from forgeml.serving.handlers import ModelLoadError, Response, error_response

DEFAULT_PROGRAM = "inference.py"
REQUEST_HOOKS = ("input_fn", "predict_fn", "output_fn", "transform_fn")
_SCRIPT_MARK = "__forgeml_inference_script__"


@dataclass
class InferenceContext:
    """What a hook that asks for a context gets (``model_fn`` gets one without request fields)."""

    model_dir: str
    environment: Mapping[str, str]
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = None
    inference_id: str | None = None
    #: set by the script to send ``X-Amzn-SageMaker-Custom-Attributes`` back
    response_custom_attributes: str | None = None


def find_program(model_dir: Path, environment: Mapping[str, str]) -> Path:
    """The entry point file, from the submit directory or the model's ``code/`` folder."""
    name = environment.get("SAGEMAKER_PROGRAM") or DEFAULT_PROGRAM
    if not name.endswith(".py"):
        name += ".py"
    folders = []
    submit = environment.get("SAGEMAKER_SUBMIT_DIRECTORY")
    if submit:
        folder = _local_submit_directory(submit)
        if folder is not None:
            folders.append(folder)
    folders.append(Path(model_dir) / "code")
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    where = " or ".join(str(folder) for folder in folders)
    hint = "" if "SAGEMAKER_PROGRAM" in environment else " (no algorithm was given, so custom inference code is required)"
    raise ModelLoadError(f"the inference program {name} is not in {where}{hint}")


def _local_submit_directory(value: str) -> Path | None:
    """A local folder for ``SAGEMAKER_SUBMIT_DIRECTORY``; remote URIs are staged by the platform."""
    if value.startswith("file://"):
        value = value[len("file://") :]
    if "://" in value:
        return None
    path = Path(value)
    if path.is_dir():
        return path
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
        from forgeml.runtime.packaging import extract_tarball

        target = Path(tempfile.mkdtemp(prefix="forgeml-code-"))
        atexit.register(shutil.rmtree, target, True)
        extract_tarball(path, target)
        return target
    return None


def load_script(program: Path) -> ModuleType:
    """Import the program as a top-level module, its folder on ``sys.path`` for its own imports.

    It is registered under its own name so objects pickled from it (``inference.MyModel``) load,
    unless that name is already taken by another module (a script called ``json.py``, say).
    """
    folder = str(program.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(program.stem, program)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"cannot import {program}")
    module = importlib.util.module_from_spec(spec)
    module.__dict__[_SCRIPT_MARK] = True
    taken = sys.modules.get(program.stem)
    register = taken is None or getattr(taken, _SCRIPT_MARK, False)
    if register:
        sys.modules[program.stem] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        if register:
            sys.modules.pop(program.stem, None)
        raise ModelLoadError(f"importing {program} failed: {type(exc).__name__}: {exc}") from exc
    return module


def defines_request_hooks(module: ModuleType) -> bool:
    """Whether the script changes request handling, not just how the model is loaded."""
    return any(callable(getattr(module, name, None)) for name in REQUEST_HOOKS)


@dataclass(frozen=True, slots=True)
class _Hook:
    """A hook and whether it takes the trailing context argument (decided once, at load)."""

    fn: Callable[..., Any]
    takes_context: bool = False

    def __call__(self, context: InferenceContext | None, *args: Any) -> Any:
        if self.takes_context:
            return self.fn(*args, context)
        return self.fn(*args)


def _bind(module: ModuleType, name: str, arity: int) -> _Hook | None:
    fn = getattr(module, name, None)
    if fn is None:
        return None
    if not callable(fn):
        raise ModelLoadError(f"{name} in the inference script is not a function")
    try:
        count = len(inspect.signature(fn).parameters)
    except (TypeError, ValueError):  # a builtin or C function: trust the toolkit's arity
        count = arity
    if count not in (arity, arity + 1):
        raise ModelLoadError(
            f"{name} takes {count} arguments; the inference toolkit calls it with {arity} (or {arity + 1} with a context)"
        )
    return _Hook(fn, count == arity + 1)


def default_predict_fn(data: Any, model: Any) -> Any:
    """``model.predict(data)`` (scikit-learn, XGBoost) or ``model(data)`` (a callable model)."""
    predict = getattr(model, "predict", None)
    if callable(predict):
        return predict(data)
    if callable(model):
        return model(data)
    raise TypeError(f"the model ({type(model).__name__}) has no predict method and is not callable; define predict_fn")


class ScriptHandler:
    """Serves a script's hooks; the model is loaded once, at construction."""

    def __init__(
        self,
        module: ModuleType,
        model_dir: Path,
        environment: Mapping[str, str],
        *,
        fallback_model_fn: Callable[[Path], Any] | None = None,
    ) -> None:
        self._model_dir = str(model_dir)
        self._environment = dict(environment)
        self._default_accept = self._environment.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or codecs.JSON
        model_fn = _bind(module, "model_fn", 1)
        transform_fn = _bind(module, "transform_fn", 4)
        input_fn = _bind(module, "input_fn", 2)
        predict_fn = _bind(module, "predict_fn", 2)
        output_fn = _bind(module, "output_fn", 2)
        if transform_fn and (input_fn or predict_fn or output_fn):
            raise ModelLoadError(
                "Cannot use transform_fn implementation in conjunction with input_fn, predict_fn, "
                "and/or output_fn implementation"
            )
        hooks = [hook for hook in (transform_fn, input_fn, predict_fn, output_fn) if hook]
        self._wants_context = any(hook.takes_context for hook in hooks)
        self._transform_fn = transform_fn
        self._input_fn = input_fn or _Hook(codecs.decode)
        self._predict_fn = predict_fn or _Hook(default_predict_fn)
        self._output_fn = output_fn or _Hook(self._default_output_fn)
        self.model = self._load_model(model_fn, fallback_model_fn, Path(model_dir))

    def _load_model(self, model_fn: _Hook | None, fallback: Callable[[Path], Any] | None, model_dir: Path) -> Any:
        try:
            if model_fn is not None:
                return model_fn(InferenceContext(self._model_dir, self._environment), self._model_dir)
            if fallback is not None:
                return fallback(model_dir)
        except Exception as exc:
            step = "model_fn" if model_fn is not None else "the algorithm's model loader"
            raise ModelLoadError(f"{step} failed: {type(exc).__name__}: {exc}") from exc
        raise ModelLoadError(
            "the inference script defines no model_fn; define model_fn(model_dir) to load the model "
            "(the inference toolkit has no default for it)"
        )

    def _default_output_fn(self, prediction: Any, accept: str) -> tuple[bytes, str]:
        return codecs.encode(prediction, accept, self._default_accept)

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
        if not accept or accept == "*/*":
            accept = self._default_accept
        context = None
        if self._wants_context:
            context = InferenceContext(
                self._model_dir, self._environment, content_type, accept, custom_attributes, inference_id
            )
        try:
            data = _request_data(body, content_type)
            if self._transform_fn is not None:
                result = self._transform_fn(context, self.model, data, content_type, accept)
            else:
                features = self._input_fn(context, data, content_type)
                prediction = self._predict_fn(context, features, self.model)
                result = self._output_fn(context, prediction, accept)
            payload, payload_type = _response_body(result, accept)
        except Exception as exc:
            return error_response(exc)
        return Response(payload, payload_type, 200, context.response_custom_attributes if context else None)


def _request_data(body: bytes, content_type: str | None) -> bytes | str:
    if codecs.mime(content_type) not in codecs.UTF8_TYPES:
        return body
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InferenceError(f"the {codecs.mime(content_type)} request body is not valid UTF-8: {exc}") from exc


def _response_body(result: Any, accept: str) -> tuple[bytes, str]:
    """bytes or str as they are; a (body, content_type) pair; anything else as JSON, as MMS does."""
    content_type = accept
    if isinstance(result, tuple) and len(result) == 2:
        result, content_type = result
    if isinstance(result, bytes | bytearray | memoryview):
        return bytes(result), str(content_type)
    if isinstance(result, str):
        return result.encode("utf-8"), str(content_type)
    return codecs.encode(result, codecs.JSON)[0], codecs.JSON
