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
