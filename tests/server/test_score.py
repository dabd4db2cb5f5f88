"""test_score.py - POST /score (teacher-forced log-likelihood) on the real build/t5serve over
real HTTP, against transformers' reference and against `build/t5 score`.

1. t5-tiny-gated: the golden greedy sequence of every case of t5-tiny-gated.golden.json,
   given as target_ids (input as ids and as text): each token's logprob = transformers'
   top[0].logit - logsumexp of that step within 1e-4, "logprob" = their sum, usage; the token
   texts concatenate to SentencePiece's decode of the target (targets without added
   tokens); a target text gets </s>
   appended and its ids are transformers' tokenizer ids of it (hf_tokenizer_ids); every
   answer = `build/t5 score` on the same input (ids and text), value for value (float32).
2. t5-tiny-pegasus (WordPiece): a target text drops its [CLS] (the decoder start) and ends
   with [SEP] (the golden input_ids without the [CLS]); /score = `t5 score` in text mode;
   the greedy golden sequence scores to the logprobs /generate reports for it.
3. Concurrent /score and /generate: every score equal to the one asked alone, every
   generation = the greedy golden.
4. The HTTP threads answer /health and /tokenize while a 512-token score runs on the worker.
5. Errors: 400 naming the field (unknown fields, missing / both / empty / out-of-vocabulary
   inputs and targets, a target over max_new_tokens_limit, an input over max_input_tokens,
   truncate, timeout_ms, bad JSON), 405, 413, 429 with Retry-After, an encoder-only model 400,
   tokenize-only 503.
Run by tests/suites/36-server-score.sh."""
import json
import os
import subprocess
import sys
import threading
import time

import sentencepiece as spm

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILD, FIXTURES, MODEL, Server, check, check_error, finish, goldens  # noqa: E402

M = os.path.join(FIXTURES, "models")
PEGASUS = os.path.join(M, "t5-tiny-pegasus")
DEFAULT = os.path.join(os.path.dirname(__file__), "..", "..", "models", "default")
G = goldens()
PG = goldens("t5-tiny-pegasus")


def f32(x):
    import struct
    return struct.unpack("f", struct.pack("f", x))[0]


def score(srv, body):
    st, ans = srv.post("/score", body)
    check(st == 200 and isinstance(ans, dict) and "tokens" in ans, f"/score {str(body)[:100]}: {st} {str(ans)[:300]}")
    return ans if isinstance(ans, dict) and "tokens" in ans else {"tokens": [], "logprob": None, "usage": {}}


def cli_score(model, lines, ids):
    """`build/t5 score` answers, one per `input<TAB>target` line."""
    args = [os.path.join(BUILD, "t5"), "score", "--model", model, "--threads", "1"] + (["--input", "ids"] if ids else [])
    p = subprocess.run(args, input="".join(ln + "\n" for ln in lines), capture_output=True, text=True, timeout=300)
    check(p.returncode == 0, f"t5 score: {p.returncode} {p.stderr[-500:]}")
    return [json.loads(ln) for ln in p.stdout.splitlines()]


def same_as_cli(ans, cli, what):
    got = [(t["id"], f32(t["logprob"])) for t in ans["tokens"]]
    want = [(t["id"], f32(t["logprob"])) for t in cli.get("tokens", [])]
    check(got == want and f32(ans["logprob"]) == f32(cli["logprob"]),
          f"{what}: /score {got[:4]}... {ans['logprob']} != t5 score {want[:4]}... {cli.get('logprob')}")


def gated():
    sp = spm.SentencePieceProcessor(model_file=os.path.join(MODEL, "spiece.model"))
    srv = Server([], name="score-gated")
    try:
        id_lines, text_lines, by_ids, by_text = [], [], [], []
        for k, c in enumerate(G["cases"]):
            gr = c["greedy"]
            want = [s["top"][0][1] - s["logsumexp"] for s in gr["steps"]]
            tag = f"gated case {k}"
            check(all(s["top"][0][0] == i for s, i in zip(gr["steps"], gr["ids"])), f"{tag}: golden steps are greedy")
            for body in ({"ids": c["input_ids"], "target_ids": gr["ids"]},
                         {"text": c["text"], "target_ids": gr["ids"]}):
                a = score(srv, body)
                lp = [t["logprob"] for t in a["tokens"]]
                check([t["id"] for t in a["tokens"]] == gr["ids"], f"{tag}: ids {[t['id'] for t in a['tokens']]}")
                err = max((abs(x - y) for x, y in zip(lp, want)), default=1.0)
                check(len(lp) == len(want) and err <= 1e-4, f"{tag} {list(body)[0]}: logprobs off by {err:.3g}")
                check(a["logprob"] is not None and abs(a["logprob"] - sum(want)) <= 1e-3,
                      f"{tag}: logprob {a['logprob']} vs transformers' {sum(want)}")
                check(a["usage"] == {"input_tokens": len(c["input_ids"]), "target_tokens": len(gr["ids"])},
                      f"{tag}: usage {a['usage']}")
                text = "".join(t["text"] for t in a["tokens"])
                if all(i < sp.get_piece_size() for i in gr["ids"]):  # added tokens (<extra_id_N>) aside
                    check(text == sp.decode([i for i in gr["ids"] if i != 1]), f"{tag}: token texts {text!r}")
            by_ids.append(a)
            id_lines.append(" ".join(map(str, c["input_ids"])) + "\t" + " ".join(map(str, gr["ids"])))
            a = score(srv, {"text": c["text"], "target": c["text"]})
            check([t["id"] for t in a["tokens"]] == c["hf_tokenizer_ids"],
                  f"{tag}: target text ids {[t['id'] for t in a['tokens']]} != transformers' {c['hf_tokenizer_ids']}")
            by_text.append(a)
            text_lines.append(c["text"] + "\t" + c["text"])
        for a, cli in zip(by_ids, cli_score(MODEL, id_lines, True)):
            same_as_cli(a, cli, "gated ids")
        for a, cli in zip(by_text, cli_score(MODEL, text_lines, False)):
            same_as_cli(a, cli, "gated text")
        concurrent(srv)
    finally:
        check(srv.stop() == 0, "gated server exits 0")


def concurrent(srv):
    cases = G["cases"]
    alone = [score(srv, {"ids": c["input_ids"], "target_ids": c["greedy"]["ids"]}) for c in cases]
    got, gens, lock = {}, {}, threading.Lock()

    def score_worker(k):
        for r in range(3):
            c = cases[(k + r) % len(cases)]
            st, a = srv.post("/score", {"ids": c["input_ids"], "target_ids": c["greedy"]["ids"]})
            with lock:
                got[(k, r)] = (cases.index(c), st, a)

    def gen_worker(k):
        c = cases[k % len(cases)]
        st, a = srv.post("/generate", {"ids": c["input_ids"], "max_new_tokens": c["greedy"]["max_new_tokens"],
                                       "details": True})
        with lock:
            gens[k] = (c, st, a)

    th = [threading.Thread(target=score_worker, args=(k,)) for k in range(4)]
    th += [threading.Thread(target=gen_worker, args=(k,)) for k in range(3)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    for (k, r), (ci, st, a) in sorted(got.items()):
        check(st == 200 and a == alone[ci], f"concurrent /score {k}/{r}: {st} differs from alone")
    for k, (c, st, a) in gens.items():
        ids = [t["id"] for t in (a or {}).get("tokens", [])]
        check(st == 200 and ids == c["greedy"]["ids"], f"concurrent /generate {k}: {st} {ids}")


def errors():
    srv = Server(["--max-new-tokens-limit", "8", "--default-max-new-tokens", "4", "--max-input-tokens", "32",
                  "--max-body-bytes", "65536"], name="score-errors")
    try:
        error_cases(srv)
    finally:
        check(srv.stop() == 0, "errors server exits 0")


def error_cases(srv):
    c = G["cases"][0]
    ok = {"ids": c["input_ids"], "target_ids": [1]}
    cases = [
        ({"text": "a", "target": "b", "targt": 1}, "unknown field 'targt'"),
        ({"target": "b"}, "text (a string) or ids is required"),
        ({"text": ["a", "b"], "target": "b"}, "text (a string) or ids is required"),
        ({"text": "a"}, "target (a string) or target_ids is required"),
        ({"text": "a", "target": 5}, "target (a string) or target_ids is required"),
        ({"text": "a", "ids": [1], "target": "b"}, "either text or ids"),
        ({"text": "a", "target": "b", "target_ids": [1]}, "either target or target_ids"),
        ({"ids": [], "target": "b"}, "ids must not be empty"),
        ({"ids": "1 2", "target": "b"}, "ids must be an array"),
        ({"text": "a", "target_ids": []}, "target_ids must not be empty"),
        ({"text": "a", "target_ids": [1, 99999]}, "target_ids[1] = 99999 is outside the vocabulary"),
        ({"text": "a", "target_ids": [1.5]}, "target_ids[0] must be an integer"),
        ({"text": "a", "target": "a " * 40}, "max_new_tokens_limit (8)"),
        ({"text": "a", "target_ids": [5] * 9}, "target_ids has 9 ids"),
        ({"text": "a " * 40, "target": "b"}, "max_input_tokens (32)"),
        ({"ids": [5] * 33, "target": "b"}, "ids has 33 ids"),
        (dict(ok, truncate=0), "truncate"),
        (dict(ok, timeout_ms=0), "timeout_ms"),
        ([1, 2], None),
    ]
    for body, needle in cases:
        st, ans = srv.post("/score", body)
        check_error(st, ans, 400, f"/score {str(body)[:60]}", needle)
    a = score(srv, {"text": "a " * 40, "target": "b", "truncate": 4})
    check(a["usage"].get("input_tokens") == 5, f"truncate 4: usage {a['usage']}")
    st, _, data = srv.request("POST", "/score", b"{not json")
    check_error(st, json.loads(data), 400, "/score bad JSON")
    st, _, data = srv.request("GET", "/score")
    check_error(st, json.loads(data), 405, "GET /score")
    st, ans = srv.post("/score", {"text": "a" * 70000, "target": "b"})
    check_error(st, ans, 413, "/score over max_body_bytes")


def busy():
    """429: one batch row busy with a long generation, the queue (1) holding another."""
    srv = Server(["--max-batch", "1", "--queue-size", "1"], name="score-busy")
    try:
        long = {"text": "a", "max_new_tokens": 512, "min_new_tokens": 512}
        res = []
        th = []

        def wait_for(metric):
            t0 = time.time()
            while srv.metric(metric) < 1 and time.time() - t0 < 30:
                time.sleep(0.005)

        for metric in ("t5serve_active_sequences", "t5serve_queue_depth"):
            th.append(threading.Thread(target=lambda: res.append(srv.post("/generate", long))))
            th[-1].start()
            wait_for(metric)
        st, hdrs, data = srv.request("POST", "/score", {"text": "a", "target": "b"})
        check_error(st, json.loads(data), 429, "/score with the queue full")
        check("retry-after" in hdrs, "429 carries Retry-After")
        for t in th:
            t.join()
        check([st for st, _ in res] == [200, 200], f"the long generations: {[st for st, _ in res]}")
    finally:
        check(srv.stop() == 0, "busy server exits 0")


def pegasus():
    srv = Server([], name="score-pegasus", model=PEGASUS)
    try:
        lines, answers = [], []
        for k, c in enumerate(PG["cases"]):
            a = score(srv, {"text": c["text"], "target": c["text"]})
            ids = [t["id"] for t in a["tokens"]]
            check(ids == c["input_ids"][1:], f"pegasus case {k}: target ids {ids} != golden {c['input_ids'][1:]}")
            answers.append(a)
            lines.append(c["text"] + "\t" + c["text"])
            st, g = srv.post("/generate", {"text": c["text"], "max_new_tokens": c["greedy"]["max_new_tokens"],
                                           "details": True})
            gids = [t["id"] for t in (g or {}).get("tokens", [])]
            check(st == 200 and gids == c["greedy"]["ids"], f"pegasus case {k}: /generate {st} {gids}")
            s = score(srv, {"text": c["text"], "target_ids": gids})
            err = max((abs(x["logprob"] - y["logprob"]) for x, y in zip(s["tokens"], g["tokens"])), default=1.0)
            check(len(s["tokens"]) == len(gids) and err <= 1e-5,
                  f"pegasus case {k}: the greedy sequence scores {err:.3g} off /generate's logprobs")
        for a, cli in zip(answers, cli_score(PEGASUS, lines, False)):
            same_as_cli(a, cli, "pegasus text")
    finally:
        check(srv.stop() == 0, "pegasus server exits 0")


def not_blocking():
    """While a long score runs on the worker (512 target tokens on the default model), the HTTP
    threads answer: /health and /tokenize come back before it ends (it is counted active then)."""
    srv = Server(["--threads-per-worker", "1"], name="score-long", model=DEFAULT)
    try:
        out = []
        body = {"text": "季路问事鬼神。敢问死。", "target_ids": [5] * 511 + [1]}
        th = threading.Thread(target=lambda: out.append(srv.post("/score", body)))
        th.start()
        t0 = time.time()
        while srv.metric("t5serve_active_sequences") < 1 and th.is_alive() and time.time() - t0 < 60:
            time.sleep(0.002)
        running = th.is_alive()
        st_h, _, _ = srv.request("GET", "/health")
        st_t, _, _ = srv.request("POST", "/tokenize", {"text": "a"})
        check(running and th.is_alive() and st_h == 200 and st_t == 200,
              f"answers while a score runs: running {running}, still {th.is_alive()}, /health {st_h}, /tokenize {st_t}")
        th.join()
        st, a = out[0]
        check(st == 200 and a["usage"]["target_tokens"] == 512 and len(a["tokens"]) == 512, f"the long score: {st}")
    finally:
        check(srv.stop() == 0, "long-score server exits 0")


def other_modes():
    srv = Server([], name="score-enc", model=os.path.join(M, "t5-enc-tiny"))
    try:
        st, ans = srv.post("/score", {"text": "a", "target": "b"})
        check_error(st, ans, 400, "/score on an encoder-only model", "the model has no decoder")
    finally:
        check(srv.stop() == 0, "encoder-only server exits 0")
    srv = Server([], name="score-tokonly", model=os.path.join(FIXTURES, "tokenizer", "spm_a.model"))
    try:
        st, ans = srv.post("/score", {"text": "a", "target": "b"})
        check_error(st, ans, 503, "/score on a tokenize-only server", "tokenize-only")
    finally:
        check(srv.stop() == 0, "tokenize-only server exits 0")


def main():
    gated()
    errors()
    busy()
    pegasus()
    not_blocking()
    other_modes()
    finish("test_score")


if __name__ == "__main__":
    main()
