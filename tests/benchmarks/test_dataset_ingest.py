"""Benchmark: dataset ingest throughput and the server's peak memory during an upload.

Run on demand (benchmarks are excluded from the default run):

    PRIVET_BENCH_UPLOAD_MB=500 nice -n 10 pytest tests/benchmarks/test_dataset_ingest.py -s

A CSV of the requested size is generated, then in the same run:
- baseline: Python's csv module merely parsing the file (``for row in csv.reader(f)``),
  measured before and after the upload (the faster is used: the machine may be shared);
- ingest: the file uploaded through a real ``privet serve`` over HTTP (multipart, streamed
  from disk by the client), where it is parsed, validated, PII-scanned, canonicalised,
  hashed, encrypted and stored as it arrives, then registered.
Prints MB/s for both and their ratio, in wall time and in CPU time (the server process's
user+system seconds, all threads, against the baseline's process time: steadier when
other work shares the cores), and the server process's peak RSS (VmHWM, and the
highest VmRSS sampled while the upload ran) against its RSS before the upload. The target
is a peak under 300 MB whatever the file size. No timed assertion.
"""

from __future__ import annotations

import csv
import json
import os
import random
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.e2e.conftest import start_server, stop_server

SIZE_MB = float(os.environ.get("PRIVET_BENCH_UPLOAD_MB", "500"))
WORDS = (
    "loan application approved denied income rent employer balance late payment claim "
    "policy car house repair water damage complaint branch service fee account card the a "
    "of and to in was is for on with as customer reported that not"
).split()


def generate_csv(path: Path, size_bytes: int) -> int:
    """A CSV of about `size_bytes`: text (some quoted, with commas), label, customer id."""
    rng = random.Random(42)
    block_rows = []
    for i in range(20000):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 40)))
        if i % 5 == 0:
            text = f'"{text}, and more"'
        block_rows.append(f"{text},{i % 3},cust-{i:06d}\n")
    block = "".join(block_rows).encode()
    rows = 0
    with path.open("wb") as out:
        out.write(b"text,label,customer\n")
        written = 0
        while written < size_bytes:
            out.write(block)
            written += len(block)
            rows += len(block_rows)
    return rows


def _baseline(data: Path) -> tuple[float, float]:
    """Wall and CPU seconds of csv.reader merely parsing the file."""
    t0, c0 = time.perf_counter(), time.process_time()
    with data.open(newline="", encoding="utf-8") as handle:
        for _ in csv.reader(handle):
            pass
    return time.perf_counter() - t0, time.process_time() - c0


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def test_dataset_ingest_throughput_and_peak_rss(tmp_path: Path) -> None:
    data = tmp_path / "bench.csv"
    rows = generate_csv(data, int(SIZE_MB * 1_000_000))
    size = data.stat().st_size
    mb = size / 1_000_000

    baseline_s, baseline_cpu = _baseline(data)

    server_tmp = tmp_path / "server-tmp"
    server_tmp.mkdir()
    server = start_server(tmp_path / "home", env={"TMPDIR": str(server_tmp)})
    try:
        pid = server.process.pid
        with server.client() as http:
            project = http.post("/v1/projects", json={"name": "bench"}).json()["id"]
        rss_before = _rss_kb(pid, "VmRSS")
        peak_sampled = rss_before
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak_sampled
            while not stop.is_set():
                peak_sampled = max(peak_sampled, _rss_kb(pid, "VmRSS"))
                time.sleep(0.05)

        boundary = uuid.uuid4().hex
        decl = {
            "name": "bench",
            "text_column": "text",
            "label_column": "label",
            "subject_id_column": "customer",
            "contains_personal_data": True,
            "data_categories": ["financial"],
            "purposes": ["benchmark"],
            "legal_basis": "contract",
            "retention_days": 1,
        }
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="declarations"\r\n\r\n'
            f"{json.dumps(decl)}\r\n--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="bench.csv"\r\n\r\n'
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()

        def body() -> Iterator[bytes]:
            yield head
            with data.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    yield chunk
            yield tail

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        cpu0 = _cpu_s(pid)
        t0 = time.perf_counter()
        with httpx.Client(
            base_url=server.url,
            headers={"Authorization": f"Bearer {server.admin_key}"},
            timeout=httpx.Timeout(600),
        ) as http:
            response = http.post(
                f"/v1/projects/{project}/datasets",
                content=body(),
                headers={
                    "content-type": f"multipart/form-data; boundary={boundary}",
                    "content-length": str(len(head) + size + len(tail)),
                },
            )
        ingest_s = time.perf_counter() - t0
        ingest_cpu = _cpu_s(pid) - cpu0
        stop.set()
        sampler.join()
        peak_hwm = _rss_kb(pid, "VmHWM")
        assert response.status_code == 201, response.text
        assert response.json()["row_count"] == rows
        assert [p for p in server_tmp.rglob("*") if p.is_file()] == []
    finally:
        stop_server(server)
    # the machine may be shared: measure the baseline again and use the faster of the two
    again_s, again_cpu = _baseline(data)
    baseline_s, baseline_cpu = min(baseline_s, again_s), min(baseline_cpu, again_cpu)

    print(
        f"\n[dataset ingest] {mb:.1f} MB CSV, {rows:,} rows\n"
        f"  baseline csv.reader parse only: {baseline_s:.2f} s = {mb / baseline_s:.1f} MB/s\n"
        f"  ingest through privet serve:    {ingest_s:.2f} s = {mb / ingest_s:.1f} MB/s\n"
        f"  ratio ingest / baseline (wall): {baseline_s / ingest_s:.3f}\n"
        f"  CPU: baseline {mb / baseline_cpu:.1f} MB/CPU-s, server {mb / ingest_cpu:.1f} "
        f"MB/CPU-s (all its threads); ratio {baseline_cpu / ingest_cpu:.3f}\n"
        f"  server RSS before upload:       {rss_before / 1024:.0f} MB\n"
        f"  server peak RSS during upload:  {peak_sampled / 1024:.0f} MB sampled, "
        f"{peak_hwm / 1024:.0f} MB VmHWM (target < 300 MB)"
    )
