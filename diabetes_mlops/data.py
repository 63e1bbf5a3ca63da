"""Datasets: the built-in diabetes data, CSV/Parquet files, merged batches, the split and the fingerprint."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from diabetes_mlops.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

FEATURES: tuple[str, ...] = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")
TARGET = "target"
COLUMNS: tuple[str, ...] = (*FEATURES, TARGET)
BUILTIN = "builtin"


def load_builtin() -> pd.DataFrame:
    """scikit-learn's diabetes data in its original units (age in years, sex 1/2, ...); no download."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame
    return frame.loc[:, list(COLUMNS)].astype("float64")


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file as it is (no validation); a file that is not a table is a DataError."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: the file holds no columns") from exc
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: not a valid CSV table ({str(exc).splitlines()[0]})") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a text CSV file (byte {exc.start} is not UTF-8)") from exc
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot be read as a table ({str(exc).splitlines()[0]})") from exc


def load_dataset(source: Path | str | None = None) -> pd.DataFrame:
    """The built-in data when ``source`` is None or ``"builtin"``, else the CSV/Parquet file at ``source``."""
    if source is None or str(source) == BUILTIN:
        return load_builtin()
    return read_table(Path(source))


def merge_batches(base: pd.DataFrame, *batches: pd.DataFrame) -> pd.DataFrame:
    """The base rows followed by each batch's rows, with a fresh index and the canonical columns."""
    import pandas as pd

    frames = [base.loc[:, list(COLUMNS)], *(b.loc[:, list(COLUMNS)] for b in batches)]
    return pd.concat(frames, ignore_index=True)


def split(frame: pd.DataFrame, test_size: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded train/test split: the same frame, size and seed always give the same rows."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(frame, test_size=test_size, random_state=seed, shuffle=True)
    return train, test


def fingerprint(frame: pd.DataFrame) -> str:
    """sha256 of the canonical content: column names, then the values as little-endian float64, row-major."""
    import numpy as np

    values = np.ascontiguousarray(frame.loc[:, list(COLUMNS)].to_numpy(dtype="<f8"))
    digest = hashlib.sha256(",".join(COLUMNS).encode() + b"\n")
    digest.update(values.tobytes())
    return digest.hexdigest()
