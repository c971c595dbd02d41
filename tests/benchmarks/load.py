"""Closed-loop HTTP load for the gateway benchmarks: `measure()` runs `wrk` when it is
installed (`apt-get install wrk`), else this file's httpx generator in a subprocess.

Why wrk first: on the 2-core machine the httpx generator (64 tasks in one Python process)
was itself the bottleneck and the source of much of the tail. Against the same server,
in the same minute, `/healthz` measured 195/s with httpx and 1,992/s with wrk at 16
clients, and the audited GET at 64 clients p99 3.3 s with httpx and 0.55 s with wrk
(docs/SCALING.md, "64 clients"). Each result says which generator produced it.

As a script (the fallback): `python load.py URL PATH TOKEN CLIENTS SECONDS` prints one
JSON line {requests, errors, rps, p50_ms, p99_ms}.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_TIMEOUT_S = 120  # wrk's default (2 s) would drop the slow requests from its percentiles


@dataclass(frozen=True)
class Load:
    """One run's figures and the generator that produced them."""

    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    generator: str

    @classmethod
    def of(cls, figures: dict[str, float], generator: str) -> Load:
        return cls(
            requests=int(figures["requests"]),
            errors=int(figures["errors"]),
            rps=figures["rps"],
            p50_ms=figures["p50_ms"],
            p99_ms=figures["p99_ms"],
            generator=generator,
        )


def measure(url: str, path: str, token: str, clients: int, seconds: float) -> Load:
    """Run `clients` closed-loop connections for `seconds` after one warm-up request (not
    counted); the generator is wrk when found (PRIVET_BENCH_GENERATOR=httpx or wrk forces
    one)."""
    forced = os.environ.get("PRIVET_BENCH_GENERATOR", "")
    if forced not in ("", "wrk", "httpx"):
        raise ValueError(f"PRIVET_BENCH_GENERATOR must be wrk or httpx, not {forced!r}")
    wrk = shutil.which("wrk")
    if forced == "wrk" and wrk is None:
        raise RuntimeError("PRIVET_BENCH_GENERATOR=wrk but wrk is not installed")
    if wrk is not None and forced != "httpx":
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        httpx.get(url + path, headers=headers, timeout=_TIMEOUT_S)  # warm caches, as run() does
        return Load.of(_run_wrk(wrk, url + path, token, clients, seconds), "wrk")
    out = subprocess.run(
        [sys.executable, str(Path(__file__)), url, path, token, str(clients), str(seconds)],
        capture_output=True,
        text=True,
        check=True,
    )
    return Load.of(json.loads(out.stdout), "httpx")


def _run_wrk(wrk: str, url: str, token: str, clients: int, seconds: float) -> dict[str, float]:
    command = [wrk, "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s"]
    command += ["--timeout", f"{_TIMEOUT_S}s", "--latency"]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def parse_wrk(out: str) -> dict[str, float]:
    """The figures of `wrk --latency` output; errors are non-2xx answers plus socket
    errors (connect, read, write, timeout)."""
    requests = re.search(r"^\s*(\d+) requests in ([\d.]+)(\w+),", out, re.M)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    p50 = re.search(r"^\s+50%\s+([\d.]+)(\w+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(\w+)", out, re.M)
    if not (requests and rps and p50 and p99):
        raise ValueError(f"not wrk --latency output:\n{out}")
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        errors += int(non_2xx.group(1))
    sockets = re.search(r"Socket errors: (.*)", out)
    if sockets:
        errors += sum(int(n) for n in re.findall(r"\d+", sockets.group(1)))
    return {
        "requests": int(requests.group(1)),
        "errors": errors,
        "rps": float(rps.group(1)),
        "p50_ms": float(p50.group(1)) * _UNITS_MS[p50.group(2)],
        "p99_ms": float(p99.group(1)) * _UNITS_MS[p99.group(2)],
    }


async def _client(
    http: httpx.AsyncClient, path: str, until: float, lat: list[float], errors: list[int]
) -> None:
    while time.perf_counter() < until:
        start = time.perf_counter()
        try:
            response = await http.get(path)
            ok = response.status_code == 200
        except httpx.HTTPError:
            ok = False
        lat.append(time.perf_counter() - start)
        if not ok:
            errors.append(1)


async def run(url: str, path: str, token: str, clients: int, seconds: float) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    lat: list[float] = []
    errors: list[int] = []
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120, limits=limits) as http:
        await http.get(path)  # warm the connection and any caches
        begin = time.perf_counter()
        until = begin + seconds
        await asyncio.gather(*(_client(http, path, until, lat, errors) for _ in range(clients)))
        elapsed = time.perf_counter() - begin
    lat.sort()
    return {
        "requests": len(lat),
        "errors": len(errors),
        "rps": len(lat) / elapsed,
        "p50_ms": statistics.median(lat) * 1000 if lat else 0.0,
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else 0.0,
    }


if __name__ == "__main__":
    url, path, token, clients, seconds = sys.argv[1:6]
    print(json.dumps(asyncio.run(run(url, path, token, int(clients), float(seconds)))))
