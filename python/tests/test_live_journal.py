"""The journal is bounded: a reader is told what was dropped, and the server's memory stays
bounded over many calls that print more than the bound."""

import pytest
from backend_clients import TRANSPORTS, Backend, backend_env
from live_clients import attach, stream

BOUND = 256 * 1024
# 1 MiB in 16 prints of 64 KiB: four times the bound.
BIG = "def big():\n    for i in range(16):\n        print(str(i % 10) * 65535)\n    return 'ok'\n"


def start(transport):
    env = backend_env("t" * 64, BEEP_BACKEND_JOURNAL_BYTES=str(BOUND), BEEP_BACKEND_JOURNAL_CALLS="8")
    return Backend(transport, token="t" * 64, env=env)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(next(line.split()[1] for line in f if line.startswith("VmRSS:")))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_reader_is_told_what_was_dropped(transport):
    b = start(transport)
    try:
        c = b.client()
        c.request("exec", code=BIG)
        answer = c.request("eval", expr="big()", call="big-1")
        assert answer == {"value": "ok"}
        events = list(attach(transport, b.address, b.token, "big-1"))
        end = events.pop()
        assert end["body"]["value"] == "ok"
        dropped = events[0]
        assert dropped["event"] == "dropped" and dropped["seq_from"] == 1
        kept = events[1:]
        assert all(e["event"] == "output" for e in kept)
        assert kept[0]["seq"] == dropped["seq_to"] + 1
        kept_bytes = sum(len(e["data"].encode()) for e in kept)
        assert kept_bytes <= BOUND
        assert dropped["bytes"] + kept_bytes == 16 * 65536  # every byte is accounted for
        # Attaching after a seq inside the dropped part: told the rest of it.
        events = list(attach(transport, b.address, b.token, "big-1", after=2))
        assert events[0]["event"] == "dropped" and events[0]["seq_from"] == 3
        assert events[0]["seq_to"] == dropped["seq_to"]
        assert 0 < events[0]["bytes"] < dropped["bytes"]
        # A live reader of a call that prints faster than it reads: every byte is either
        # delivered or counted as dropped.
        live = list(stream(transport, b.address, b.token, "eval", {"expr": "big()"}))
        assert live[-1]["body"]["value"] == "ok"
        got = sum(len(e["data"].encode()) for e in live if e["event"] == "output")
        lost = sum(e["bytes"] for e in live if e["event"] == "dropped")
        assert got + lost == 16 * 65536
        c.close()
    finally:
        b.stop()


def test_memory_stays_bounded_over_100_calls_over_the_bound():
    b = start("pipe")
    try:
        c = b.client()
        c.request("exec", code=BIG)
        for _ in range(10):
            assert c.request("eval", expr="big()") == {"value": "ok"}
        before = rss_kib(b.proc.pid)
        for _ in range(100):
            assert c.request("eval", expr="big()") == {"value": "ok"}
        after = rss_kib(b.proc.pid)
        calls = c.request("calls")["value"]
        assert len(calls) == 8  # BEEP_BACKEND_JOURNAL_CALLS
        assert all(r["output_bytes"] == 16 * 65536 for r in calls if r["op"] == "eval")
        # 100 more MiB of output went through; what is kept is 8 calls x 256 KiB at most.
        assert after - before < 8 * 1024, (before, after)
        print("RSS before %d KiB, after 100 calls of 1 MiB each %d KiB" % (before, after))
        c.close()
    finally:
        b.stop()
