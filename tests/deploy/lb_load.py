#!/usr/bin/python3
"""Load driver for tests/suites/50-lb.sh: a bounded stream of concurrent /generate and
/tokenize requests through the load balancer, with one replica killed (SIGKILL) and one
stopped (SIGTERM) while requests are in flight; checks every answer against the goldens.

It is not a benchmark (no timings are judged) and not a mock: the answers come from real
t5serve replicas behind a real nginx, the expected values from the fixture goldens
(transformers' greedy ids, SentencePiece's input ids and decoding).

usage: lb_load.py --url http://127.0.0.1:PORT --golden G.json --spm spiece.model
                  --kill PID,URL --term PID,URL --total N --concurrency C --out RESULT.json
Exit status 0 when every request got the right answer; the evidence lines go to stdout.
"""
import argparse
import http.client
import json
import os
import re
import signal
import sys
import threading
import time
import urllib.parse
import urllib.request

import sentencepiece

MAX_NEW_TOKENS = 24  # the goldens' greedy setting


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--golden", required=True)
    p.add_argument("--spm", required=True)
    p.add_argument("--kill", required=True, help="PID,URL of the replica to SIGKILL")
    p.add_argument("--term", required=True, help="PID,URL of the replica to SIGTERM")
    p.add_argument("--total", type=int, default=600)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--deadline", type=float, default=150.0, help="seconds for the whole run")
    p.add_argument("--access-log", required=True, help="nginx access log (format t5serve_lb)")
    p.add_argument("--out", required=True)
    return p.parse_args()


def expected_text(sp, ids, sp_size, vocab_end):
    """The reference decoding of generated ids: SentencePiece for ordinary pieces, sentinels
    as <extra_id_N>, </s> and padding rows dropped. None when it holds a sentinel (the
    joining rule around sentinels is the server suites' business, not this test's)."""
    if any(sp_size <= i < vocab_end for i in ids):
        return None
    return sp.decode([i for i in ids if i < sp_size and i != sp.eos_id()])


def build_cases(args):
    golden = json.load(open(args.golden, encoding="utf-8"))
    sp = sentencepiece.SentencePieceProcessor(model_file=args.spm)
    sp_size = sp.get_piece_size()
    cases = []
    for n, c in enumerate(golden["cases"]):
        assert c["greedy"]["max_new_tokens"] == MAX_NEW_TOKENS
        cases.append({"name": "tokenize#%d" % n, "path": "/tokenize",
                      "body": {"text": c["text"]}, "ids": c["input_ids"], "text": None})
        gen_ids = c["greedy"]["ids"]
        gen = {"name": "generate#%d" % n, "path": "/generate",
               "body": {"text": c["text"], "max_new_tokens": MAX_NEW_TOKENS, "details": True},
               "ids": gen_ids, "text": expected_text(sp, gen_ids, sp_size, sp_size + 100)}
        # two generations per tokenization: they are what keeps replicas busy
        cases += [gen, gen]
    return cases


def check_answer(case, status, raw):
    """Returns None when the answer is right, else why it is wrong."""
    if status != 200:
        return "HTTP %d: %s" % (status, raw[:200])
    try:
        ans = json.loads(raw)
    except ValueError:
        return "not JSON: %r" % raw[:200]
    if case["path"] == "/tokenize":
        return None if ans.get("ids") == case["ids"] else "ids %r != %r" % (ans.get("ids"), case["ids"])
    toks = ans.get("tokens")
    if not isinstance(toks, list):
        return "no tokens in %r" % raw[:200]
    got = [t.get("id") for t in toks]
    want = case["ids"]
    # The golden keeps </s> (1) at the end when generation stopped on it.
    if got != want and got != [i for i in want if i != 1]:
        return "generated ids %r != golden %r" % (got, want)
    want_reason = "eos" if want and want[-1] == 1 else "length"
    if ans.get("finish_reason") != want_reason:
        return "finish_reason %r != %r" % (ans.get("finish_reason"), want_reason)
    if case["text"] is not None and ans.get("text") != case["text"]:
        return "text %r != SentencePiece's %r" % (ans.get("text"), case["text"])
    return None


def replica_inflight(url):
    """Generation work a replica holds now (queued + active sequences), from a direct scrape
    of its /metrics; -1 when it does not answer."""
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return -1
    total = 0.0
    for line in text.splitlines():
        m = re.match(r"^(t5serve_requests_in_flight|t5serve_queue_depth|t5serve_active_sequences)"
                     r"(\{[^}]*\})?\s+([0-9.eE+-]+)$", line)
        if m:
            total += float(m.group(3))
    return total


class Run:
    def __init__(self, args, cases):
        self.args = args
        self.cases = cases
        self.lock = threading.Lock()
        self.next = 0
        self.done = 0
        self.results = []  # (index, case name, start, end, error or None)
        self.stop_at = time.time() + args.deadline
        self.events = {}
        u = urllib.parse.urlparse(args.url)
        self.host, self.port = u.hostname, u.port

    def take(self):
        with self.lock:
            if self.next >= self.args.total or time.time() > self.stop_at:
                return None
            self.next += 1
            return self.next - 1

    def client(self):
        conn = None
        while True:
            i = self.take()
            if i is None:
                break
            case = self.cases[i % len(self.cases)]
            body = json.dumps(case["body"]).encode()
            t0 = time.time()
            # No retry here: a request the balancer loses must show up as lost.
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                conn.request("POST", case["path"], body, {"Content-Type": "application/json"})
                r = conn.getresponse()
                raw = r.read().decode("utf-8", "replace")
                err = check_answer(case, r.status, raw)
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                conn = None
                err = "request to the balancer failed: %r" % e
            with self.lock:
                self.results.append((i, case["name"], t0, time.time(), err))
                self.done += 1

    def signal_when_busy(self, what, sig, spec, at_fraction):
        pid, url = spec.split(",", 1)
        pid = int(pid)
        while self.done < at_fraction * self.args.total and time.time() < self.stop_at:
            time.sleep(0.01)
        # Wait (at most 5 s) until the replica reports at least 2 sequences in hand, then
        # signal at once.
        busy, t_end = -1, time.time() + 5
        while time.time() < t_end:
            busy = replica_inflight(url)
            if busy >= 2:
                break
        t = time.time()
        os.kill(pid, sig)
        self.events[what] = {"pid": pid, "url": url, "time": t, "inflight_metric": busy,
                             "completed_before": self.done}
        print("lb_load: %s pid %d (%s) at %.3f after %d requests; just before, its /metrics "
              "showed %g sequence(s) queued or active" % (what, pid, url, t, self.done, busy))

    def go(self):
        threads = [threading.Thread(target=self.client) for _ in range(self.args.concurrency)]
        for t in threads:
            t.start()
        self.signal_when_busy("SIGKILL", signal.SIGKILL, self.args.kill, 0.3)
        self.signal_when_busy("SIGTERM", signal.SIGTERM, self.args.term, 0.6)
        for t in threads:
            t.join()


def analyze_log(path, events):
    """Evidence from the balancer's access log: which requests were in flight on the
    replicas when they were signalled, and which nginx retried elsewhere."""
    kill_addr = urllib.parse.urlparse(events["SIGKILL"]["url"]).netloc
    term_addr = urllib.parse.urlparse(events["SIGTERM"]["url"]).netloc
    t_kill, t_term = events["SIGKILL"]["time"], events["SIGTERM"]["time"]
    ev = {"lines": 0, "retried": 0, "killed_inflight": 0, "killed_refused": 0,
          "term_drained": 0, "term_retried": 0, "final_not_200": 0}
    pat = re.compile(r'msec=([0-9.]+) rt=([0-9.]+) "POST [^"]*" (\d+) .*?up=\[([^]]*)\] '
                     r'ups=\[([^]]*)\] upsent=\[([^]]*)\]')
    for line in open(path, encoding="utf-8", errors="replace"):
        m = pat.search(line)
        if not m:
            continue
        end, rt, status = float(m.group(1)), float(m.group(2)), m.group(3)
        addrs = [a for a in re.split(r",\s*|\s:\s", m.group(4)) if a]
        stats = [a for a in re.split(r",\s*|\s:\s", m.group(5)) if a]
        sent = [a for a in re.split(r",\s*|\s:\s", m.group(6)) if a]
        start = end - rt
        ev["lines"] += 1
        if status != "200":
            ev["final_not_200"] += 1
        if len(addrs) > 1:
            ev["retried"] += 1
        for k, a in enumerate(addrs):
            st = stats[k] if k < len(stats) else "-"
            nsent = int(sent[k]) if k < len(sent) and sent[k].isdigit() else 0
            later_ok = k + 1 < len(addrs) and status == "200"
            if a == kill_addr and st != "200" and later_ok:
                if nsent > 0 and start <= t_kill + 0.001:
                    ev["killed_inflight"] += 1  # sent to it, no answer, retried elsewhere
                else:
                    ev["killed_refused"] += 1
            if a == term_addr and st == "200" and start < t_term < end:
                ev["term_drained"] += 1  # began before its SIGTERM, answered by it after
            if a == term_addr and st != "200" and later_ok:
                ev["term_retried"] += 1
    return ev


def main():
    args = parse_args()
    cases = build_cases(args)
    run = Run(args, cases)
    t0 = time.time()
    run.go()
    bad = [r for r in run.results if r[4] is not None]
    print("lb_load: %d requests sent, %d answered right, %d wrong or failed, in %.1f s" %
          (run.next, len(run.results) - len(bad), len(bad), time.time() - t0))
    for r in bad[:20]:
        print("lb_load: request %d %s: %s" % (r[0], r[1], r[4]))
    ok = (not bad and run.next == args.total and len(run.results) == args.total
          and "SIGKILL" in run.events and "SIGTERM" in run.events)
    ev = analyze_log(args.access_log, run.events) if ok else {}
    for _ in range(50):  # nginx logs a request after answering it: let the last lines land
        if not ok or ev["lines"] >= args.total:
            break
        time.sleep(0.1)
        ev = analyze_log(args.access_log, run.events)
    if ok:
        print("lb_load: balancer log: %(lines)d POSTs, %(retried)d retried by nginx, "
              "%(final_not_200)d not answered 200" % ev)
        print("lb_load: SIGKILLed replica: %(killed_inflight)d request(s) were sent to it and "
              "lost in flight, then retried to success; %(killed_refused)d more found it "
              "down and were retried" % ev)
        print("lb_load: SIGTERMed replica: %(term_drained)d request(s) in flight at its SIGTERM "
              "were answered by it while draining; %(term_retried)d were turned away "
              "(503 or closed) and retried" % ev)
        if ev["killed_inflight"] == 0 or ev["term_drained"] == 0:
            print("lb_load: no request was in flight on a signalled replica: nothing shown")
            ok = False
        if ev["lines"] < args.total or ev["final_not_200"]:
            print("lb_load: the balancer's log does not account for every request")
            ok = False
    json.dump({"events": run.events, "sent": run.next, "answered": len(run.results),
               "wrong": len(bad), "log": ev}, open(args.out, "w"))
    if run.next != args.total:
        print("lb_load: the run hit its %g s deadline after %d of %d requests" %
              (args.deadline, run.next, args.total))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
