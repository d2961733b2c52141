"""The pipe server blocks in `recv` while it has one connection; everything else must still work."""

import time

from backend_clients import Backend


def test_pipe_clients_come_and_go_while_one_idles():
    b = Backend("pipe")
    try:
        first = b.client()
        assert first.request("eval", expr="1+1") == {"value": 2}
        for round_ in range(20):
            t = time.monotonic()
            other = b.client()  # the auth answer needs the main thread to notice the new client
            assert other.request("eval", expr="%d * 2" % round_) == {"value": round_ * 2}
            assert time.monotonic() - t < 2.0
            assert first.request("eval", expr="1+1") == {"value": 2}
            other.close()
            assert first.request("eval", expr="2+2") == {"value": 4}  # alone again
        # Frames split over several sends, while alone.
        data = b'{"id": 9, "op": "eval", "expr": "3+3"}'
        frame = len(data).to_bytes(4, "big") + data
        for cut in (1, 3, 4, 10):
            first.sock.sendall(frame[:cut])
            time.sleep(0.01)
            first.sock.sendall(frame[cut:])
            assert first.recv_frame() == {"id": 9, "value": 6}
        # A shutdown from a second client while the first idles: the server stops promptly.
        t = time.monotonic()
        assert b.client().request("shutdown") == {"value": True}
        b.proc.wait(5)
        assert time.monotonic() - t < 3.0
        assert b.proc.returncode == 0
    finally:
        b.stop()


def test_pipe_answers_info_during_each_long_call():
    """Every long call hands the sockets to the watcher within 50 ms, also the second in a row
    and one after an idle pause (the long-call tick stops when idle and restarts with a call)."""
    b = Backend("pipe")
    try:
        runner, other = b.client(), b.client()
        for pause in (0, 0, 0.3):
            time.sleep(pause)
            for _ in range(50):  # short calls first: the tick is running when the long call starts
                assert runner.request("eval", expr="1") == {"value": 1}
            t = time.monotonic()
            runner.send_frame({"id": 1, "op": "exec", "code": "import time; time.sleep(0.8)"})
            time.sleep(0.1)
            assert other.request("info")["value"]["transport"] == "pipe"
            assert time.monotonic() - t < 0.5, "info waited for the long call"
            assert runner.recv_frame()["id"] == 1
            assert time.monotonic() - t >= 0.8
        # A call on the other connection, queued during a long call, runs after it in order.
        runner.send_frame({"id": 2, "op": "exec", "code": "import time; time.sleep(0.3); x = 1"})
        time.sleep(0.1)
        assert other.request("eval", expr="x") == {"value": 1}
        assert runner.recv_frame() == {"id": 2, "stdout": "", "stderr": "", "value": None}
    finally:
        b.stop()
