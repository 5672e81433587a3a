"""Turning a job's program into a command line, like a training container's ``train`` step.

Script mode follows the sagemaker-training toolkit: fetch the code into ``code/``, install
``requirements.txt``, then run the entry point (a ``.py`` program, a ``.sh`` command, or a
package with ``setup.py``) with the hyperparameters as arguments.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forgeml.errors import ClientError
from forgeml.runtime.environment import decode_value, split_hyperparameters
from forgeml.runtime.layout import HostLayout
from forgeml.storage import ArtifactStore


@dataclass
class ContainerCommand:
    argv: list[str]
    cwd: Path
    #: lines the "container" prints before running the command (the toolkit's preamble)
    preamble: list[str] = field(default_factory=list)
    #: how to describe a non-zero exit in the failure file
    error_class: str = "ExecuteUserScriptError"


def fetch_code(store: ArtifactStore, submit_directory: str, code_dir: Path) -> None:
    """Put the user's code into ``code_dir``: a ``sourcedir.tar.gz`` URI, a folder, or one file."""
    code_dir.mkdir(parents=True, exist_ok=True)
    if any(code_dir.iterdir()):
        return
    local = store.local_path(submit_directory)
    if local is not None and local.is_dir():
        for path in local.rglob("*"):
            target = code_dir / path.relative_to(local)
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(path.read_bytes())
        return
    if not store.exists(submit_directory):
        raise ClientError(f"the code location sagemaker_submit_directory={submit_directory} does not exist")
    if submit_directory.endswith((".tar.gz", ".tgz", ".tar")):
        archive = code_dir.parent / "sourcedir.tar.gz"
        store.get_file(submit_directory, archive)
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(code_dir, filter="data")
        archive.unlink()
    else:
        store.get_file(submit_directory, code_dir / submit_directory.rstrip("/").rsplit("/", 1)[-1])


def install_requirements(code_dir: Path) -> list[str]:
    """``pip install -r requirements.txt`` when the code ships one (as the toolkit does)."""
    requirements = code_dir / "requirements.txt"
    if not requirements.exists():
        return []
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-r", str(requirements)],
        capture_output=True, text=True, cwd=code_dir,
    )
    lines = (result.stdout + result.stderr).splitlines()
    if result.returncode != 0:
        tail = "\n".join(lines[-10:])
        raise ClientError(f"InstallRequirementsError: pip install -r requirements.txt failed:\n{tail}")
    return lines


def script_command(
    store: ArtifactStore, layout: HostLayout, raw_hyperparameters: dict[str, str], args: list[str], env: dict[str, str]
) -> ContainerCommand:
    _, _, reserved = split_hyperparameters(raw_hyperparameters)
    program = str(reserved["sagemaker_program"])
    fetch_code(store, str(reserved["sagemaker_submit_directory"]), layout.code_dir)
    entry = layout.code_dir / program
    preamble = install_requirements(layout.code_dir)
    if (layout.code_dir / "setup.py").exists() and not program.endswith((".py", ".sh")):
        subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "."], cwd=layout.code_dir,
                       capture_output=True, check=False)
        argv = [sys.executable, "-m", program, *args]
    elif not entry.exists():
        raise ClientError(f"the entry point '{program}' was not found in the code directory (sagemaker_submit_directory)")
    elif program.endswith(".sh") or not program.endswith(".py"):
        entry.chmod(0o777)
        argv = ["/bin/sh", "-c", f"./{program} {' '.join(shlex.quote(a) for a in args)}"]
    else:
        argv = [sys.executable, program, *args]
    preamble += [
        "Invoking user script",
        "Training Env:",
        env.get("SM_TRAINING_ENV", "{}"),
        "Invoking script with the following command:",
        " ".join(shlex.quote(a) for a in argv),
    ]
    return ContainerCommand(argv, layout.code_dir, preamble)


def builtin_command(layout: HostLayout, algorithm: str) -> ContainerCommand:
    argv = [sys.executable, "-m", "forgeml.runtime.builtin_entry", algorithm, str(layout.root)]
    return ContainerCommand(argv, layout.root, error_class="AlgorithmError")


def entrypoint_command(store: ArtifactStore, layout: HostLayout, spec: dict[str, Any],
                       raw_hyperparameters: dict[str, str]) -> ContainerCommand:
    submit = raw_hyperparameters.get("sagemaker_submit_directory")
    if submit:
        fetch_code(store, str(decode_value(submit)), layout.code_dir)
    argv = [*spec.get("ContainerEntrypoint", []), *spec.get("ContainerArguments", [])]
    return ContainerCommand(argv, layout.code_dir)
