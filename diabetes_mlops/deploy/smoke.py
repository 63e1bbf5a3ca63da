"""The web-service test: health, readiness, one known payload, the expected shape, values and version."""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field

REFERENCE_PAYLOAD = {"data": [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]]}
REQUEST_TIMEOUT_SECONDS = 10.0
SMOKE_TEST_HEADER = "X-Smoke-Test"


@dataclass
class SmokeResult:
    """``ok`` when every check passed; ``reason`` names the first that failed."""

    url: str
    ok: bool
    reason: str
    checks: list[str] = field(default_factory=list)
    model_version: int | None = None
    predictions: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class _CheckFailed(Exception):
    pass


def _request(url: str, key: str | None, body: dict[str, object] | None = None) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    if data:
        request.add_header("Content-Type", "application/json")
        # Tags the scoring log record as synthetic, so drift reports leave it out.
        request.add_header(SMOKE_TEST_HEADER, "1")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        # A new opener reads the proxy variables now; urlopen's is fixed at the process's first call.
        with urllib.request.build_opener().open(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def healthy(url: str) -> bool:
    """Whether the service at ``url`` answers ``/health`` with 200 now (no waiting, no retry)."""
    try:
        return _request(f"{url.rstrip('/')}/health", None)[0] == 200
    except OSError:
        return False


def _wait_until_ready(base: str, key: str | None, deadline: float) -> None:
    """Poll ``/ready`` with exponential back-off until it answers 200 or the deadline passes."""
    delay, last = 0.1, "no answer"
    while True:
        try:
            status, _, _ = _request(f"{base}/ready", key)
            if status == 200:
                return
            last = f"/ready answered {status}"
        except (OSError, urllib.error.URLError) as exc:
            last = f"cannot connect ({getattr(exc, 'reason', exc)})"
        if time.monotonic() + delay > deadline:
            raise _CheckFailed(f"service not ready in time: {last}")
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


def _checks(base: str, key: str | None, expect_version: int | None, result: SmokeResult, deadline: float) -> None:
    _wait_until_ready(base, key, deadline)
    status, _, _ = _request(f"{base}/health", key)
    if status != 200:
        raise _CheckFailed(f"/health answered {status}")
    result.checks.append("health")
    result.checks.append("ready")
    status, headers, body = _request(f"{base}/score", key, REFERENCE_PAYLOAD)
    if status != 200:
        raise _CheckFailed(f"/score answered {status}: {body[:200].decode(errors='replace')}")
    try:
        predictions = json.loads(body)["result"]
    except (ValueError, KeyError, TypeError):
        raise _CheckFailed("/score did not answer JSON with a 'result' list") from None
    expected_rows = len(REFERENCE_PAYLOAD["data"])
    if not isinstance(predictions, list) or len(predictions) != expected_rows:
        raise _CheckFailed(f"/score gave {predictions!r}, expected {expected_rows} predictions")
    if not all(isinstance(p, int | float) and math.isfinite(p) for p in predictions):
        raise _CheckFailed(f"/score gave non-finite or non-numeric predictions: {predictions!r}")
    result.predictions = predictions
    result.checks.append("score")
    header = headers.get("x-model-version")
    result.model_version = int(header) if header and header.isdigit() else None
    if expect_version is not None and result.model_version != expect_version:
        raise _CheckFailed(f"service runs model version {header}, expected {expect_version}")
    result.checks.append("model version")


def smoke_test(
    url: str, key: str | None = None, expect_version: int | None = None, timeout: float = 60.0
) -> SmokeResult:
    """Check a deployed service at ``url``; waits (bounded by ``timeout``) while it starts."""
    base = url.rstrip("/").removesuffix("/score")
    result = SmokeResult(base, ok=False, reason="")
    try:
        _checks(base, key, expect_version, result, time.monotonic() + timeout)
    except _CheckFailed as exc:
        result.reason = str(exc)
        return result
    result.ok = True
    result.reason = f"all checks passed against {base}"
    return result
