"""Cold wall time of `diabetes-mlops run` (retrain + release) on a fresh home and of `import diabetes_mlops`.

Each figure is the median of several runs, printed beside a peer measured in the same run:
a bare interpreter start for the import, and importing scikit-learn's Ridge for the run.
Targets on a 2-core machine: run under 10 s, import under 0.3 s.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from common import free_port

REPEATS = 5


def wall(args: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, env={**os.environ, **(env or {})})
    return time.perf_counter() - started


def median_wall(make_args: Callable[[], list[str]], repeats: int = REPEATS) -> float:
    return statistics.median(wall(make_args()) for _ in range(repeats))


def cold_run(python: str) -> float:
    """`diabetes-mlops run` on a fresh home, on free ports; its production service is stopped after."""
    home = tempfile.mkdtemp()
    ports = {"DIABETES_MLOPS_QA_PORT": str(free_port()), "DIABETES_MLOPS_PRODUCTION_PORT": str(free_port())}
    try:
        return wall([python, "-m", "diabetes_mlops", "--home", home, "run"], ports)
    finally:
        wall([python, "-m", "diabetes_mlops", "--home", home, "undeploy", "production"], ports)


def main() -> None:
    python = sys.executable
    bare = median_wall(lambda: [python, "-c", "pass"])
    imported = median_wall(lambda: [python, "-c", "import diabetes_mlops"])
    sklearn = median_wall(lambda: [python, "-c", "import sklearn.linear_model"])
    run = statistics.median(cold_run(python) for _ in range(3))
    print(f"python -c pass                : {bare:6.3f} s")
    over = imported - bare
    print(f"import diabetes_mlops         : {imported:6.3f} s  ({over:.3f} s over a bare start; target < 0.3 s)")
    print(f"import sklearn.linear_model   : {sklearn:6.3f} s")
    print(f"diabetes-mlops run (fresh home): {run:6.3f} s  (= {run / sklearn:.1f}x importing Ridge; target < 10 s)")


if __name__ == "__main__":
    main()
