"""Our scoring service against Azure ML's inference server (azmlinfsrv) on the same model and machine.

Load comes from `wrk` (Debian's package: `apt-get install wrk`), one wrk thread, keep-alive connections,
sharing the two cores with the server under test. For each server it prints single-row requests/s and
p50/p99 latency at concurrency 1 and 32, rows/s with 1,000-row batches, cold start (spawn to first
answered /score) and resident memory, then the ratio ours/theirs. A last pair of runs measures what
the scoring log costs: our service with and without it at concurrency 32.

azmlinfsrv comes from the venv scripts/test.sh makes (.tools/azmlinfsrv); run `bash scripts/test.sh`
once first, or point AZMLINFSRV at its executable.

    python benchmarks/serving.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from common import free_port

from diabetes_mlops.config import load_settings
from diabetes_mlops.data import FEATURES, load_builtin
from diabetes_mlops.deploy.bundle import write_bundle
from diabetes_mlops.registry.local import LocalRegistry
from diabetes_mlops.train import make_pipeline

REPO = Path(__file__).resolve().parent.parent
AZMLINFSRV = Path(os.environ.get("AZMLINFSRV", REPO / ".tools" / "azmlinfsrv" / "bin" / "azmlinfsrv"))
ROW = [59.0, 2.0, 32.1, 101.0, 157.0, 93.2, 38.0, 4.0, 4.8598, 87.0]
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body}", "r")
wrk.body = f:read("*a")
f:close()
"""


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (gunicorn's master and workers), in MB."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            status = (proc / "status").read_text()
        except OSError:
            continue
        ppid = int(re.search(r"^PPid:\s+(\d+)", status, re.MULTILINE).group(1))
        if int(proc.name) == pid or ppid == pid:
            match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
            total += int(match.group(1)) if match else 0
    return total / 1024


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    cold_start: float

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start(name: str, args: list[str], port: int, cwd: Path, env: dict[str, str]) -> Server:
    began = time.perf_counter()
    process = subprocess.Popen(
        args, cwd=cwd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    body = json.dumps({"data": [ROW]}).encode()
    while True:
        try:
            request = urllib.request.Request(f"{url}/score", body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return Server(name, url, process, time.perf_counter() - began)
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"{name} exited while starting") from None
            time.sleep(0.02)


def wrk(url: str, body_file: Path, connections: int, seconds: int, work: Path) -> dict[str, float]:
    script = work / f"post-{body_file.stem}.lua"
    script.write_text(WRK_SCRIPT.format(body=body_file))
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), f"{url}/score"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def percentile(p: str) -> float:
        value, unit = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)$", out, re.MULTILINE).groups()
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    return {
        "rps": rps,
        "p50_ms": percentile("50"),
        "p99_ms": percentile("99"),
        "errors": int(errors.group(1)) if errors else 0,
    }


def measure(server: Server, single: Path, batch: Path, seconds: int, work: Path) -> dict[str, float]:
    c1 = wrk(server.url, single, 1, seconds, work)
    c32 = wrk(server.url, single, 32, seconds, work)
    batched = wrk(server.url, batch, 8, seconds, work)
    return {
        "rps_c1": c1["rps"],
        "p50_c1_ms": c1["p50_ms"],
        "p99_c1_ms": c1["p99_ms"],
        "rps_c32": c32["rps"],
        "p50_c32_ms": c32["p50_ms"],
        "p99_c32_ms": c32["p99_ms"],
        "batch_rows_per_s": batched["rps"] * 1000,
        "cold_start_s": server.cold_start,
        "rss_mb": rss_mb(server.process.pid),
        "errors": c1["errors"] + c32["errors"] + batched["errors"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="Duration of each wrk run.")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    if not AZMLINFSRV.exists():
        raise SystemExit(f"{AZMLINFSRV} is missing: run `bash scripts/test.sh` once, or set AZMLINFSRV")

    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    settings = load_settings(home=work / "home")
    frame = load_builtin()
    model = make_pipeline(settings.alpha).fit(frame.loc[:, list(FEATURES)], frame["target"])
    registry = LocalRegistry(settings.registry_dir)
    version = registry.register(settings.model_name, model, {}).version
    bundle = write_bundle(registry, settings.model_name, version, work / "bundle")
    single, batch = work / "single.json", work / "batch.json"
    single.write_text(json.dumps({"data": [ROW]}))
    batch.write_text(
        json.dumps(
            {"data": frame.loc[:, list(FEATURES)].sample(1000, replace=True, random_state=0).to_numpy().tolist()}
        )
    )

    ours_cmd = [sys.executable, "-m", "diabetes_mlops", "serve", "--model-dir", str(bundle / "model")]
    home = {"DIABETES_MLOPS_HOME": str(settings.home)}

    def start_ours(port: int, env: dict[str, str]) -> Server:
        return start("ours", [*ours_cmd, "--port", str(port)], port, REPO, {**home, **env})

    results: dict[str, dict[str, float]] = {}
    for name, make in (
        ("ours", lambda port: start_ours(port, {})),
        (
            "azmlinfsrv",
            lambda port: start(
                "azmlinfsrv",
                [str(AZMLINFSRV), "--entry_script", "score.py", "--port", str(port)],
                port,
                bundle,
                {"AZUREML_MODEL_DIR": str(bundle / "model"), "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{port}"},
            ),
        ),
        ("ours, no scoring log", lambda port: start_ours(port, {"DIABETES_MLOPS_SCORING_LOG": "false"})),
    ):
        server = make(free_port())
        try:
            results[name] = measure(server, single, batch, args.seconds, work)
        finally:
            server.stop()

    ours, theirs, unlogged = results["ours"], results["azmlinfsrv"], results["ours, no scoring log"]
    print(f"load: wrk -t1, {args.seconds} s per run, keep-alive; batches of 1,000 rows at concurrency 8")
    print(f"{'':24}{'ours':>14}{'azmlinfsrv':>14}{'ours/theirs':>14}{'ours, no log':>14}")
    rows = [
        ("req/s, c=1", "rps_c1", "{:.0f}"),
        ("p50 ms, c=1", "p50_c1_ms", "{:.2f}"),
        ("p99 ms, c=1", "p99_c1_ms", "{:.2f}"),
        ("req/s, c=32", "rps_c32", "{:.0f}"),
        ("p50 ms, c=32", "p50_c32_ms", "{:.2f}"),
        ("p99 ms, c=32", "p99_c32_ms", "{:.2f}"),
        ("rows/s, 1,000-row batch", "batch_rows_per_s", "{:.0f}"),
        ("cold start s", "cold_start_s", "{:.2f}"),
        ("RSS MB", "rss_mb", "{:.0f}"),
        ("non-2xx answers", "errors", "{:.0f}"),
    ]
    for label, key, fmt in rows:
        ratio = ours[key] / theirs[key] if theirs[key] else float("nan")
        print(
            f"{label:24}{fmt.format(ours[key]):>14}{fmt.format(theirs[key]):>14}{ratio:>14.2f}"
            f"{fmt.format(unlogged[key]):>14}"
        )
    # The log's cost is a few per cent, under the noise of one run: alternate the two, take the median.
    costs = []
    for _ in range(3):
        rates = {}
        for log in ("true", "false"):
            server = start_ours(free_port(), {"DIABETES_MLOPS_SCORING_LOG": log})
            try:
                rates[log] = wrk(server.url, single, 32, args.seconds, work)["rps"]
            finally:
                server.stop()
        costs.append(1 - rates["true"] / rates["false"])
    print(
        f"scoring log cost at c=32, 3 alternating pairs: {', '.join(f'{c:.1%}' for c in costs)}; "
        f"median {statistics.median(costs):.1%} (target under 10%)"
    )
    print(
        f"targets: c=32 throughput >= 3x theirs: {ours['rps_c32'] / theirs['rps_c32']:.2f}x; "
        f"p99 <= 1/3 of theirs: {ours['p99_c32_ms'] / theirs['p99_c32_ms']:.2f}; "
        f"batch rows/s >= 3x: {ours['batch_rows_per_s'] / theirs['batch_rows_per_s']:.2f}x"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
