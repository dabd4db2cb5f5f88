#!/usr/bin/python3
"""soak.py - soak test of t5serve on loopback: starts build/t5serve on a free 127.0.0.1
port with the t5-tiny-gated fixture and an API key, warms it up, records its RSS and open
descriptor count (/proc/PID), then sends a mix of valid and invalid requests to every
route from many threads for a fixed time (bounded by a request count too), and checks:
  - every response status is a designed one (200 400 401 404 405 413 429 503 504), valid
    requests never get a 4xx other than 429, invalid ones never get a 200;
  - every 200 answer that has a reference is right: /tokenize ids and greedy /generate
    token ids against the transformers/SentencePiece goldens, /detokenize round trips;
  - afterwards the queue drains, the goldens still come out, RSS is back near the
    baseline and the descriptor count at the baseline; SIGTERM exits 0.
Standard library only (threads + http.client). Prints a summary; exit status 0 = held.
usage: /usr/bin/python3 tools/soak.py [--seconds 30] [--threads 32] [--max-requests N]
       [--build build] [--fixtures tests/fixtures] [--work /tmp] [--seed 1] [--no-rss-check]"""
import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

DESIGNED = {200, 400, 401, 404, 405, 413, 429, 503, 504}
KEY = "soak-key-0123456789"
AUTH = {"Authorization": "Bearer " + KEY}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class Soak:
    def __init__(self, a):
        self.a = a
        with open(os.path.join(a.fixtures, "models", "t5-tiny-gated.golden.json")) as f:
            self.cases = json.load(f)["cases"]
        self.port = free_port()
        self.lock = threading.Lock()
        self.stats = {}       # (kind, status) -> count
        self.problems = []    # first problems seen
        self.n = 0
        self.max_body = 65536

    # ---- the server
    def start(self):
        self.log = open(os.path.join(self.a.work, f"soak-{self.port}.log"), "w")
        model = os.path.join(self.a.fixtures, "models", "t5-tiny-gated")
        cmd = [os.path.join(self.a.build, "t5serve"), "--model", model, "--host", "127.0.0.1", "--port",
               str(self.port), "--threads-per-worker", "1", "--workers", "2", "--max-batch", "8",
               "--queue-size", "24", "--max-body-bytes", str(self.max_body), "--max-connections", "256",
               "--max-texts", "8", "--max-input-tokens", "512", "--max-new-tokens-limit", "64",
               "--max-num-beams", "4", "--max-nbest", "8", "--max-json-depth", "8", "--api-key", KEY,
               "--log-level", "warn"]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        t0 = time.time()
        while time.time() - t0 < 60:
            if self.proc.poll() is not None:
                raise SystemExit(f"soak: t5serve exited with {self.proc.returncode}")
            try:
                if self.req("GET", "/health")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("soak: t5serve did not become healthy")

    def req(self, method, path, body=None, headers=None, conn=None, timeout=60):
        c = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body, ensure_ascii=False).encode()
            elif isinstance(body, str):
                body = body.encode()
            h = dict(headers or {})
            if body is not None:
                h["Content-Type"] = "application/json"
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return r.status, r.getheader("Retry-After"), r.read()
        finally:
            if conn is None:
                c.close()

    # ---- the request mix: (kind, valid, method, path, body, headers, checker)
    def pick(self, rnd):
        c = rnd.choice(self.cases)
        text = c["text"]
        r = rnd.random()
        if r < 0.14:
            return ("tokenize", True, "POST", "/tokenize", {"text": text}, AUTH,
                    lambda a: a.get("ids") == c["input_ids"])
        if r < 0.20:
            return ("tokenize-array", True, "POST", "/tokenize",
                    {"text": [text, "x"], "pieces": True, "offsets": True}, AUTH,
                    lambda a: a["results"][0]["ids"] == c["input_ids"] and len(a["results"]) == 2)
        if r < 0.24:
            return ("tokenize-nbest", True, "POST", "/tokenize", {"text": text, "nbest": rnd.randint(1, 8)}, AUTH,
                    lambda a: len(a["nbest"]) >= 1 and a["nbest"][0]["ids"] == c["input_ids"])
        if r < 0.27:
            return ("tokenize-sample", True, "POST", "/tokenize",
                    {"text": text, "alpha": 0.5, "nbest_size": -1, "seed": rnd.randint(0, 99)}, AUTH,
                    lambda a: isinstance(a.get("ids"), list))
        if r < 0.33:
            return ("detokenize", True, "POST", "/detokenize", {"ids": c["input_ids"]}, AUTH,
                    lambda a: isinstance(a.get("text"), str))
        if r < 0.45:
            return ("generate-greedy", True, "POST", "/generate",
                    {"text": text, "max_new_tokens": 24, "details": True}, AUTH,
                    lambda a: [t["id"] for t in a["tokens"]] == c["greedy"]["ids"])
        if r < 0.49:
            return ("generate-beam", True, "POST", "/generate",
                    {"text": text, "max_new_tokens": 8, "num_beams": 2, "num_return_sequences": 2}, AUTH,
                    lambda a: len(a["sequences"]) == 2)
        if r < 0.53:
            return ("generate-sample", True, "POST", "/generate",
                    {"text": [text, text], "max_new_tokens": 8, "do_sample": True, "top_k": 20,
                     "seed": rnd.randint(0, 9), "stop": ["."]}, AUTH, lambda a: len(a["results"]) == 2)
        if r < 0.57:
            return ("generate-stream", True, "POST", "/generate",
                    {"text": text, "max_new_tokens": 8, "stream": True}, AUTH, None)
        if r < 0.59:
            return ("generate-timeout", True, "POST", "/generate",
                    {"text": text, "max_new_tokens": 64, "min_new_tokens": 64, "timeout_ms": 1}, AUTH, None)
        if r < 0.66:
            path = rnd.choice(["/health", "/ready", "/metrics", "/info"])
            return ("get" + path, True, "GET", path, None, AUTH, None)
        # invalid requests, each with its designed status
        bad = [
            ("bad-json", 400, "POST", "/generate", '{"text": "abc", ', AUTH),
            ("bad-type", 400, "POST", "/tokenize", {"text": 5}, AUTH),
            ("bad-field", 400, "POST", "/generate", {"text": "a", "nope": 1}, AUTH),
            ("bad-range", 400, "POST", "/generate", {"text": "a", "max_new_tokens": 10 ** 6}, AUTH),
            ("bad-beams", 400, "POST", "/generate", {"text": "a", "num_beams": 99}, AUTH),
            ("bad-nbest", 400, "POST", "/tokenize", {"text": "a", "nbest": 999}, AUTH),
            ("bad-texts", 400, "POST", "/tokenize", {"text": ["a"] * 9}, AUTH),
            ("bad-ids", 400, "POST", "/detokenize", {"ids": [1, 10 ** 9]}, AUTH),
            ("bad-depth", 400, "POST", "/tokenize", '{"text": "a", "x": ' + "[" * 40 + "]" * 40 + "}", AUTH),
            ("bad-utf8", 400, "POST", "/tokenize", b'{"text": "\xff\xfe"}', AUTH),
            ("bad-empty", 400, "POST", "/tokenize", "", AUTH),
            ("too-long-input", 400, "POST", "/generate", {"text": "word " * 1200}, AUTH),
            ("too-large", 413, "POST", "/tokenize", {"text": "x" * (self.max_body + 10)}, AUTH),
            ("no-route", 404, "GET", "/nope", None, AUTH),
            ("bad-method", 405, "GET", "/generate", None, AUTH),
            ("bad-method-post", 405, "POST", "/health", {}, AUTH),
            ("no-key", 401, "POST", "/tokenize", {"text": "a"}, {}),
            ("wrong-key", 401, "POST", "/generate", {"text": "a"}, {"Authorization": "Bearer wrong"}),
        ]
        kind, st, m, p, b, h = rnd.choice(bad)
        return (kind, False, m, p, b, h, st)

    def note(self, kind, st, problem=None):
        with self.lock:
            self.n += 1
            self.stats[(kind, st)] = self.stats.get((kind, st), 0) + 1
            if problem and len(self.problems) < 20:
                self.problems.append(f"{kind}: {problem}")
            elif problem:
                self.problems.append(None)

    def worker(self, seed, t_end):
        rnd = random.Random(seed)
        conn = None
        while time.time() < t_end:
            with self.lock:
                if self.n >= self.a.max_requests:
                    return
            kind, valid, method, path, body, headers, extra = self.pick(rnd)
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            try:
                if kind == "generate-stream" and rnd.random() < 0.3:  # leave mid-stream
                    s = socket.create_connection(("127.0.0.1", self.port), timeout=60)
                    data = json.dumps(body).encode()
                    s.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() +
                              b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data))
                    got = s.recv(200)
                    s.close()
                    st = int(got.split(b" ")[1]) if got.startswith(b"HTTP/1.1 ") else 0
                    self.note("stream-disconnect", st, None if st in DESIGNED else f"status {st}")
                    continue
                st, retry_after, data = self.req(method, path, body, headers, conn=conn)
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                conn = None
                # a server may close a connection after an error answer; a reset with no answer is a problem
                self.note(kind, -1, f"connection error {type(e).__name__}: {e}")
                continue
            problem = None
            if st not in DESIGNED:
                problem = f"undesigned status {st}: {data[:200]!r}"
            elif valid and 400 <= st < 500 and st != 429:
                problem = f"valid request got {st}: {data[:200]!r}"
            elif not valid and st != extra:
                problem = f"expected {extra}, got {st}: {data[:200]!r}"
            elif st == 429 and not retry_after:
                problem = "429 without Retry-After"
            elif st == 200 and valid and extra is not None:
                try:
                    if not extra(json.loads(data)):
                        problem = f"wrong answer: {data[:300]!r}"
                except (ValueError, KeyError, TypeError, IndexError) as e:
                    problem = f"unreadable answer ({e}): {data[:300]!r}"
            elif st != 200:
                try:
                    e = json.loads(data)["error"]
                    if e["code"] != st or len(data) > 1000:
                        problem = f"error body {data[:200]!r}"
                except (ValueError, KeyError, TypeError):
                    problem = f"error body is not the designed JSON: {data[:200]!r}"
            if kind == "generate-stream" and st == 200 and not data.rstrip().endswith(b"data: [DONE]"):
                problem = f"stream did not end with [DONE]: {data[-200:]!r}"
            self.note(kind, st, problem)
            if st in (413, 400, 404, 405, 401) and conn is not None:
                conn.close()  # the server may close after an early refusal
                conn = None
        if conn:
            conn.close()

    def phase(self, seconds, threads, seed):
        t_end = time.time() + seconds
        ts = [threading.Thread(target=self.worker, args=(seed * 1000 + i, t_end), daemon=True) for i in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    def goldens_ok(self):
        bad = 0
        for c in self.cases:
            st, _, data = self.req("POST", "/generate", {"text": c["text"], "max_new_tokens": 24, "details": True}, AUTH)
            if st != 200 or [t["id"] for t in json.loads(data)["tokens"]] != c["greedy"]["ids"]:
                bad += 1
            st, _, data = self.req("POST", "/tokenize", {"text": c["text"]}, AUTH)
            if st != 200 or json.loads(data)["ids"] != c["input_ids"]:
                bad += 1
        return bad

    def quiet(self, timeout=60):
        t0 = time.time()
        while time.time() - t0 < timeout:
            st, _, data = self.req("GET", "/metrics", headers=AUTH)
            vals = {}
            for line in data.decode().splitlines():
                for k in ("t5serve_queue_depth", "t5serve_active_sequences"):
                    if line.startswith(k + " ") or line.startswith(k + "{"):
                        vals[k] = vals.get(k, 0) + float(line.rsplit(" ", 1)[1])
            if vals and all(v == 0 for v in vals.values()):
                return True
            time.sleep(0.2)
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--threads", type=int, default=32)
    ap.add_argument("--max-requests", type=int, default=10 ** 7)
    ap.add_argument("--build", default=os.environ.get("BUILD", "build"))
    ap.add_argument("--fixtures", default=os.environ.get("FIXTURES", "tests/fixtures"))
    ap.add_argument("--work", default=os.environ.get("WORK", "/tmp"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rss-slack-mb", type=float, default=40)
    ap.add_argument("--no-rss-check", action="store_true",
                    help="report RSS but do not judge it (ASan's quarantine keeps freed memory mapped)")
    a = ap.parse_args()
    s = Soak(a)
    s.start()
    ok = True
    try:
        # warm-up at the same concurrency, so that allocator arenas and caches exist
        s.phase(min(5.0, a.seconds / 4), a.threads, a.seed + 7)
        s.quiet()
        time.sleep(0.5)
        rss0, fd0 = rss_kb(s.proc.pid), fd_count(s.proc.pid)
        s.stats.clear()
        s.problems.clear()
        s.n = 0
        t0 = time.time()
        s.phase(a.seconds, a.threads, a.seed)
        dt = time.time() - t0
        peak = rss_kb(s.proc.pid)
        drained = s.quiet()
        time.sleep(1.0)
        rss1, fd1 = rss_kb(s.proc.pid), fd_count(s.proc.pid)
        bad_goldens = s.goldens_ok()
        by_status = {}
        for (kind, st), n in s.stats.items():
            by_status[st] = by_status.get(st, 0) + n
        print(f"soak: {s.n} requests in {dt:.1f} s from {a.threads} threads ({s.n / dt:.0f}/s); statuses "
              + ", ".join(f"{k}: {v}" for k, v in sorted(by_status.items())))
        print("soak: by kind: " + ", ".join(f"{k}/{st}: {n}" for (k, st), n in sorted(s.stats.items(), key=str)))
        print(f"soak: RSS {rss0 // 1024} MB before, {peak // 1024} MB at the end of the load, {rss1 // 1024} MB after; "
              f"descriptors {fd0} before, {fd1} after")
        problems = [p for p in s.problems if p]
        nprob = len(s.problems)
        if nprob:
            ok = False
            print(f"soak: {nprob} problems; the first ones:")
            for p in problems:
                print("   ", p)
        if not drained:
            ok = False
            print("soak: the queue and the batches did not drain")
        if bad_goldens:
            ok = False
            print(f"soak: {bad_goldens} golden checks failed after the load")
        if rss1 > rss0 + a.rss_slack_mb * 1024 + rss0 * 0.25 and not a.no_rss_check:
            ok = False
            print(f"soak: RSS did not come back near the baseline ({rss0} kB -> {rss1} kB)")
        if fd1 > fd0 + 2:
            ok = False
            print(f"soak: descriptors leaked ({fd0} -> {fd1})")
        if s.n < 50:
            ok = False
            print("soak: too few requests were made to mean anything")
    finally:
        s.proc.send_signal(signal.SIGTERM)
        try:
            rc = s.proc.wait(120)
        except subprocess.TimeoutExpired:
            s.proc.kill()
            rc = s.proc.wait()
        s.log.close()
        if rc != 0:
            ok = False
            print(f"soak: t5serve exit status {rc} after SIGTERM; log tail:")
            with open(s.log.name, errors="replace") as f:
                print(f.read()[-3000:])
    print("soak: held" if ok else "soak: FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
