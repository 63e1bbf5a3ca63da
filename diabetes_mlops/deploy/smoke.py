"""The web-service test: health, readiness, one known payload, the expected shape, values and version."""

from __future__ import annotations

import ipaddress
import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
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


def _request(url: str, key: str | None, body: Mapping[str, object] | None = None) -> tuple[int, dict[str, str], bytes]:
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


def _checked_base(url: str) -> str:
    """The service's base URL from ``url`` (a trailing ``/score`` dropped); _CheckFailed unless http(s)://HOST."""
    text = url.strip()
    parts = urllib.parse.urlsplit(text)
    try:
        parts.port  # noqa: B018  (raises on a port that is not a number)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid:
        example = f"http://{text}" if "://" not in text else "http://127.0.0.1:8000"
        raise _CheckFailed(f"{url!r} is not a URL of a service: give http(s)://HOST[:PORT], for example {example}")
    return text.rstrip("/").removesuffix("/score")


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _wait_until_ready(base: str, key: str | None, deadline: float) -> None:
    """Poll ``/ready`` with exponential back-off until it answers 200 or the deadline passes.

    A loopback port nothing listens on fails at once: a local deployment holds its port from before its server
    starts, so nothing is starting there. Elsewhere a refusal or an unknown name may be a service (or its DNS
    name) on its way up, and is waited for.
    """
    parts = urllib.parse.urlsplit(base)
    delay, last = 0.1, "no answer"
    while True:
        try:
            status, _, _ = _request(f"{base}/ready", key)
            if status == 200:
                return
            last = f"/ready answered {status}"
        except (OSError, urllib.error.URLError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, ConnectionRefusedError) and _is_loopback(str(parts.hostname)):
                raise _CheckFailed(
                    f"nothing listens on {parts.hostname}:{parts.port or 80} (connection refused); "
                    "`diabetes-mlops endpoints` lists the local deployments"
                ) from None
            last = f"cannot connect ({reason})"
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
    result = SmokeResult(url, ok=False, reason="")
    try:
        result.url = base = _checked_base(url)
        _checks(base, key, expect_version, result, time.monotonic() + timeout)
    except _CheckFailed as exc:
        result.reason = str(exc)
        return result
    result.ok = True
    result.reason = f"all checks passed against {result.url}"
    return result
