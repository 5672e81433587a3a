"""The "container" of a built-in algorithm: ``python -m forgeml.runtime.builtin_entry <algorithm> <root>``.

Reads the job folder's config files as a first-party container reads ``/opt/ml/input/config``,
trains, and on error writes ``output/failure`` (``ClientError: ...`` for the user's input,
``AlgorithmError: ...`` otherwise) and exits 1.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

from forgeml.errors import JobError
from forgeml.runtime.layout import HostLayout


def main(argv: list[str]) -> int:
    algorithm_name, root = argv[0], Path(argv[1])
    resources = HostLayout(root, "algo-1").read_config("resourceconfig.json")
    layout = HostLayout(root, resources.get("current_host", "algo-1"))
    try:
        from forgeml.algorithms.harness import ChannelData, train_builtin

        hyperparameters = layout.read_config("hyperparameters.json")
        inputs = layout.read_config("inputdataconfig.json")
        channels = {}
        for name, info in inputs.items():
            mode = info.get("TrainingInputMode", "File")
            mode = "File" if mode == "FastFile" else mode
            channels[name] = ChannelData(layout.channel_dir(name), info.get("ContentType"), mode)
        checkpoint = layout.read_config("checkpointconfig.json")
        train_builtin(
            algorithm_name,
            hyperparameters,
            channels,
            layout.model_dir,
            layout.output_data_dir,
            checkpoint_dir=Path(checkpoint["LocalPath"]) if checkpoint else None,
            current_host=layout.host,
            hosts=list(resources.get("hosts", [layout.host])),
            num_gpus=int(os.environ.get("SM_NUM_GPUS", "0") or 0),
        )
    except JobError as exc:
        print(exc.failure_reason(), file=sys.stderr, flush=True)
        layout.failure_file.write_text(exc.failure_reason())
        return 1
    except Exception as exc:  # an algorithm bug: keep the traceback in the log, the summary in FailureReason
        traceback.print_exc()
        layout.failure_file.write_text(f"AlgorithmError: {type(exc).__name__}: {exc}")
        return 1
    (layout.output_dir / "success").touch()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
