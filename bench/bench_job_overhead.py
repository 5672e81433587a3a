"""Job overhead: create -> user code running, and end to end for a no-op script-mode job.

Anchor: SageMaker's own overhead in seed 000 is minutes (185 billable seconds for about 38 s of
algorithm time). Targets on a 2-core machine: median under 150 ms to start, under 300 ms end to end.

    python bench/bench_job_overhead.py [--jobs 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import textwrap
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=20)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="forgeml-bench-"))
    import os

    os.environ["FORGEML_HOME"] = str(home)
    from forgeml import Estimator, Session

    session = Session(home, poll_interval=0.005)
    source = home / "code"
    source.mkdir()
    marker = home / "started"
    (source / "noop.py").write_text(textwrap.dedent(f"""
        import time
        open({str(marker)!r} + "-" + __import__("os").environ["TRAINING_JOB_NAME"], "w").write(repr(time.time()))
    """))
    estimator = Estimator(entry_point="noop.py", source_dir=str(source), sagemaker_session=session)
    estimator.fit(logs=False, job_name="warm-up")  # first job pays for creating the store and buckets

    starts, totals = [], []
    for index in range(args.jobs):
        name = f"overhead-{index}"
        request = estimator.training_request(job_name=name)  # code upload happens here, outside the timing
        began = time.time()
        session.platform.training_jobs.create_training_job(request)
        session.wait_for_job(name, poll=0.005)
        totals.append(time.time() - began)
        started_at = float(Path(f"{marker}-{name}").read_text())
        starts.append(started_at - began)

    table = Table(title=f"Training job overhead, {args.jobs} no-op script-mode jobs (median)")
    for column in ("measure", "forgeml", "target", "SageMaker (seed 000)"):
        table.add_column(column)
    table.add_row("create -> user code running", f"{statistics.median(starts) * 1000:.0f} ms", "< 150 ms", "minutes")
    table.add_row("create -> Completed (end to end)", f"{statistics.median(totals) * 1000:.0f} ms", "< 300 ms",
                  "185 s billed for 38 s of training")
    table.add_row("p90 end to end", f"{statistics.quantiles(totals, n=10)[-1] * 1000:.0f} ms", "", "")
    Console().print(table)


if __name__ == "__main__":
    main()
