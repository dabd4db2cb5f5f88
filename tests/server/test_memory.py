"""test_memory.py - t5serve's memory does not grow: RSS after N mixed requests
(generate plain/beam/sampled/streamed, tokenize, detokenize, errors, client
disconnects) stays within 10% of RSS after the warm-up: a burst that fills the
batch with the longest inputs (so every buffer that grows to the largest batch
seen has grown), then the first N/10 requests.
usage: test_memory.py [N]   (default 10000; N from RSS_REQUESTS too)
Run by tests/suites/33-server-memory.sh; `make soak-server` runs N=10000."""
import json
import os
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(__file__))
from harness import Server, check, finish, goldens  # noqa: E402

CASES = goldens()["cases"]


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def one(srv, conn, i):
    c = CASES[i % len(CASES)]
    k = i % 10
    if k == 0:
        return srv.request("POST", "/generate", {"text": c["text"], "max_new_tokens": 16}, conn=conn)[0] == 200
    if k == 1:
        return srv.request("POST", "/generate", {"text": c["text"], "max_new_tokens": 12, "num_beams": 3,
                                                 "num_return_sequences": 2, "details": True}, conn=conn)[0] == 200
    if k == 2:
        return srv.request("POST", "/generate", {"text": [c["text"], "Hello"], "do_sample": True, "seed": i,
                                                 "max_new_tokens": 10, "stop": ["the"]}, conn=conn)[0] == 200
    if k == 3:
        st, h, body = srv.request("POST", "/generate", {"text": c["text"], "max_new_tokens": 10, "stream": True},
                                  conn=conn)
        return st == 200 and body.endswith(b"data: [DONE]\n\n")
    if k in (4, 5):
        return srv.request("POST", "/tokenize", {"text": c["text"], "pieces": True, "offsets": True},
                           conn=conn)[0] == 200
    if k == 6:
        return srv.request("POST", "/detokenize", {"ids": c["input_ids"]}, conn=conn)[0] == 200
    if k == 7:
        return srv.request("POST", "/generate", {"text": c["text"], "bogus": 1}, conn=conn)[0] == 400
    if k == 8:
        return srv.request("POST", "/generate", b'{"text": "\xff', conn=conn)[0] == 400
    # a streaming client that leaves after the headers
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=60)
    body = json.dumps({"text": c["text"], "max_new_tokens": 50, "min_new_tokens": 50, "stream": True}).encode()
    s.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    s.recv(100)
    s.close()
    return True


def run(srv, start, end, nthreads=4):
    bad = [0]

    def worker(t):
        conn = srv.conn()
        for i in range(start + t, end, nthreads):
            try:
                if not one(srv, conn, i):
                    bad[0] += 1
            except OSError:
                bad[0] += 1
                conn.close()
                conn = srv.conn()
        conn.close()
    ts = [threading.Thread(target=worker, args=(t,)) for t in range(nthreads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return bad[0]


def saturate(srv, nthreads=16, rounds=3):
    """Concurrent beam requests on the longest input: more rows than max_batch (32)
    arrive at once, so the encoder and decoder scratch reach the size the mixed run
    can ask for (4 clients) and later growth means memory held, not a grown buffer."""
    longest = max(CASES, key=lambda c: len(c["input_ids"]))["text"]
    body = {"text": [longest, longest], "num_beams": 3, "max_new_tokens": 50, "min_new_tokens": 50}
    bad = [0]

    def worker():
        conn = srv.conn()
        for _ in range(rounds):
            if srv.request("POST", "/generate", body, conn=conn)[0] != 200:
                bad[0] += 1
        conn.close()
    ts = [threading.Thread(target=worker) for _ in range(nthreads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return bad[0]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("RSS_REQUESTS", "10000"))
    warm = n // 10
    srv = Server(["--log-level", "warn"], name="memory")
    try:
        bad = saturate(srv) + run(srv, 0, warm)
        r1 = rss_kb(srv.proc.pid)
        bad += run(srv, warm, n)
        r2 = rss_kb(srv.proc.pid)
        print(f"RSS after {warm} requests: {r1} kB; after {n}: {r2} kB ({100.0 * (r2 - r1) / r1:+.1f}%)")
        check(bad == 0, f"{bad} of {n} mixed requests got an unexpected answer")
        check(r2 <= r1 * 1.10, f"RSS grew from {r1} kB to {r2} kB (more than 10%)")
    finally:
        check(srv.stop() == 0, "memory server exits 0")
    finish("test_memory")


if __name__ == "__main__":
    main()
