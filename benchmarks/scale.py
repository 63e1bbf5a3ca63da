"""validate-data, ingest and drift on 10k, 100k and 1M rows, each beside a plain numpy/pandas floor.

Rows are drawn from the reference distribution (the built-in data resampled, the target jittered slightly
so the rows are distinct), generated here, nothing downloaded. Each step is the
library function the CLI verb calls, timed in this process (the CLI adds a constant start-up, see
``startup.py``); the floor is the same checks written directly in vectorised pandas/numpy in the same run.
Drift reads one row per logged request, the worst case for the log reader.

Targets on a 2-core machine: 1M rows validated in under 3 s, a drift report over 1M logged rows in
under 5 s, and seconds per row no worse than linear from 10k to 1M.

    python3 benchmarks/scale.py [--sizes 10000,100000,1000000]
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from diabetes_mlops.config import Settings, load_settings
from diabetes_mlops.data import COLUMNS, FEATURES, TARGET, load_builtin
from diabetes_mlops.ingest import ingest_file
from diabetes_mlops.monitoring.drift import drift_report, read_logged_rows
from diabetes_mlops.monitoring.statistics import quantile_edges
from diabetes_mlops.monitoring.store import LocalLogStore
from diabetes_mlops.pipelines import retrain
from diabetes_mlops.registry import open_registry
from diabetes_mlops.schema import reference_stats, validate_frame

SIZES = (10_000, 100_000, 1_000_000)
TARGETS = {("validate-data", 1_000_000): 3.0, ("drift", 1_000_000): 5.0}


def synthetic(n: int, seed: int) -> pd.DataFrame:
    """``n`` rows from the reference distribution: built-in rows resampled, the target jittered slightly.

    The features are exactly the reference's (several are discrete, so jittering them would itself be
    a drift the report rightly finds); the target's jitter makes the rows distinct, so ingestion adds them.
    """
    base = load_builtin()
    rng = np.random.default_rng(seed)
    frame = base.iloc[rng.integers(0, len(base), n)].reset_index(drop=True)
    frame[TARGET] = (frame[TARGET] + rng.normal(0.0, 0.5, n)).clip(*reference_stats().columns[TARGET].bounds)
    return frame


def timed(func: Callable[[], object]) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


# ---- floors: the same checks, written directly -------------------------------------------------------


def floor_validate(frame: pd.DataFrame) -> np.ndarray:
    """Per-row validity (finite, not null, in range) and the per-column mean/std checks, in numpy."""
    stats = reference_stats()
    values = frame.loc[:, list(COLUMNS)].to_numpy(dtype="float64")
    ok = np.isfinite(values).all(axis=1)
    for i, column in enumerate(COLUMNS):
        lo, hi = stats.columns[column].bounds
        ok &= (values[:, i] >= lo) & (values[:, i] <= hi)
        ref = stats.columns[column]
        _ = abs(values[:, i].mean() - ref.mean) <= 0.5 * ref.std and 0.5 * ref.std <= values[:, i].std() <= 2 * ref.std
    return ok


def floor_ingest(path: Path, out: Path) -> int:
    """Read, validate, drop rows already in the base, append, write the new table."""
    batch = pd.read_parquet(path)
    ok = floor_validate(batch)
    base = load_builtin()
    valid = batch.loc[ok, list(COLUMNS)]
    hashes = pd.util.hash_pandas_object(valid, index=False)
    fresh = ~hashes.isin(set(pd.util.hash_pandas_object(base, index=False))) & ~hashes.duplicated()
    table = pd.concat([base, valid.loc[fresh.to_numpy()]], ignore_index=True)
    table.to_parquet(out, index=False)
    return len(table)


def floor_read(settings: Settings) -> int:
    """Only parse every logged line with orjson, keeping nothing: the floor of any JSON-lines reader."""
    gc.disable()
    try:
        count = 0
        for path in sorted(settings.logs_dir.glob("*.jsonl")):
            with open(path, "rb") as fh:
                for line in fh:
                    orjson.loads(line)
                    count += 1
        return count
    finally:
        gc.enable()


def floor_drift(logs: Path, reference: pd.DataFrame, model: object) -> list[float]:
    """Read the JSON lines, then PSI on quantile bins and the KS statistic per column, in numpy."""
    inputs: list[list[float]] = []
    predictions: list[float] = []
    gc.disable()  # as the library does: millions of acyclic lists, nothing for the collector to find
    try:
        for path in sorted(logs.glob("*.jsonl")):
            with open(path, "rb") as fh:
                for line in fh:
                    record = orjson.loads(line)
                    inputs.extend(record["inputs"])
                    predictions.extend(record["predictions"])
    finally:
        gc.enable()
    current = np.array(inputs, dtype="float64")
    ref = reference.loc[:, list(FEATURES)].to_numpy(dtype="float64")
    columns = [(ref[:, i], current[:, i]) for i in range(len(FEATURES))]
    columns.append((model.predict(reference.loc[:, list(FEATURES)]), np.array(predictions)))  # type: ignore[attr-defined]
    out = []
    for r, c in columns:
        edges = quantile_edges(r)
        e = np.maximum(np.bincount(np.searchsorted(edges, r, side="right"), minlength=len(edges) + 1) / len(r), 1e-4)
        a = np.maximum(np.bincount(np.searchsorted(edges, c, side="right"), minlength=len(edges) + 1) / len(c), 1e-4)
        r_sorted, c_sorted = np.sort(r), np.sort(c)
        grid = np.concatenate([r_sorted, c_sorted])
        ks = np.abs(
            np.searchsorted(r_sorted, grid, side="right") / len(r)
            - np.searchsorted(c_sorted, grid, side="right") / len(c)
        ).max()
        out.append(float(np.sum((a - e) * np.log(a / e))) + float(ks))
    return out


# ---- the benchmark -------------------------------------------------------------------------------------


def write_logs(settings: Settings, frame: pd.DataFrame, model: object) -> None:
    """One scoring record per row, written through the log store, stamped an hour ago."""
    features = frame.loc[:, list(FEATURES)]
    predictions = model.predict(features).tolist()  # type: ignore[attr-defined]
    time_text = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="microseconds")
    store = LocalLogStore(settings.logs_dir)
    rows = features.to_numpy().tolist()
    chunk = 100_000
    for start in range(0, len(rows), chunk):
        store.write(
            {
                "request_id": f"r{i}",
                "time": time_text,
                "model_name": settings.model_name,
                "model_version": 1,
                "inputs": [rows[i]],
                "predictions": [predictions[i]],
                "latency_ms": 1.0,
                "traceparent": None,
            }
            for i in range(start, min(start + chunk, len(rows)))
        )


def bench(n: int, workdir: Path, champion_home: Path) -> list[tuple[str, int, float, float]]:
    frame = synthetic(n, seed=n)
    results = []

    seconds = timed(lambda: validate_frame(frame))
    results.append(("validate-data", n, seconds, timed(lambda: floor_validate(frame))))

    path = workdir / f"batch-{n}.parquet"
    frame.to_parquet(path, index=False)
    home = load_settings(home=workdir / f"ingest-{n}")
    seconds = timed(lambda: ingest_file(home, path))
    results.append(("ingest", n, seconds, timed(lambda: floor_ingest(path, workdir / f"floor-{n}.parquet"))))

    settings = load_settings(home=workdir / f"drift-{n}")
    settings.home.mkdir(parents=True)
    (settings.home / "registry").symlink_to(champion_home / "registry")
    registry = open_registry(settings)
    model = registry.load(settings.model_name, "champion")
    write_logs(settings, synthetic(n, seed=n + 1), model)
    since = datetime.now(UTC) - timedelta(hours=2)
    store = LocalLogStore(settings.logs_dir)
    seconds = timed(lambda: drift_report(settings, store, registry, since=since, out_dir=workdir / f"report-{n}"))
    results.append(("drift", n, seconds, timed(lambda: floor_drift(settings.logs_dir, load_builtin(), model))))
    # The same report's first part alone: reading the logged rows into arrays, its largest cost.
    results.append(
        ("drift: read", n, timed(lambda: read_logged_rows(store, since)), timed(lambda: floor_read(settings)))
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma-separated row counts")
    sizes = [int(s) for s in parser.parse_args().sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        champion = load_settings(home=workdir / "champion")
        retrain(champion)  # one champion on the built-in data, shared by every drift home
        # A small first pass so imports and caches are not charged to the smallest size.
        (workdir / "warm").mkdir()
        bench(1_000, workdir / "warm", champion.home)
        rows = [r for n in sizes for r in bench(n, workdir, champion.home)]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average (1, 5, 15 min) at the end: {load} on {os.cpu_count()} CPUs")
    print(f"{'step':<14}{'rows':>10}{'seconds':>10}{'rows/s':>12}{'floor s':>10}{'ratio':>8}{'s/row vs first':>16}")
    first: dict[str, float] = {}
    for step, n, seconds, floor in sorted(rows, key=lambda r: (r[0], r[1])):
        per_row = seconds / n
        first.setdefault(step, per_row)
        target = TARGETS.get((step, n))
        note = f"  (target < {target:.0f} s: {'met' if seconds < target else 'MISSED'})" if target else ""
        print(
            f"{step:<14}{n:>10}{seconds:>10.3f}{n / seconds:>12,.0f}{floor:>10.3f}{seconds / floor:>8.1f}"
            f"{per_row / first[step]:>16.2f}{note}"
        )


if __name__ == "__main__":
    main()
