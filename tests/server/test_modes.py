"""test_modes.py - t5serve's configuration and modes through the real binary:
precedence defaults < file < environment < command line (--print-config and a live
server's /info), start-up validation messages, --help, the API key (401), a full
queue (429 with Retry-After), the tokenize-only service from a bare SentencePiece
model (/tokenize = SentencePiece's ids and n-best, /generate = 503), and --probe.
Run by tests/suites/31-server-modes.sh."""
import json
import os
import shutil
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILD, FIXTURES, MODEL, WORK, Server, check, check_error, finish, free_port, goldens  # noqa

T5SERVE = os.path.join(BUILD, "t5serve")


def run_cli(args, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("T5SERVE_")}
    e.update(env or {})
    p = subprocess.run([T5SERVE] + args, capture_output=True, text=True, env=e, timeout=60)
    return p.returncode, p.stdout, p.stderr


def config_checks():
    rc, out, err = run_cli(["--help"])
    check(rc == 0 and "--max-batch" in out and "T5SERVE_MAX_BATCH" in out and "default: 32" in out
          and "--api-key-file" in out and "--drain-timeout-ms" in out, f"--help: {rc} {out[:200]}")
    conf = os.path.join(WORK, "t.conf")
    with open(conf, "w") as f:
        f.write("# test configuration\nmodel = %s\nmax_batch = 16   # from the file\nqueue_size = 5\n"
                "max_input_tokens = 300\nlog_level = warn\n" % MODEL)
    rc, out, err = run_cli(["--config", conf, "--max-batch", "9", "--print-config"], {"T5SERVE_QUEUE_SIZE": "7",
                                                                                     "T5SERVE_MAX_BATCH": "12"})
    vals = dict(l.split(" = ", 1) for l in out.splitlines() if " = " in l)
    check(rc == 0 and vals.get("max_batch") == "9" and vals.get("queue_size") == "7"
          and vals.get("max_input_tokens") == "300" and vals.get("port") == "8080", f"precedence: {rc} {vals} {err}")
    # the shipped default file is valid and gives the built-in defaults
    rc, out, err = run_cli(["--config", "config/t5serve.conf", "--print-config"])
    rc2, out2, _ = run_cli(["--model", "models/default", "--print-config"])
    strip = lambda s: [l for l in s.splitlines() if not l.startswith("#")]  # noqa: E731
    check(rc == 0 and strip(out) == strip(out2), f"config/t5serve.conf = defaults: {err} {out}")
    for args, env, needle in (
            (["--model", MODEL, "--port", "0"], {}, "port must be an integer from 1 to 65535"),
            (["--model", MODEL, "--workers", "x"], {}, "--workers: workers must be an integer"),
            (["--model", MODEL, "--frobnicate"], {}, "unknown option '--frobnicate'"),
            (["--model", MODEL], {"T5SERVE_LOG_LEVEL": "chatty"}, "log_level must be one of"),
            ([], {}, "no model"),
            (["--config", conf + ".missing"], {}, "cannot read the configuration file"),
            (["--model", os.path.join(WORK, "no-such-model")], {}, "does not exist")):
        rc, out, err = run_cli(args, env)
        check(rc != 0 and needle in err and len(err) < 600, f"{args} {env}: rc {rc}, stderr {err!r}")
    # a live server configured by file + environment + command line
    srv = Server(["--max-batch", "4"], env={"T5SERVE_CONFIG": conf, "T5SERVE_QUEUE_SIZE": "7"}, name="cfg",
                 model=None)
    st, _, body = srv.request("GET", "/info")
    lim = json.loads(body)["limits"]
    check(lim["max_batch"] == 4 and lim["queue_size"] == 7 and lim["max_input_tokens"] == 300, f"live limits {lim}")
    check(srv.stop() == 0, "cfg server exits 0")


def auth_checks():
    keyfile = os.path.join(WORK, "key")
    with open(keyfile, "w") as f:
        f.write("s3cret-K3Y\n")
    srv = Server(["--api-key-file", keyfile], name="auth")
    try:
        for path in ("/health", "/ready"):
            st, _, _ = srv.request("GET", path)
            check(st == 200, f"{path} needs no key: {st}")
        st, h, body = srv.request("POST", "/generate", {"text": "Hello world"})
        check_error(st, json.loads(body), 401, "no key")
        check(h.get("www-authenticate") == "Bearer", f"WWW-Authenticate: {h}")
        st, _, body = srv.request("POST", "/tokenize", {"text": "a"}, headers={"Authorization": "Bearer wrong"})
        check_error(st, json.loads(body), 401, "wrong key")
        st, _, body = srv.request("GET", "/metrics", headers={"Authorization": "Bearer s3cret-K3Y-and-more"})
        check_error(st, json.loads(body), 401, "longer key")
        st, _, body = srv.request("POST", "/tokenize", {"text": "Hello world"},
                                  headers={"Authorization": "Bearer s3cret-K3Y"})
        check(st == 200 and json.loads(body)["ids"] == goldens()["cases"][1]["input_ids"], f"right key: {st} {body}")
        st, _, body = srv.request("GET", "/info", headers={"Authorization": "Bearer s3cret-K3Y"})
        check(st == 200 and json.loads(body)["auth"] is True and b"s3cret" not in body, "/info with key")
    finally:
        check(srv.stop() == 0, "auth server exits 0")


def overload_checks():
    srv = Server(["--queue-size", "1", "--max-batch", "1", "--workers", "1"], name="overload")
    long_text = max(goldens()["cases"], key=lambda c: len(c["input_ids"]))["text"]
    results = []

    def one():
        results.append(srv.request("POST", "/generate", {"text": long_text, "min_new_tokens": 400,
                                                         "max_new_tokens": 400}))
    try:
        threads = [threading.Thread(target=one) for _ in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = sorted(r[0] for r in results)
        n429 = codes.count(429)
        check(n429 > 0 and codes.count(200) >= 1 and codes.count(200) + n429 == 24, f"overload statuses {codes}")
        for st, h, body in results:
            if st == 429:
                check_error(st, json.loads(body), 429, "queue full", "queue")
                check(h.get("retry-after") == "1", f"Retry-After: {h}")
                break
        ok = [json.loads(b) for st, h, b in results if st == 200]
        check(all(a["usage"]["output_tokens"] == 400 and a["finish_reason"] == "length" for a in ok),
              "the admitted requests ran to their 400 tokens")
        st, _, _ = srv.request("GET", "/health")
        check(st == 200, "healthy after the overload")
    finally:
        check(srv.stop() == 0, "overload server exits 0")


def tokenize_only_checks():
    d = os.path.join(WORK, "bare-spm")
    os.makedirs(d, exist_ok=True)
    shutil.copy(os.path.join(FIXTURES, "tokenizer", "spm_a.model"), os.path.join(d, "spiece.model"))
    for model in (d, os.path.join(FIXTURES, "tokenizer", "spm_a.model")):
        srv = Server([], name="tokonly", model=model)
        try:
            st, _, body = srv.request("GET", "/info")
            check(st == 200 and json.loads(body)["model"]["mode"] == "tokenize-only", f"/info: {body[:200]}")
            st, _, _ = srv.request("GET", "/ready")
            check(st == 200, "tokenize-only is ready")
            st, ans = srv.post("/generate", {"text": "Hello world"})
            check_error(st, ans, 503, "tokenize-only /generate", "tokenize-only")
            n = bad = 0
            with open(os.path.join(FIXTURES, "tokenizer", "tok_public.spm_a.jsonl")) as f:
                lines = [json.loads(l) for l in f][::8]
            for i in range(0, len(lines), 16):  # 16 texts per request
                part = lines[i:i + 16]
                st, ans = srv.post("/tokenize", {"text": [p["text"] for p in part], "add_eos": False,
                                                 "pieces": True})
                for p, r in zip(part, ans["results"]):
                    n += 1
                    bad += r["ids"] != p["ids"] or r["pieces"] != p["pieces"]
                st, ans = srv.post("/tokenize", {"text": [p["text"] for p in part], "add_eos": False, "nbest": 4})
                for p, r in zip(part, ans["results"]):
                    n += 1
                    bad += [e["ids"] for e in r["nbest"]] != p["nbest4"]
            check(bad == 0 and n > 300, f"tokenize-only {model}: {n - bad}/{n} answers equal SentencePiece's")
            st, ans = srv.post("/detokenize", {"ids": lines[3]["ids"]})
            check(st == 200 and ans["text"] == lines[3]["decoded"], f"tokenize-only /detokenize {ans}")
        finally:
            check(srv.stop() == 0, "tokenize-only server exits 0")


def probe_checks():
    srv = Server([], name="probe")
    try:
        rc, _, err = run_cli(["--probe", "--host", "127.0.0.1", "--port", str(srv.port)])
        check(rc == 0, f"--probe of a live server: {rc} {err}")
        rc, _, _ = run_cli(["--probe", "--host", "0.0.0.0", "--port", str(srv.port)])
        check(rc == 0, "--probe with the wildcard host")
    finally:
        check(srv.stop() == 0, "probe server exits 0")
    rc, _, err = run_cli(["--probe", "--host", "127.0.0.1", "--port", str(free_port())])
    check(rc == 1 and "did not answer 200" in err, f"--probe of nothing: {rc} {err}")


if __name__ == "__main__":
    config_checks()
    auth_checks()
    overload_checks()
    tokenize_only_checks()
    probe_checks()
    finish("test_modes")
