"""4 clients in parallel, 2000 calls each, on every transport: no error, no mixed-up answer."""

import threading

CLIENTS = 4
CALLS = 2000


def test_parallel_clients(backend):
    errors = []

    def work(k):
        c = backend.client()
        try:
            session = "parallel-%d" % k
            c.request("exec", session=session, code="me = %d" % k)
            for i in range(CALLS):
                answer = c.request("eval", session=session, expr="[me, %d]" % i)
                if answer != {"value": [k, i]}:
                    errors.append((k, i, answer))
                    return
        except Exception as exc:
            errors.append((k, repr(exc)))
        finally:
            c.close()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:5]
    assert all(not t.is_alive() for t in threads)
