"""The forgeml command line over the same services (script-mode scikit-learn job with a regex metric)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from forgeml.cli.main import main

SKLEARN_SCRIPT = """
    import argparse, os
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-iter", type=int)
    args = parser.parse_args()
    data = np.loadtxt(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "train.csv"), delimiter=",")
    model = LogisticRegression(max_iter=args.max_iter).fit(data[:, 1:], data[:, 0])
    print(f"final-score: {model.score(data[:, 1:], data[:, 0]):.4f};")
"""


def test_train_a_script_then_inspect_it(forgeml_home: Path, write_script, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    source = write_script("train.py", SKLEARN_SCRIPT)
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 4))
    labels = (features[:, 0] + features[:, 1] > 0).astype(float)
    data = tmp_path / "data"
    data.mkdir()
    np.savetxt(data / "train.csv", np.column_stack([labels, features]), delimiter=",")

    code = main(["train", "--entry-point", "train.py", "--source-dir", str(source), "--channel", f"train={data}",
                 "--hp", "max-iter=200", "--metric", r"validation:accuracy=final-score: (\S+);",
                 "--job-name", "cli-sklearn"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "cli-sklearn: Completed" in out
    score = float(out.split("validation:accuracy = ")[1].split()[0])
    assert score > 0.9

    assert main(["jobs", "list"]) == 0
    assert "cli-sklearn" in capsys.readouterr().out
    assert main(["jobs", "describe", "cli-sklearn"]) == 0
    assert '"TrainingJobStatus": "Completed"' in capsys.readouterr().out
    assert main(["jobs", "logs", "cli-sklearn"]) == 0
    assert "final-score:" in capsys.readouterr().out
    assert main(["jobs", "metrics", "cli-sklearn"]) == 0
    assert "validation:accuracy" in capsys.readouterr().out
    assert main(["info"]) == 0
    assert str(forgeml_home) in capsys.readouterr().out


def test_cli_reports_validation_errors(forgeml_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs", "describe", "missing-job"]) == 2
    assert "ResourceNotFound" in capsys.readouterr().out
    assert main(["jobs", "stop", "missing-job"]) == 2
