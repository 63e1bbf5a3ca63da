"""Batch scoring of a CSV or Parquet file of any size: streamed in fixed chunks on all cores, resumable.

Three stages overlap, each in its own threads (pyarrow and numpy release the GIL): a reader decodes the
input (pyarrow) into chunks of exactly ``chunk_rows`` rows; a pool validates and scores each chunk on its
columns as numpy arrays and writes its part; the main thread writes the parts, in order, into the output.
Rows that fail a per-value check of the schema (not a number, null, not finite, out of range) are not
scored: they go to the rejects file with their reasons, as ``ingest`` quarantines them. While it runs::

    OUTPUT.parts/manifest.json         the input (path, size, mtime), the model and the chunk size
    OUTPUT.parts/part-000042.arrow     chunk 42's predictions (Arrow IPC): row_id, prediction
    OUTPUT.parts/rejects-000042.csv    chunk 42's rejected rows, row (its row_id) and reason first
    OUTPUT.tmp                         the output so far

A part is renamed into place whole, after its rejects, so a part that exists is a chunk done. A run that
was killed is resumed by running it again: the output is written again from the start, the chunks done
taken from their parts instead of being scored (a manifest that no longer matches starts over). At the
end OUTPUT (Parquet, or CSV by its suffix) and ``OUTPUT.rejects.csv`` are renamed into place, each whole,
and the parts directory is removed.
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
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from diabetes_mlops import progress
from diabetes_mlops.data import FEATURES
from diabetes_mlops.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from diabetes_mlops.serving.model import ServedModel

CHUNK_ROWS = 1 << 18
ROW_ID, PREDICTION, MODEL_VERSION = "row_id", "prediction", "model_version"
MANIFEST = "manifest.json"
# pyarrow's CSV reader parses a block at a time: blocks of 16 MiB make batches of about 400k rows.
CSV_BLOCK_BYTES = 1 << 24
T = TypeVar("T")


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


def _batches(path: Path, batch_rows: int) -> Iterator[pa.RecordBatch]:
    """The feature columns of a CSV (as text, converted per chunk) or Parquet file, batch by batch."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            parquet = pq.ParquetFile(path)
            _require_features(path, parquet.schema_arrow.names)
            yield from parquet.iter_batches(batch_size=batch_rows, columns=list(FEATURES))
            return
        with open(path, newline="", encoding="utf-8", errors="replace") as fh:
            _require_features(path, next(csv.reader(fh), []))
        text = {name: pa.string() for name in FEATURES}
        options = pacsv.ConvertOptions(column_types=text, include_columns=list(FEATURES), strings_can_be_null=True)
        yield from pacsv.open_csv(path, pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES), convert_options=options)
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


def _read_ahead(items: Iterator[T], depth: int, reader: ThreadPoolExecutor) -> Iterator[T]:
    """``items``, made by ``reader`` (one thread) up to ``depth`` ahead of the caller, starting now."""
    end = object()
    ahead = deque(reader.submit(next, items, end) for _ in range(depth))

    def drain() -> Iterator[T]:
        while (item := ahead.popleft().result()) is not end:
            ahead.append(reader.submit(next, items, end))
            yield item  # type: ignore[misc]

    return drain()


def _column(values: pa.ChunkedArray) -> np.ndarray:
    """A column as float64 (not copied when it is one); null or text that is not a number becomes NaN."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        array = pc.cast(values, pa.float64()).combine_chunks()
    except pa.ArrowInvalid:
        return np.array([_number(v) for v in values.to_pylist()], dtype=np.float64)
    # The buffers, not to_numpy: pyarrow's conversions import pandas (a quarter of a second) to look for its types.
    validity, data = array.buffers()
    column = np.frombuffer(data, np.float64, len(array), array.offset * 8)
    if array.null_count:
        bits = np.unpackbits(np.frombuffer(validity, np.uint8), count=array.offset + len(array), bitorder="little")
        column = np.where(bits[array.offset :].view(bool), column, np.nan)
    return column


def _arrow(values: np.ndarray) -> pa.Array:
    """A contiguous numpy array as an Arrow array, not copied (and without pa.array, which imports pandas)."""
    import pyarrow as pa

    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values), [None, pa.py_buffer(values)])


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


class _ChunkScorer:
    """Validates, scores and writes one chunk's part; shared by the pool's threads (it holds no mutable state)."""

    def __init__(self, served: ServedModel, parts: Path, source: str) -> None:
        from diabetes_mlops.schema import reference_stats

        bounds = [reference_stats().columns[name].bounds for name in FEATURES]
        self.low = [lo for lo, _ in bounds]
        self.high = [hi for _, hi in bounds]
        self.served = served
        self.parts = parts
        self.source = source

    def __call__(self, index: int, first_row: int, table: pa.Table) -> pa.Table:
        import pyarrow as pa

        columns = [_column(table.column(name)) for name in FEATURES]
        # In range is also finite and not null (NaN compares false): one pass per bound and column.
        good = np.ones(table.num_rows, dtype=bool)
        check = np.empty_like(good)
        for column, low, high in zip(columns, self.low, self.high, strict=True):
            np.greater_equal(column, low, out=check)
            good &= check
            np.less_equal(column, high, out=check)
            good &= check
        predictions = self.served.predict_columns(columns)
        row_ids = np.arange(first_row, first_row + table.num_rows, dtype=np.int64)
        if not good.all():
            self._reject(index, table.filter(pa.array(~good)), row_ids[~good])
            predictions, row_ids = predictions[good], row_ids[good]
        scored = pa.Table.from_arrays([_arrow(row_ids), _arrow(predictions)], names=[ROW_ID, PREDICTION])
        final = self.parts / f"part-{index:06d}.arrow"
        temporary = final.with_suffix(".tmp")
        with pa.OSFile(str(temporary), "wb") as sink, pa.ipc.new_file(sink, scored.schema) as writer:
            writer.write_table(scored)
        os.replace(temporary, final)
        return scored

    def _reject(self, index: int, rows: pa.Table, row_ids: np.ndarray) -> None:
        """The chunk's rejected rows and their reasons, found by the schema as ``ingest`` finds them."""
        from diabetes_mlops.ingest import REASON, ROW, row_reasons, write_quarantine

        frame = rows.to_pandas().set_axis(row_ids)
        reasons, _ = row_reasons(frame, self.source, with_target=False)
        frame.insert(0, REASON, ["; ".join(reasons.get(int(i), ["not a number"])) for i in row_ids])
        frame.insert(0, ROW, row_ids)
        write_quarantine(self.parts / f"rejects-{index:06d}.csv", frame)


def _read_part(path: Path) -> pa.Table:
    """A chunk's part, done by an earlier run (memory-mapped, not copied)."""
    import pyarrow as pa

    return pa.ipc.open_file(pa.memory_map(str(path))).read_all()


class _Output:
    """The output file, written chunk by chunk in row order: Parquet, or CSV."""

    def __init__(self, path: Path, version: int, *, as_csv: bool) -> None:
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        self.version = version
        # Never null (Parquet's "required"): no definition levels to write.
        self.schema = pa.schema(
            [
                pa.field(ROW_ID, pa.int64(), nullable=False),
                pa.field(PREDICTION, pa.float64(), nullable=False),
                pa.field(MODEL_VERSION, pa.int64(), nullable=False),
            ]
        )
        self.writer: pq.ParquetWriter | pacsv.CSVWriter
        if as_csv:
            self.writer = pacsv.CSVWriter(str(path), self.schema)
        else:
            # Dictionary encoding is tried on every column by default, and costs more than the rest of the
            # write on ids and predictions (all distinct); ids that count up take 1 bit a row in deltas.
            self.writer = pq.ParquetWriter(
                str(path),
                self.schema,
                use_dictionary=[MODEL_VERSION],
                column_encoding={ROW_ID: "DELTA_BINARY_PACKED", PREDICTION: "PLAIN"},
            )
        self.n_rows = 0

    def write(self, scored: pa.Table) -> None:
        import pyarrow as pa

        versions = _arrow(np.full(scored.num_rows, self.version, dtype=np.int64))
        self.writer.write_table(pa.Table.from_arrays([*scored.columns, versions], schema=self.schema))
        self.n_rows += scored.num_rows

    def close(self) -> None:
        self.writer.close()


def score_batch(
    input_path: Path,
    output_path: Path,
    served: ServedModel | Future[ServedModel],
    *,
    chunk_rows: int = CHUNK_ROWS,
    workers: int | None = None,
) -> BatchResult:
    """Score every valid row of ``input_path`` into ``output_path``; resumes a run that was killed.

    ``served`` may still be loading (a Future): the input is opened and its first chunks read meanwhile.
    """
    started = time.perf_counter()
    input_path, output_path = Path(input_path), Path(output_path)
    if not input_path.is_file():
        raise DataError(f"{input_path}: no such file")
    workers = workers or os.cpu_count() or 1
    temporary = output_path.with_name(output_path.name + ".tmp")
    with (
        progress.task(f"score-batch {input_path}"),
        ThreadPoolExecutor(1) as reader,
        ThreadPoolExecutor(workers) as pool,
    ):
        progress.update(f"scoring chunks of {chunk_rows} rows on {workers} threads")
        chunks = _read_ahead(_chunks(_batches(input_path, chunk_rows), chunk_rows), 2, reader)
        model = served.result() if isinstance(served, Future) else served
        parts = _parts_for(input_path, output_path, model, chunk_rows)
        chunk_scorer = _ChunkScorer(model, parts, str(input_path))
        output = _Output(temporary, model.version, as_csv=output_path.suffix.lower() == ".csv")
        try:
            n_rows, n_chunks, resumed = _score_in_order(chunks, parts, chunk_scorer, output, output_path, pool, workers)
        except BaseException:
            output.close()
            temporary.unlink()
            raise
        output.close()
    if n_rows == 0:
        temporary.unlink()
        raise DataError(f"{input_path}: the file holds no rows")
    rejects = output_path.with_name(output_path.name + ".rejects.csv")
    n_rejected = _join_csv(sorted(parts.glob("rejects-*.csv")), rejects)
    os.replace(temporary, output_path)
    shutil.rmtree(parts)
    return BatchResult(
        str(input_path),
        str(output_path),
        str(rejects) if n_rejected else None,
        model.name,
        model.version,
        n_rows,
        output.n_rows,
        n_rejected,
        n_chunks,
        resumed,
        time.perf_counter() - started,
    )


def _score_in_order(
    chunks: Iterator[pa.Table],
    parts: Path,
    chunk_scorer: _ChunkScorer,
    output: _Output,
    shown_as: Path,
    pool: ThreadPoolExecutor,
    workers: int,
) -> tuple[int, int, int]:
    """Score chunks on ``pool`` (a part already written is read back instead) and write them in input order,
    at most ``2 * workers`` in flight; the rows, chunks and resumed chunks seen."""
    n_rows = n_chunks = resumed = 0
    pending: deque[Future[pa.Table]] = deque()
    for index, table in enumerate(chunks):
        n_chunks += 1
        part = parts / f"part-{index:06d}.arrow"
        if part.exists():
            resumed += 1
            pending.append(pool.submit(_read_part, part))
        else:
            pending.append(pool.submit(chunk_scorer, index, n_rows, table))
        n_rows += table.num_rows
        while len(pending) > 2 * workers:
            output.write(pending.popleft().result())
            progress.advance()
    progress.update(f"writing {shown_as} from {n_chunks} chunks")
    while pending:
        output.write(pending.popleft().result())
        progress.advance()
    return n_rows, n_chunks, resumed


def _parts_for(input_path: Path, output_path: Path, served: ServedModel, chunk_rows: int) -> Path:
    """The parts directory: the one an earlier run of the same input, model and chunks left, else a new one."""
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
    return parts


def _read_manifest(parts: Path) -> object:
    try:
        return json.loads((parts / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


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
