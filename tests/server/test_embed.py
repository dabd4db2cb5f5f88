"""test_embed.py - POST /embed against sentence-transformers' and transformers' outputs, on the
real build/t5serve over real HTTP.

1. t5-enc-tiny (T5EncoderModel): /info mode "embed", /generate 400; every pooling of
   t5-enc-tiny.golden.json (mean, max, cls, last, mean + normalize, pooling none = the
   encoder's last hidden state) from text, from ids, one input and arrays; truncate; every
   error (400 naming the field, 413, 429 with Retry-After); the metrics.
2. st5-tiny (sentence-transformers folder: Pooling, Dense, Normalize): the folder's pipeline
   = `embedding`, normalize false / true = `embedding_no_normalize` / `embedding_normalize`;
   a copy with max_seq_length 8: texts are cut to 8 ids as sentence-transformers' tokenizer
   cuts them (the first 7 golden ids, then </s>).
3. t5-tiny-gated (a full T5 folder): /embed = `build/t5 embed` on it, bit for bit, and =
   the t5-enc-tiny goldens (the same encoder); concurrent /embed and /generate: every vector
   bit-identical to the one asked alone, every generation = transformers' greedy golden.
4. A tokenize-only server answers /embed 503.
Tolerance against the goldens: 1e-4 max abs and cosine >= 0.99999 (the fixtures README).
Run by tests/suites/35-server-embed.sh."""
import json
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILD, FIXTURES, MODEL, WORK, Server, check, check_error, finish, goldens  # noqa: E402

M = os.path.join(FIXTURES, "models")
ENC = os.path.join(M, "t5-enc-tiny")
ST5 = os.path.join(M, "st5-tiny")
EG = goldens("t5-enc-tiny")
SG = goldens("st5-tiny")
LONG = "The quick brown fox jumps over the lazy dog. " * 30  # 751 tokens
MID = "The quick brown fox jumps over the lazy dog. " * 12  # 301 tokens


def close(got, want, what, tol=1e-4, cos_min=0.99999):
    """max abs error and cosine of two (nested) float lists."""
    g = [x for r in got for x in r] if got and isinstance(got[0], list) else list(got or [])
    w = [x for r in want for x in r] if want and isinstance(want[0], list) else list(want)
    if not check(len(g) == len(w) and all(isinstance(x, float) for x in g), f"{what}: {len(g)} values, want {len(w)}"):
        return
    err = max((abs(a - b) for a, b in zip(g, w)), default=0.0)
    na, nb = math.sqrt(sum(a * a for a in g)), math.sqrt(sum(b * b for b in w))
    cos = sum(a * b for a, b in zip(g, w)) / max(na * nb, 1e-30)
    check(err <= tol and cos >= cos_min, f"{what}: max abs error {err:.3g}, cosine {cos:.7f}")


def emb(srv, body):
    st, ans = srv.post("/embed", body)
    check(st == 200 and isinstance(ans, dict), f"/embed {str(body)[:80]}: {st} {str(ans)[:200]}")
    return ans or {}


POOLINGS = [("mean", "mean"), ("max", "max"), ("cls", "cls"), ("last", "last")]


def encoder_only():
    srv = Server(["--max-texts", "16", "--max-body-bytes", "65536", "--queue-size", "12"], name="embed-enc", model=ENC)
    try:
        st, _, data = srv.request("GET", "/info")
        check(st == 200 and json.loads(data)["model"]["mode"] == "embed", f"/info mode: {data[:200]}")
        st, ans = srv.post("/generate", {"text": "a"})
        check_error(st, ans, 400, "/generate on an encoder-only model", "the model has no decoder")
        tokens = 0
        for ci, c in enumerate(EG["cases"]):
            tag = f"t5-enc-tiny case {ci}"
            n = len(c["input_ids"])
            for name, key in POOLINGS:
                a = emb(srv, {"text": c["text"], "pooling": name})
                close(a.get("embedding"), c[key], f"{tag}: pooling {name}")
                check(a.get("usage") == {"input_tokens": n}, f"{tag}: usage {a.get('usage')}, want {n} tokens")
                tokens += n
            a = emb(srv, {"text": c["text"]})  # no modules.json: mean, no normalization
            close(a.get("embedding"), c["mean"], f"{tag}: default pooling")
            a = emb(srv, {"text": c["text"], "normalize": True})
            close(a.get("embedding"), c["mean_normalized"], f"{tag}: mean + normalize")
            a = emb(srv, {"text": c["text"], "pooling": "none"})
            close(a.get("token_embeddings"), c["token_embeddings"], f"{tag}: pooling none")
            check("embedding" not in a and a.get("usage") == {"input_tokens": n}, f"{tag}: pooling none answer keys")
            a = emb(srv, {"ids": c["input_ids"], "pooling": "max"})
            close(a.get("embedding"), c["max"], f"{tag}: ids, pooling max")
            tokens += 4 * n
        # an array: one answer per text, each the one asked alone
        texts = [c["text"] for c in EG["cases"]]
        a = emb(srv, {"text": texts, "pooling": "cls"})
        res = a.get("results") or []
        check(len(res) == len(texts), f"array: {len(res)} results for {len(texts)} texts")
        for ci, (r, c) in enumerate(zip(res, EG["cases"])):
            close(r.get("embedding"), c["cls"], f"array result {ci}")
            check(r == emb(srv, {"text": c["text"], "pooling": "cls"}), f"array result {ci} = the single answer")
            tokens += 2 * len(c["input_ids"])
        a = emb(srv, {"ids": [c["input_ids"] for c in EG["cases"][:3]], "pooling": "none"})
        res = a.get("results") or []
        check(len(res) == 3, f"ids array: {len(res)} results")
        for ci, r in enumerate(res):
            close(r.get("token_embeddings"), EG["cases"][ci]["token_embeddings"], f"ids array result {ci}")
            tokens += len(EG["cases"][ci]["input_ids"])
        # truncate N: the first N tokens, then </s> (as /generate)
        st, tk = srv.post("/tokenize", {"text": MID})
        ids = tk["ids"]
        a = emb(srv, {"text": MID, "truncate": 5})
        b = emb(srv, {"ids": ids[:5] + [ids[-1]]})
        check(a.get("usage") == {"input_tokens": 6} and a.get("embedding") == b.get("embedding"),
              f"truncate 5 = the first 5 ids and </s>: {a.get('usage')}")
        a = emb(srv, {"text": MID})  # no max_seq_length in this folder, under the server's limit
        check(a.get("usage") == {"input_tokens": len(ids)}, f"untruncated: {a.get('usage')}, want {len(ids)}")
        tokens += 12 + len(ids)
        errors(srv)
        st, _, data = srv.request("GET", "/metrics")
        text = data.decode()
        check(srv.metric("t5serve_embedding_tokens_total") == tokens,
              f"t5serve_embedding_tokens_total {srv.metric('t5serve_embedding_tokens_total')}, want {tokens}")
        check('t5serve_requests_total{route="/embed",status="200"}' in text
              and 't5serve_requests_total{route="/embed",status="400"}' in text, "requests by route /embed")
    finally:
        check(srv.stop() == 0, "t5-enc-tiny server exits 0")


def errors(srv):
    cases = [
        ({"text": "a", "pooling": "avg"}, 400, "pooling"),
        ({"text": "a", "pooling": 3}, 400, "pooling"),
        ({"text": "a", "normalize": "yes"}, 400, "normalize"),
        ({"text": "a", "truncate": 0}, 400, "truncate"),
        ({"text": "a", "truncate": "5"}, 400, "truncate"),
        ({"text": "a", "timeout_ms": 0}, 400, "timeout_ms"),
        ({"text": "a", "normalise": True}, 400, "unknown field 'normalise'"),
        ({"text": "a", "ids": [1]}, 400, "either text or ids"),
        ({"pooling": "mean"}, 400, "text"),
        ({"text": []}, 400, "text"),
        ({"text": ["a", 3]}, 400, "text[1]"),
        ({"text": 7}, 400, "text"),
        ({"text": ["x"] * 17}, 400, "max_texts"),
        ({"ids": [1, 2, 99999]}, 400, "ids[2]"),
        ({"ids": []}, 400, "ids"),
        ({"ids": "1 2"}, 400, "ids"),
        ({"ids": [[1], "x"]}, 400, "ids[1]"),
        ({"ids": [[1], []]}, 400, "ids[1]"),
        ({"ids": [[5, 1], [7, -1]]}, 400, "ids[1]"),
        ({"text": "a" * 70000}, 413, None),
        ({"text": ["a"] * 13}, 429, None),
    ]
    for body, status, needle in cases:
        st, hdrs, data = srv.request("POST", "/embed", body)
        try:
            ans = json.loads(data)
        except ValueError:
            ans = None
        check_error(st, ans, status, f"/embed {str(body)[:60]}", needle)
        if status == 429:
            check("retry-after" in hdrs, "429 carries Retry-After")
    for raw in ['{"text": "a",', '["text"]', "", '{"text": "a", "text": "b"}']:
        st, ans = srv.post("/embed", raw)
        check_error(st, ans, 400, f"/embed body {raw!r}")
    st, _, _ = srv.request("GET", "/embed")
    check(st == 405, f"GET /embed: {st}")
    st, ans = srv.post("/nope", {})
    check(st == 404 and "/embed" in ans["error"]["message"], f"404 lists /embed: {ans}")


def sentence_t5():
    srv = Server([], name="embed-st5", model=ST5)
    try:
        for ci, c in enumerate(SG["cases"]):
            tag = f"st5-tiny case {ci}"
            a = emb(srv, {"text": c["text"]})
            close(a.get("embedding"), c["embedding"], f"{tag}: the folder's pipeline")
            check(a.get("usage") == {"input_tokens": len(c["input_ids"])}, f"{tag}: usage {a.get('usage')}")
            a = emb(srv, {"text": c["text"], "normalize": False})
            close(a.get("embedding"), c["embedding_no_normalize"], f"{tag}: normalize false")
            a = emb(srv, {"text": c["text"], "normalize": True})
            close(a.get("embedding"), c["embedding_normalize"], f"{tag}: normalize true")
            a = emb(srv, {"ids": c["input_ids"]})
            close(a.get("embedding"), c["embedding"], f"{tag}: from ids")
            a = emb(srv, {"text": c["text"], "pooling": "none"})
            close(a.get("token_embeddings"), EG["cases"][ci]["token_embeddings"], f"{tag}: pooling none")
        a = emb(srv, {"text": LONG})  # 751 tokens: cut to the folder's max_seq_length 512
        b = emb(srv, {"text": LONG, "truncate": True})
        check(a.get("usage") == {"input_tokens": 512} and a == b, f"the folder's max_seq_length: {a.get('usage')}")
        st, ans = srv.post("/embed", {"text": LONG, "truncate": False})
        check_error(st, ans, 400, "truncate false", "max_input_tokens")
    finally:
        check(srv.stop() == 0, "st5-tiny server exits 0")
    srv = Server(["--max-input-tokens", "64"], name="embed-st5-64", model=ST5)
    try:
        st, ans = srv.post("/embed", {"text": MID})  # max_seq_length 512 > max_input_tokens 64
        check_error(st, ans, 400, "a text over max_input_tokens", "truncate")
        a = emb(srv, {"text": MID, "truncate": True})
        check(a.get("usage") == {"input_tokens": 64}, f"truncate true: the server's limit: {a.get('usage')}")
    finally:
        check(srv.stop() == 0, "st5-tiny server exits 0")
    # a copy whose sentence_bert_config says max_seq_length 8
    d = os.path.join(WORK, "st5-msl8")
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(ST5, d)
    with open(os.path.join(d, "sentence_bert_config.json")) as f:
        sb = json.load(f)
    sb["max_seq_length"] = 8
    with open(os.path.join(d, "sentence_bert_config.json"), "w") as f:
        json.dump(sb, f)
    srv = Server([], name="embed-st5-8", model=d)
    try:
        for ci, c in enumerate(SG["cases"]):
            ids = c["input_ids"]
            cut = ids if len(ids) <= 8 else ids[:7] + [ids[-1]]
            a = emb(srv, {"text": c["text"]})
            b = emb(srv, {"ids": cut})
            check(a.get("usage") == {"input_tokens": len(cut)} and a.get("embedding") == b.get("embedding"),
                  f"max_seq_length 8, case {ci}: {a.get('usage')} = the first 7 ids and </s>")
            if len(ids) <= 8:
                close(a.get("embedding"), c["embedding"], f"max_seq_length 8, short case {ci}")
        a = emb(srv, {"text": SG["cases"][0]["text"], "truncate": 12})
        check(a.get("usage") == {"input_tokens": 13}, f"truncate 12 overrides max_seq_length: {a.get('usage')}")
        a = emb(srv, {"text": MID, "truncate": False})
        check(a.get("usage", {}).get("input_tokens", 0) > 8, f"truncate false: no cut: {a.get('usage')}")
    finally:
        check(srv.stop() == 0, "st5-tiny copy server exits 0")


def t5_embed_cli(model, texts, *args):
    p = subprocess.run([os.path.join(BUILD, "t5"), "embed", "--model", model, *args],
                       input="".join(t + "\n" for t in texts), capture_output=True, text=True)
    check(p.returncode == 0, f"t5 embed {args}: exit {p.returncode}: {p.stderr[-300:]}")
    return [json.loads(ln) for ln in p.stdout.splitlines()]


def full_t5():
    """/embed on a full T5 folder = `t5 embed`; concurrent /embed + /generate = alone and goldens."""
    G = goldens()
    texts = [c["text"] for c in EG["cases"] if "\n" not in c["text"]]
    srv = Server(["--max-texts", "16"], name="embed-full")
    try:
        st, _, data = srv.request("GET", "/info")
        check(json.loads(data)["model"]["mode"] == "generate", "/info mode of a full T5 folder")
        for pooling in ["mean", "max", "cls", "last", "none"]:
            cli = t5_embed_cli(MODEL, texts, "--pooling", pooling)
            key = "token_embeddings" if pooling == "none" else "embedding"
            for ti, t in enumerate(texts):
                a = emb(srv, {"text": t, "pooling": pooling})
                check(a.get(key) == cli[ti][key], f"full T5, pooling {pooling}, text {ti}: /embed = t5 embed")
        for ci, c in enumerate(EG["cases"]):
            a = emb(srv, {"text": c["text"]})
            close(a.get("embedding"), c["mean"], f"full T5 case {ci}: = the t5-enc-tiny golden mean")
        # alone, then under concurrent load
        rnd = random.Random(5)
        reqs = [{"text": rnd.choice(texts), "pooling": rnd.choice(["mean", "max", "none", "last"])} for _ in range(24)]
        reqs += [{"text": rnd.sample(texts, 3), "normalize": True} for _ in range(6)]
        alone = [emb(srv, r) for r in reqs]
        gens = [c for c in G["cases"]]
        got, gen_got = [None] * len(reqs), [None] * (2 * len(gens))

        def embed_worker(k):
            for i in range(k, len(reqs), 6):
                got[i] = srv.post("/embed", reqs[i])

        def gen_worker(k):
            for i in range(k, len(gen_got), 3):
                c = gens[i % len(gens)]
                gen_got[i] = srv.post("/generate", {"text": c["text"], "max_new_tokens": c["greedy"]["max_new_tokens"],
                                                    "details": True})

        th = [threading.Thread(target=embed_worker, args=(k,)) for k in range(6)]
        th += [threading.Thread(target=gen_worker, args=(k,)) for k in range(3)]
        for t in th:
            t.start()
        for t in th:
            t.join()
        for i, (r, a) in enumerate(zip(got, alone)):
            check(r is not None and r[0] == 200 and r[1] == a, f"concurrent /embed {i}: bit-identical to alone")
        for i, r in enumerate(gen_got):
            c = gens[i % len(gens)]
            check(r is not None and r[0] == 200 and [t["id"] for t in r[1]["tokens"]] == c["greedy"]["ids"],
                  f"concurrent /generate {i}: greedy golden")
        # clients that leave before their answer: nothing lost, nothing leaked (LeakSanitizer at exit)
        big = json.dumps({"text": [MID] * 16, "pooling": "none"}).encode()
        for _ in range(10):
            s = socket.create_connection(("127.0.0.1", srv.port))
            s.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(big) + big)
            s.close()
        check(emb(srv, reqs[0]) == alone[0], "after abandoned requests: the same answer")
    finally:
        check(srv.stop() == 0, "full T5 server exits 0")


def tokenize_only():
    srv = Server([], name="embed-tokonly", model=os.path.join(FIXTURES, "tokenizer", "spm_a.model"))
    try:
        st, ans = srv.post("/embed", {"text": "a"})
        check_error(st, ans, 503, "/embed on a tokenize-only server", "tokenize-only")
    finally:
        check(srv.stop() == 0, "tokenize-only server exits 0")


def main():
    encoder_only()
    sentence_t5()
    full_t5()
    tokenize_only()
    finish("test_embed")


if __name__ == "__main__":
    main()
