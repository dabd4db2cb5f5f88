"""http_load.py - a small /generate load client for machines without wrk (the accelerator machine).

Sends ROUNDS x C requests to a running t5serve, C in flight at a time, each the same exact
encoder input ({"ids": ...}, NIN tokens, </s> last) with min_new_tokens = max_new_tokens = NEW,
and prints generated tokens/s and the p50 latency. Not a test: a benchmark helper used by
tools/bench/device_side_by_side.sh next to `t5 bench engine` on the same cores.
usage: http_load.py PORT C [NIN (128)] [NEW (64)] [ROUNDS (2)] [VOCAB (50000)]"""
import http.client
import json
import random
import sys
import threading
import time


def main():
    port, conc = int(sys.argv[1]), int(sys.argv[2])
    nin = int(sys.argv[3]) if len(sys.argv) > 3 else 128
    new = int(sys.argv[4]) if len(sys.argv) > 4 else 64
    rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    vocab = int(sys.argv[6]) if len(sys.argv) > 6 else 50000
    rng = random.Random(7)
    ids = [rng.randrange(2, vocab) for _ in range(nin - 1)] + [1]
    body = json.dumps({"ids": ids, "min_new_tokens": new, "max_new_tokens": new}).encode()
    lat, toks, errors = [], [0], [0]
    lock = threading.Lock()

    def worker(n):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        for _ in range(n):
            t0 = time.time()
            c.request("POST", "/generate", body=body, headers={"Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read()
            with lock:
                if r.status == 200:
                    lat.append(time.time() - t0)
                    toks[0] += json.loads(data)["usage"]["output_tokens"]
                else:
                    errors[0] += 1
        c.close()

    ts = [threading.Thread(target=worker, args=(rounds,)) for _ in range(conc)]
    t0 = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.time() - t0
    lat.sort()
    p50 = lat[len(lat) // 2] if lat else float("nan")
    print(f"c{conc}: {toks[0] / dt:.1f} tokens/s, p50 {p50 * 1000:.0f} ms, {len(lat)} ok, {errors[0]} errors")


if __name__ == "__main__":
    main()
