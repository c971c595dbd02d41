"""A closed-loop HTTP load generator for the gateway benchmarks (run as a subprocess so
the client's GIL does not share the server's): `python load.py URL PATH TOKEN CLIENTS SECONDS`
prints one JSON line {requests, errors, rps, p50_ms, p99_ms}."""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time

import httpx


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
