"""Batch scoring of a CSV or Parquet file of any size: streamed in fixed chunks on all cores, resumable.

The input is read as a stream of record batches (pyarrow), cut into chunks of ``chunk_rows`` rows, and
each chunk is validated, scored and written by a pool of threads (pyarrow and numpy release the GIL).
Rows that fail a per-value check of the schema (not a number, null, not finite, out of range) are not
scored: they go to the rejects file with their reasons, as ``ingest`` quarantines them. While it runs::

    OUTPUT.parts/manifest.json         the input (path, size, mtime), the model and the chunk size
    OUTPUT.parts/part-000042.parquet   chunk 42's predictions: row_id, prediction, model_version
    OUTPUT.parts/rejects-000042.csv    chunk 42's rejected rows, row (its row_id) and reason first

A part is renamed into place whole, after its rejects, so a part that exists is a chunk done. A run that
was killed is resumed by running it again: the chunks done are skipped (a manifest that no longer
matches starts over). At the end the parts are joined into OUTPUT (Parquet, or CSV by its suffix) and
``OUTPUT.rejects.csv``, both renamed into place, and the parts directory is removed.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from diabetes_mlops import progress
from diabetes_mlops.data import FEATURES
from diabetes_mlops.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa

    from diabetes_mlops.serving.model import ServedModel

CHUNK_ROWS = 1 << 18
ROW_ID, PREDICTION, MODEL_VERSION = "row_id", "prediction", "model_version"
MANIFEST = "manifest.json"


@dataclass
class BatchResult:
    """What one run scored, rejected and skipped (chunks done by an earlier, killed run), and where."""

    input: str
    output: str
    rejects_file: str | None
    model_name: str
    model_version: int
    n_rows: int
    n_scored: int
    n_rejected: int
    n_chunks: int
    n_chunks_resumed: int
    seconds: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def summary(self) -> str:
        """Human text: the counts, the rate, the files."""
        rate = self.n_rows / self.seconds if self.seconds else 0.0
        lines = [
            f"{self.input}: {self.n_rows} rows: {self.n_scored} scored by {self.model_name}:{self.model_version}, "
            f"{self.n_rejected} rejected ({rate:,.0f} rows/s)",
            f"predictions: {self.output}",
        ]
        if self.n_chunks_resumed:
            lines.append(f"resumed: {self.n_chunks_resumed} of {self.n_chunks} chunks were done by an earlier run")
        if self.rejects_file:
            lines.append(f"rejects: {self.rejects_file}")
        return "\n".join(lines)


def _batches(path: Path) -> Iterator[pa.RecordBatch]:
    """The feature columns of a CSV (as text, converted per chunk) or Parquet file, batch by batch."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            parquet = pq.ParquetFile(path)
            _require_features(path, parquet.schema_arrow.names)
            yield from parquet.iter_batches(batch_size=1 << 18, columns=list(FEATURES))
            return
        with open(path, newline="", encoding="utf-8", errors="replace") as fh:
            _require_features(path, next(csv.reader(fh), []))
        text = {name: pa.string() for name in FEATURES}
        options = pacsv.ConvertOptions(column_types=text, include_columns=list(FEATURES), strings_can_be_null=True)
        yield from pacsv.open_csv(path, convert_options=options)
    except pa.ArrowInvalid as exc:
        raise DataError(f"{path}: not a readable table: {exc}") from None


def _require_features(path: Path, names: list[str]) -> None:
    missing = [name for name in FEATURES if name not in names]
    if missing:
        raise DataError(f"{path}: no column {', '.join(missing)}: nothing scored")


def _chunks(batches: Iterator[pa.RecordBatch], size: int) -> Iterator[pa.Table]:
    """Tables of exactly ``size`` rows (the last one fewer), whatever the reader's batch sizes."""
    import pyarrow as pa

    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        while batch.num_rows:
            take = min(size - count, batch.num_rows)
            pending.append(batch.slice(0, take))
            count += take
            batch = batch.slice(take)
            if count == size:
                yield pa.Table.from_batches(pending)
                pending, count = [], 0
    if count:
        yield pa.Table.from_batches(pending)


def _column(values: pa.ChunkedArray) -> np.ndarray:
    """A column as float64; null or text that is not a number becomes NaN (and so a rejected row)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return pc.cast(values, pa.float64()).to_numpy()
    except pa.ArrowInvalid:
        return np.array([_number(v) for v in values.to_pylist()], dtype=np.float64)


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


class _ChunkScorer:
    """Validates, scores and writes one chunk; shared by the pool's threads (it holds no mutable state)."""

    def __init__(self, served: ServedModel, parts: Path, source: str) -> None:
        from diabetes_mlops.schema import reference_stats

        bounds = [reference_stats().columns[name].bounds for name in FEATURES]
        self.low = [lo for lo, _ in bounds]
        self.high = [hi for _, hi in bounds]
        self.served = served
        self.parts = parts
        self.source = source

    def __call__(self, index: int, first_row: int, table: pa.Table) -> tuple[int, int]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = [_column(table.column(name)) for name in FEATURES]
        # In range is also finite and not null (NaN compares false): one pass per bound and column.
        good = np.ones(table.num_rows, dtype=bool)
        for column, low, high in zip(columns, self.low, self.high, strict=True):
            np.logical_and(good, column >= low, out=good)
            np.logical_and(good, column <= high, out=good)
        predictions = self.served.predict_columns(columns)
        row_ids = np.arange(first_row, first_row + table.num_rows, dtype=np.int64)
        n_rejected = table.num_rows - int(np.count_nonzero(good))
        if n_rejected:
            self._reject(index, table.filter(pa.array(~good)), row_ids[~good])
            predictions, row_ids = predictions[good], row_ids[good]
        scored = pa.table(
            {
                ROW_ID: row_ids,
                PREDICTION: predictions,
                MODEL_VERSION: pa.repeat(pa.scalar(self.served.version, pa.int64()), len(predictions)),
            }
        )
        final = self.parts / f"part-{index:06d}.parquet"
        temporary = final.with_suffix(".tmp")
        pq.write_table(scored, temporary)
        os.replace(temporary, final)
        return len(predictions), n_rejected

    def _reject(self, index: int, rows: pa.Table, row_ids: np.ndarray) -> None:
        """The chunk's rejected rows and their reasons, found by the schema as ``ingest`` finds them."""
        from diabetes_mlops.ingest import REASON, ROW, row_reasons, write_quarantine

        frame = rows.to_pandas().set_axis(row_ids)
        reasons, _ = row_reasons(frame, self.source, with_target=False)
        frame.insert(0, REASON, ["; ".join(reasons.get(int(i), ["not a number"])) for i in row_ids])
        frame.insert(0, ROW, row_ids)
        write_quarantine(self.parts / f"rejects-{index:06d}.csv", frame)


def score_batch(
    input_path: Path,
    output_path: Path,
    served: ServedModel,
    *,
    chunk_rows: int = CHUNK_ROWS,
    workers: int | None = None,
) -> BatchResult:
    """Score every valid row of ``input_path`` into ``output_path``; resumes a run that was killed."""
    started = time.perf_counter()
    input_path, output_path = Path(input_path), Path(output_path)
    if not input_path.is_file():
        raise DataError(f"{input_path}: no such file")
    parts = output_path.with_name(output_path.name + ".parts")
    stat = input_path.stat()
    manifest = {
        "input": str(input_path.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "model": [served.name, served.version],
        "chunk_rows": chunk_rows,
    }
    if not parts.is_dir() or _read_manifest(parts) != manifest:
        shutil.rmtree(parts, ignore_errors=True)
        parts.mkdir(parents=True)
        (parts / MANIFEST).write_text(json.dumps(manifest))
    chunk_scorer = _ChunkScorer(served, parts, str(input_path))
    workers = workers or os.cpu_count() or 1
    n_rows = n_scored = n_rejected = n_chunks = resumed = 0
    pending: deque[Future[tuple[int, int]]] = deque()
    with progress.task(f"score-batch {input_path}"), ThreadPoolExecutor(workers) as pool:
        progress.update(f"scoring chunks of {chunk_rows} rows on {workers} threads")
        for index, table in enumerate(_chunks(_batches(input_path), chunk_rows)):
            n_chunks += 1
            if (parts / f"part-{index:06d}.parquet").exists():
                resumed += 1
                progress.advance()
            else:
                pending.append(pool.submit(chunk_scorer, index, n_rows, table))
            n_rows += table.num_rows
            while len(pending) > 2 * workers:
                pending.popleft().result()
                progress.advance()
        while pending:
            pending.popleft().result()
            progress.advance()
        if n_rows == 0:
            raise DataError(f"{input_path}: the file holds no rows")
        progress.update(f"writing {output_path} from {n_chunks} chunks")
        n_scored, n_rejected = _assemble(parts, output_path, n_chunks)
    rejects = output_path.with_name(output_path.name + ".rejects.csv")
    return BatchResult(
        str(input_path),
        str(output_path),
        str(rejects) if n_rejected else None,
        served.name,
        served.version,
        n_rows,
        n_scored,
        n_rejected,
        n_chunks,
        resumed,
        time.perf_counter() - started,
    )


def _read_manifest(parts: Path) -> object:
    try:
        return json.loads((parts / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _assemble(parts: Path, output_path: Path, n_chunks: int) -> tuple[int, int]:
    """Join the parts into the output and the rejects file, each renamed into place; the rows of each."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    temporary = output_path.with_name(output_path.name + ".tmp")
    n_scored = 0
    writer: pq.ParquetWriter | pacsv.CSVWriter | None = None
    for index in range(n_chunks):
        table = pq.read_table(parts / f"part-{index:06d}.parquet")
        if writer is None:
            as_csv = output_path.suffix.lower() == ".csv"
            writer = pacsv.CSVWriter(temporary, table.schema) if as_csv else pq.ParquetWriter(temporary, table.schema)
        writer.write_table(table)
        n_scored += table.num_rows
    assert writer is not None
    writer.close()
    rejects = output_path.with_name(output_path.name + ".rejects.csv")
    n_rejected = _join_csv(sorted(parts.glob("rejects-*.csv")), rejects)
    os.replace(temporary, output_path)
    shutil.rmtree(parts)
    return n_scored, n_rejected


def _join_csv(files: list[Path], target: Path) -> int:
    """Concatenate CSV files with one header into ``target`` (removed when there are none); the rows."""
    if not files:
        target.unlink(missing_ok=True)
        return 0
    temporary = target.with_name(target.name + ".tmp")
    rows = 0
    with open(temporary, "wb") as out:
        for i, path in enumerate(files):
            with open(path, "rb") as fh:
                header = fh.readline()
                if i == 0:
                    out.write(header)
                for line in fh:
                    out.write(line)
                    rows += 1
    os.replace(temporary, target)
    return rows
