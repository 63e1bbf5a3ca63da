"""The scoring logs read for a drift report: every real (not synthetic) input row and prediction since a time."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from dataclasses import dataclass
from operator import itemgetter, methodcaller
from typing import TYPE_CHECKING

from diabetes_mlops import progress
from diabetes_mlops.data import FEATURES
from diabetes_mlops.errors import MlopsError

if TYPE_CHECKING:
    from datetime import datetime

    import numpy as np

    from diabetes_mlops.monitoring.sinks import LogSink

# Logged records turned into arrays at a time: bounds the Python objects alive while reading.
READ_CHUNK = 65_536


@dataclass
class LoggedRows:
    """Every input row and prediction logged since a time, and how many requests each model version served."""

    inputs: np.ndarray
    predictions: np.ndarray
    n_requests: int
    model_versions: dict[str, int]


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while millions of small, acyclic lists are built.

    Each collection would walk every list kept so far, which made reading 1M records a third slower;
    the records hold no cycles, so reference counting frees everything that is dropped meanwhile.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_logged_rows(sink: LogSink, since: datetime | None) -> LoggedRows:
    """Collect the logged rows in bulk: records in chunks, each chunk turned into numpy arrays at once.

    Chunks keep the Python objects of at most ``READ_CHUNK`` records alive (not a million), and
    map/zip/fromiter keep the per-record work out of the interpreter loop.
    """
    from collections import Counter
    from itertools import chain, filterfalse, islice

    import numpy as np

    width = len(FEATURES)
    real = filterfalse(methodcaller("get", "synthetic"), sink.read(since))
    records = map(itemgetter("inputs", "predictions", "model_version"), real)
    matrices: list[np.ndarray] = []
    predictions: list[np.ndarray] = []
    versions: Counter[object] = Counter()
    with _gc_paused():
        while parts := list(islice(records, READ_CHUNK)):
            inputs, outputs, served_by = zip(*parts, strict=True)
            n_rows = sum(map(len, inputs))
            try:
                if sum(map(len, chain.from_iterable(inputs))) != width * n_rows:
                    raise MlopsError(f"the scoring logs hold input rows that do not have {width} values")
                flat = chain.from_iterable(chain.from_iterable(inputs))
                matrices.append(np.fromiter(flat, "float64", count=width * n_rows).reshape(-1, width))
                predictions.append(np.fromiter(chain.from_iterable(outputs), "float64"))
            except (ValueError, TypeError) as exc:
                raise MlopsError(f"the scoring logs hold malformed inputs or predictions ({exc})") from exc
            # No ``del`` of the chunk here: freeing it before the next one is read measured 40% slower at 1M
            # rows; rebinding frees it a chunk later, and at most one chunk outlives the collector's pause.
            versions.update(served_by)
            progress.advance(len(parts))
    # Column-major, so each feature's values are contiguous for sorting and binning.
    matrix = np.asfortranarray(np.concatenate(matrices)) if matrices else np.empty((0, width))
    preds = np.concatenate(predictions) if predictions else np.empty(0)
    if len(preds) != len(matrix):
        raise MlopsError(f"the scoring logs hold {len(matrix)} input rows but {len(preds)} predictions")
    return LoggedRows(matrix, preds, sum(versions.values()), {str(v): n for v, n in versions.items()})
