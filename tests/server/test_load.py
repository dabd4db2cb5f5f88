"""test_load.py - t5serve under concurrency and shutdown, through real HTTP:
64 concurrent /generate requests all equal transformers' golden ids and share batched
steps; clients that disconnect mid-stream (and mid-wait) leave the server healthy with
their sequences freed; SIGTERM during load finishes every in-flight request (plain and
streaming), answers /ready 503 on a kept-alive connection, refuses new connections and
exits 0; a short drain timeout cancels what is left and still exits 0.
Run by tests/suites/32-server-load.sh."""
import json
import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Server, check, finish, goldens, parse_sse  # noqa: E402

G = goldens()
CASES = G["cases"]
LONG = max(CASES, key=lambda c: len(c["input_ids"]))


def concurrent(srv, jobs):
    """Runs fn() for each fn in jobs on its own thread; returns the results in order."""
    out = [None] * len(jobs)

    def run(i):
        try:
            out[i] = jobs[i]()
        except Exception as e:  # noqa: BLE001 - reported as a failed check
            out[i] = e
    ts = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def wait_until(fn, timeout=30):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if fn():
            return True
        time.sleep(0.05)
    return False


def sixty_four(srv):
    rows0 = srv.metric("t5serve_batch_rows_sum"), srv.metric("t5serve_batch_rows_count")

    def job(i):
        c = CASES[i % len(CASES)]
        kind = i % 3
        if kind == 0:
            body = {"text": c["text"], "max_new_tokens": 24, "details": True}
            want = c["greedy"]["ids"]
        elif kind == 1:
            body = {"text": c["text"], "max_new_tokens": 24, "details": True, "repetition_penalty": 1.3,
                    "no_repeat_ngram_size": 3}
            want = c["greedy_penalties"]["ids"]
        else:
            body = {"text": c["text"], "max_new_tokens": 24, "details": True, "num_beams": 4, "early_stopping": True}
            want = c["beam4"]["sequences"][0]
        return lambda: (srv.post("/generate", body), want)
    res = concurrent(srv, [job(i) for i in range(64)])
    good = 0
    for i, r in enumerate(res):
        if isinstance(r, Exception):
            print("request", i, "raised", r)
            continue
        (st, ans), want = r
        if st == 200 and [t["id"] for t in ans["tokens"]] == want:
            good += 1
        elif good + 3 > i:
            print("request", i, st, str(ans)[:200], "expected", want)
    check(good == 64, f"64 concurrent /generate: {good} equal the goldens")
    s = srv.metric("t5serve_batch_rows_sum") - rows0[0]
    n = srv.metric("t5serve_batch_rows_count") - rows0[1]
    check(n > 0 and s / n > 1.5, f"concurrent requests decode in shared batches (mean rows per step {s / max(n, 1):.2f})")


def raw_request(port, body):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    data = json.dumps(body).encode()
    s.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
              % (len(data), data))
    return s


def disconnects(srv):
    body = {"text": LONG["text"], "min_new_tokens": 500, "max_new_tokens": 500, "stream": True}
    for _ in range(10):
        s = raw_request(srv.port, body)
        got = b""
        while b"data: " not in got:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
        s.close()
        check(b"200 OK" in got and b"text/event-stream" in got, "stream started before the disconnect")
    for _ in range(5):  # non-streaming clients that leave while waiting: bounded by the deadline
        s = raw_request(srv.port, {"text": LONG["text"], "max_new_tokens": 300, "min_new_tokens": 300,
                                   "timeout_ms": 3000})
        s.close()
    check(wait_until(lambda: srv.metric("t5serve_active_sequences") == 0 and srv.metric("t5serve_queue_depth") == 0,
                     60), "sequences of departed clients are freed")
    st, _, _ = srv.request("GET", "/health")
    check(st == 200, "healthy after the disconnects")
    c = CASES[0]
    st, ans = srv.post("/generate", {"text": c["text"], "max_new_tokens": 24, "details": True})
    check(st == 200 and [t["id"] for t in ans["tokens"]] == c["greedy"]["ids"], "correct after the disconnects")


def sigterm_drain():
    # one row at a time and 400 tokens each (~70 ms per request here), so that most of the load
    # is still waiting when SIGTERM comes
    srv = Server(["--max-batch", "1", "--drain-timeout-ms", "600000", "--request-timeout-ms", "600000"], name="drain")
    n_plain, n_stream, n_tok = 12, 4, 400
    plain = {"text": LONG["text"], "min_new_tokens": n_tok, "max_new_tokens": n_tok}
    streamb = dict(plain, stream=True)
    keep = srv.conn()
    st, _, _ = srv.request("GET", "/ready", conn=keep)
    check(st == 200, "ready before SIGTERM")
    sent = threading.Semaphore(0)

    def job(body, streaming):
        def run():
            c = srv.conn()
            c.request("POST", "/generate", body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
            sent.release()  # the whole request is on the wire
            r = c.getresponse()
            data = r.read()
            c.close()
            if streaming:
                return r.status, None, parse_sse(data.decode())
            return r.status, json.loads(data)
        return run
    jobs = [job(plain, False)] * n_plain + [job(streamb, True)] * n_stream
    out = [None]
    t = threading.Thread(target=lambda: out.__setitem__(0, concurrent(srv, jobs)))
    t.start()
    for _ in jobs:
        sent.acquire()
    def taken():  # requests the server has read: queued, in a batch, or already answered
        return (srv.metric("t5serve_active_sequences") + srv.metric("t5serve_queue_depth")
                + srv.metric("t5serve_requests_total", 'route="/generate"'))
    # every request must be in the server's hands before SIGTERM: one still in the socket's
    # buffer when the drain starts is answered 503, which is right but not what this checks
    check(wait_until(lambda: taken() >= len(jobs), 60), f"the server read all {len(jobs)} requests: {taken()}")
    check(srv.metric("t5serve_active_sequences") + srv.metric("t5serve_queue_depth") > 0, "load is running")
    srv.proc.send_signal(signal.SIGTERM)
    # the signal is handled asynchronously: poll (the drain itself lasts seconds)
    ready = [None]

    def not_ready():
        ready[0] = srv.request("GET", "/ready", conn=keep)
        return ready[0][0] != 200
    wait_until(not_ready, 10)
    st, _, body = ready[0]
    check(st == 503 and json.loads(body)["error"]["type"] == "unavailable_error", f"/ready while draining: {st}")
    st, _, body = srv.request("POST", "/generate", {"text": "Hello world"}, conn=keep)
    check(st == 503, f"new /generate while draining: {st} {body[:100]}")
    keep.close()
    try:
        socket.create_connection(("127.0.0.1", srv.port), timeout=5).close()
        refused = False
    except OSError:
        refused = True
    check(refused, "new connections are refused while draining")
    t.join()
    res = out[0]
    ok_plain = sum(1 for r in res[:n_plain] if not isinstance(r, Exception) and r[0] == 200
                   and r[1]["usage"]["output_tokens"] == n_tok)
    for r in res[n_plain:]:
        if isinstance(r, Exception) or r[0] != 200 or r[2][-1] != "[DONE]":
            print("stream result:", str(r)[-300:])
    ok_stream = sum(1 for r in res[n_plain:] if not isinstance(r, Exception) and r[0] == 200 and r[2][-1] == "[DONE]"
                    and r[2][-2]["usage"]["output_tokens"] == n_tok)
    check(ok_plain == n_plain and ok_stream == n_stream,
          f"in-flight requests finished during the drain: {ok_plain}/{n_plain} plain, {ok_stream}/{n_stream} streams")
    rc = srv.proc.wait(120)
    srv.stop()
    check(rc == 0, f"exit status 0 after the drain (got {rc})")
    check("drained, exiting" in srv.logtail(), "the log says it drained")

    # a drain timeout shorter than the work: in-flight requests are cancelled, exit 0
    # (16 x 512 tokens one row at a time: about 1.5 s of work here, five times the drain timeout)
    srv = Server(["--max-batch", "1", "--drain-timeout-ms", "300"], name="drain-timeout")
    big = {"text": [LONG["text"]] * 16, "min_new_tokens": 512, "max_new_tokens": 512}
    out = [None]
    t = threading.Thread(target=lambda: out.__setitem__(0, srv.post("/generate", big)))
    t.start()
    wait_until(lambda: srv.metric("t5serve_active_sequences") > 0, 30)
    t0 = time.time()
    srv.proc.send_signal(signal.SIGTERM)
    rc = srv.proc.wait(60)
    t.join()
    srv.stop()
    st, ans = out[0] if not isinstance(out[0], Exception) else (None, None)
    check(rc == 0 and time.time() - t0 < 10, f"drain timeout: exit {rc} after {time.time() - t0:.1f} s")
    check(st == 503 and ans["error"]["type"] == "unavailable_error", f"cut-off request answered 503: {st} {ans}")


def main():
    srv = Server(["--max-batch", "32", "--queue-size", "512"], name="load")
    try:
        sixty_four(srv)
        disconnects(srv)
    finally:
        check(srv.stop() == 0, "load server exits 0")
    sigterm_drain()
    finish("test_load")


if __name__ == "__main__":
    main()
