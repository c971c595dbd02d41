"""load.parse_wrk reads what `wrk --latency` prints (recorded from wrk 4.1.0; its trailing
spaces after the percentiles dropped here)."""

from __future__ import annotations

import pytest

from tests.benchmarks.load import parse_wrk

AUDITED_64 = """\
Running 8s test @ http://127.0.0.1:49121/v1/projects/prj_x52g_6uo-1ALAT8P
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   960.24ms  658.70ms   2.33s    61.44%
    Req/Sec    75.39    109.02   640.00     92.54%
  Latency Distribution
     50%    1.00s
     75%    1.53s
     90%    1.97s
     99%    2.26s
  525 requests in 8.03s, 160.99KB read
Requests/sec:     65.37
Transfer/sec:     20.04KB
"""


def test_reads_rate_percentiles_and_units() -> None:
    got = parse_wrk(AUDITED_64)
    assert got == {
        "requests": 525,
        "errors": 0,
        "rps": 65.37,
        "p50_ms": 1000.0,
        "p99_ms": pytest.approx(2260.0),
    }


def test_counts_non_2xx_answers_and_socket_errors_as_errors() -> None:
    out = AUDITED_64.replace("     50%    1.00s", "     50%  812.00us").replace(
        "Requests/sec:",
        "  Socket errors: connect 0, read 2, write 0, timeout 1\n"
        "  Non-2xx or 3xx responses: 7\nRequests/sec:",
    )
    got = parse_wrk(out)
    assert got["errors"] == 10
    assert got["p50_ms"] == pytest.approx(0.812)


def test_refuses_output_without_latency_figures() -> None:
    with pytest.raises(ValueError, match="not wrk --latency output"):
        parse_wrk("Usage: wrk <options> <url>\n")
