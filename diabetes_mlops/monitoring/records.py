"""The scoring log record: one JSON object per scoring request, one line each in the log store."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import orjson


@dataclass(frozen=True)
class ScoringRecord:
    """A scored request: ``inputs`` are rows in the order of ``data.FEATURES``, one prediction per row."""

    request_id: str
    time: str
    model_name: str
    model_version: int
    inputs: list[list[float]]
    predictions: list[float]
    latency_ms: float
    traceparent: str | None = None
    synthetic: bool = False  # sent by a smoke test: kept in the log, left out of drift reports

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ScoringRecord:
        return cls(**data)  # type: ignore[arg-type]


def encode_record(record: dict[str, object]) -> bytes:
    """One JSON line; numpy arrays in the record are written by orjson directly, without Python lists."""
    return orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE)
