"""harness.py - helpers for t5serve's integration suites (tests/suites/3*-server-*.sh):
start the real build/t5serve on a free loopback port, talk real HTTP to it
(http.client), parse SSE, and count checks. References (goldens) come from
tests/fixtures (transformers, SentencePiece); nothing here computes an answer.
Run with Debian's /usr/bin/python3 (it has sentencepiece)."""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

BUILD = os.environ.get("BUILD", "build")
FIXTURES = os.environ.get("FIXTURES", "tests/fixtures")
WORK = os.environ.get("WORK", "/tmp")
MODEL = os.path.join(FIXTURES, "models", "t5-tiny-gated")

_checks = [0, 0]  # passed, failed


def check(cond, what):
    if cond:
        _checks[0] += 1
    else:
        _checks[1] += 1
        print("FAIL:", what, flush=True)
    return cond


def finish(name):
    print(f"{name}: {_checks[0]} checks passed, {_checks[1]} failed", flush=True)
    sys.exit(1 if _checks[1] or not _checks[0] else 0)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    """A running t5serve; stop() sends SIGTERM and returns the exit status."""

    def __init__(self, args, env=None, name="t5serve", model=MODEL, wait=True):
        self.port = free_port()
        self.logpath = os.path.join(WORK, f"{name}-{self.port}.log")
        self.log = open(self.logpath, "w")
        # one GEMM thread per worker: the tiny models gain nothing from more, and CI shares 2 cores
        cmd = [os.path.join(BUILD, "t5serve"), "--host", "127.0.0.1", "--port", str(self.port), "--threads-per-worker", "1"]
        if model:
            cmd += ["--model", model]
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen(cmd + list(args), stdout=self.log, stderr=subprocess.STDOUT, env=e)
        if wait:
            self.wait_healthy()

    def wait_healthy(self, timeout=60):
        t0 = time.time()
        while time.time() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"t5serve exited with {self.proc.returncode}: {self.logtail()}")
            try:
                st, _, _ = self.request("GET", "/health", timeout=2)
                if st == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("t5serve did not answer /health: " + self.logtail())

    def logtail(self, n=3000):
        if not self.log.closed:
            self.log.flush()
        with open(self.logpath, errors="replace") as f:
            return f.read()[-n:]

    def conn(self, timeout=120):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=120, conn=None, header_list=False):
        """Returns (status, headers dict with lower-case names, body bytes); with header_list,
        the headers as sent: a list of (name, value)."""
        c = conn or self.conn(timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body, ensure_ascii=False).encode()
            elif isinstance(body, str):
                body = body.encode()
            h = {"Content-Type": "application/json"} if body is not None else {}
            h.update(headers or {})
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            if header_list:
                return r.status, r.getheaders(), data
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            if conn is None:
                c.close()

    def post(self, path, obj, **kw):
        """Returns (status, parsed JSON body or None)."""
        st, _, data = self.request("POST", path, obj, **kw)
        try:
            return st, json.loads(data)
        except ValueError:
            return st, None

    def stream(self, obj, timeout=120):
        """POST /generate with stream: returns (status, content-type, [events]); an event
        is the parsed JSON of a `data:` line, or the string "[DONE]"."""
        c = self.conn(timeout)
        try:
            c.request("POST", "/generate", body=json.dumps(obj, ensure_ascii=False).encode(),
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read().decode()
            if r.status != 200:
                return r.status, r.getheader("Content-Type"), [json.loads(data)]
            return r.status, r.getheader("Content-Type"), parse_sse(data)
        finally:
            c.close()

    def metric(self, name, labels=None):
        """Sum of the samples of one metric: all label sets, or those that begin with labels
        (e.g. 'route="/generate"')."""
        st, _, data = self.request("GET", "/metrics")
        heads = (name + "{" + labels,) if labels is not None else (name + " ", name + "{")
        return sum(float(line.rsplit(" ", 1)[1]) for line in data.decode().splitlines() if line.startswith(heads))

    def stop(self, timeout=120):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            print("t5serve did not exit after SIGTERM", flush=True)
        self.log.close()
        if rc != 0:
            print(f"t5serve exit status {rc}; log tail:\n{self.logtail()}", flush=True)
        return rc


def parse_sse(text):
    events = []
    for block in text.split("\n\n"):
        block = block.strip("\n")
        if not block:
            continue
        for line in block.split("\n"):
            if line.startswith("data: "):
                payload = line[6:]
                events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def goldens(name="t5-tiny-gated"):
    with open(os.path.join(FIXTURES, "models", name + ".golden.json")) as f:
        return json.load(f)


def check_error(st, body, status, what, needle=None):
    """An error answer: the status and the JSON shape of design section 5."""
    types = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
             405: "method_not_allowed_error", 413: "payload_too_large_error", 429: "overloaded_error",
             503: "unavailable_error", 504: "timeout_error", 500: "server_error"}
    ok = check(st == status, f"{what}: status {st}, expected {status} ({body})")
    e = (body or {}).get("error") if isinstance(body, dict) else None
    ok &= check(isinstance(e, dict) and e.get("code") == status and e.get("type") == types[status]
                and isinstance(e.get("message"), str) and 0 < len(e["message"]) < 400,
                f"{what}: error body {body}")
    if needle and e:
        ok &= check(needle in e.get("message", ""), f"{what}: message {e.get('message')!r} lacks {needle!r}")
    return ok
