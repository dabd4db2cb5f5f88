"""test_api.py - t5serve's HTTP API against the references: /generate greedy, beam,
penalties and min_new_tokens outputs equal transformers' golden ids (t5-tiny-gated),
logprobs match the golden logits, streaming gives the same tokens as the plain call,
/tokenize equals the goldens' input_ids (SentencePiece), /detokenize equals
SentencePiece's decode, and every error status of design section 5 with its JSON body.
Run by tests/suites/30-server-api.sh."""
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import FIXTURES, MODEL, Server, check, check_error, finish, goldens  # noqa: E402

import sentencepiece as spm  # noqa: E402

G = goldens()
SP = spm.SentencePieceProcessor(model_file=os.path.join(MODEL, "spiece.model"))
SP_SIZE = SP.get_piece_size()


def ref_text(ids):
    """SentencePiece's decode of generated ids without sentinels (None when there are some)."""
    if any(SP_SIZE <= i < SP_SIZE + 100 for i in ids):
        return None
    return SP.decode([i for i in ids if i < SP_SIZE])


def gen(srv, body):
    st, ans = srv.post("/generate", body)
    return st, ans


def main():
    srv = Server(["--max-texts", "16", "--max-input-tokens", "512", "--max-body-bytes", "1048576"], name="api")
    try:
        run(srv)
    finally:
        rc = srv.stop()
        check(rc == 0, f"t5serve exits 0 after SIGTERM (got {rc})")
    pegasus()
    relu_bytes()
    finish("test_api")


def relu_bytes():
    """t5-tiny-relu (float16, relu, tied head, byte-fallback tokenizer): greedy ids = goldens,
    and a stream whose output has byte pieces sends only whole UTF-8 characters: the
    events of a character's first bytes carry no text, the one completing it carries it."""
    rg = goldens("t5-tiny-relu")
    sp = spm.SentencePieceProcessor(model_file=os.path.join(FIXTURES, "models", "t5-tiny-relu", "spiece.model"))
    srv = Server([], name="relu", model=os.path.join(FIXTURES, "models", "t5-tiny-relu"))
    n_bytes = 0
    try:
        for ci, c in enumerate(rg["cases"]):
            gi = c["greedy"]
            st, ans = gen(srv, {"text": c["text"], "max_new_tokens": gi["max_new_tokens"], "details": True})
            check(st == 200 and [t["id"] for t in ans["tokens"]] == gi["ids"], f"relu case {ci}: greedy {ans}")
            if not any(i < sp.get_piece_size() and sp.is_byte(i) for i in gi["ids"]):
                continue
            st, ctype, ev = srv.stream({"text": c["text"], "max_new_tokens": gi["max_new_tokens"], "stream": True})
            toks = [e["token"] for e in ev if isinstance(e, dict) and "token" in e]
            ids = [t["id"] for t in toks]
            want = sp.decode([i for i in gi["ids"] if i < sp.get_piece_size()])
            check(ids == gi["ids"] and ev[-2]["text"] == want and "".join(t["text"] for t in toks) == want
                  and "\ufffd" not in "".join(t["text"] for t in toks), f"relu case {ci}: byte stream {toks}")
            # a byte piece that starts a character (lead byte) never carries text itself
            for t in toks:
                if t["id"] < sp.get_piece_size() and sp.is_byte(t["id"]):
                    n_bytes += 1
                    b = int(sp.id_to_piece(t["id"])[3:5], 16)
                    if b >= 0xC0:
                        check(t["text"] == "", f"relu case {ci}: lead byte event {t} carries no text")
        check(n_bytes > 0, "the relu goldens exercise byte pieces in a stream")
    finally:
        check(srv.stop() == 0, "relu server exits 0")


def pegasus():
    """T5 PEGASUS layout (jieba + WordPiece vocab.txt, generation from [CLS] to [SEP]):
    ids, text and beam scores equal transformers' goldens for t5-tiny-pegasus."""
    pg = goldens("t5-tiny-pegasus")
    srv = Server([], name="pegasus", model=os.path.join(FIXTURES, "models", "t5-tiny-pegasus"))
    try:
        for ci, c in enumerate(pg["cases"]):
            tag = f"pegasus case {ci}"
            st, ans = srv.post("/tokenize", {"text": c["text"]})
            check(st == 200 and ans["ids"] == c["input_ids"], f"{tag}: /tokenize {ans}")
            gi = c["greedy"]
            st, ans = gen(srv, {"text": c["text"], "max_new_tokens": gi["max_new_tokens"], "details": True})
            check(st == 200 and [t["id"] for t in ans["tokens"]] == gi["ids"] and ans["text"] == gi["text"],
                  f"{tag}: greedy {ans} expected {gi}")
            b = c["beam4"]
            st, ans = gen(srv, {"text": c["text"], "num_beams": 4, "num_return_sequences": 4, "early_stopping": True,
                                "max_new_tokens": gi["max_new_tokens"], "details": True})
            check(st == 200 and [t["id"] for t in ans["tokens"]] == b["sequences"][0] and ans["text"] == b["text"]
                  and all(abs(q["score"] - w) < 2e-3 for q, w in zip(ans["sequences"], b["sequences_scores"])),
                  f"{tag}: beam4 {ans} expected {b}")
    finally:
        check(srv.stop() == 0, "pegasus server exits 0")


def run(srv):
    # --- operational routes
    st, _, body = srv.request("GET", "/health")
    check(st == 200 and json.loads(body) == {"status": "ok"}, f"/health: {st} {body[:100]}")
    st, _, body = srv.request("GET", "/ready")
    check(st == 200, f"/ready: {st}")
    st, _, body = srv.request("GET", "/info")
    info = json.loads(body)
    check(st == 200 and info["model"]["mode"] == "generate" and info["model"]["config"]["vocab_size"] == 8128
          and info["model"]["config"]["d_model"] == 64 and info["limits"]["max_input_tokens"] == 512,
          f"/info: {body[:300]}")

    cases = G["cases"]
    BEAM = json.load(open(os.path.join(os.path.dirname(__file__), "..", "data", "beam_goldens.json")))
    BEAM = BEAM["models"]["t5-tiny-gated"]
    for ci, c in enumerate(cases):
        text, tag = c["text"], f"case {ci}"
        # /tokenize = the goldens' input ids (SentencePiece + T5's </s>)
        st, ans = srv.post("/tokenize", {"text": text})
        check(st == 200 and ans == {"ids": c["input_ids"]}, f"{tag}: /tokenize {ans}")
        # greedy, by text and by ids
        gi = c["greedy"]
        for how, req in (("text", {"text": text}), ("ids", {"ids": c["input_ids"]})):
            req.update(max_new_tokens=gi["max_new_tokens"], details=True)
            st, ans = gen(srv, req)
            ok = check(st == 200 and [t["id"] for t in ans["tokens"]] == gi["ids"],
                       f"{tag}: greedy by {how}: {st} {ans}, expected {gi['ids']}")
            if not ok:
                continue
            want_fin = "eos" if gi["ids"][-1] == 1 else "length"
            check(ans["finish_reason"] == want_fin, f"{tag}: finish_reason {ans['finish_reason']}")
            check(ans["usage"] == {"input_tokens": len(c["input_ids"]), "output_tokens": len(gi["ids"])},
                  f"{tag}: usage {ans['usage']}")
            rt = ref_text(gi["ids"])
            if rt is not None:
                check(ans["text"] == rt, f"{tag}: text {ans['text']!r} != SentencePiece {rt!r}")
            else:
                st2, d = srv.post("/detokenize", {"ids": gi["ids"]})
                check(st2 == 200 and d["text"] == ans["text"] and "<extra_id_" in ans["text"],
                      f"{tag}: sentinel text {ans['text']!r} vs /detokenize {d}")
            check("".join(t["text"] for t in ans["tokens"]) == ans["text"],
                  f"{tag}: token texts join to the text")
            # log-probabilities under the model: chosen logit - logsumexp
            errs = [abs(t["logprob"] - (s["top"][0][1] - s["logsumexp"])) for t, s in zip(ans["tokens"], gi["steps"])]
            check(max(errs) < 2e-3, f"{tag}: logprob max error {max(errs):.2e}")
        # penalties and min_new_tokens
        for key, extra in (("greedy_penalties", {"repetition_penalty": 1.3, "no_repeat_ngram_size": 3}),
                           ("greedy_min_new", {"min_new_tokens": 16})):
            g = c[key]
            req = {"text": text, "max_new_tokens": g["max_new_tokens"], "details": True}
            req.update(extra)
            st, ans = gen(srv, req)
            check(st == 200 and [t["id"] for t in ans["tokens"]] == g["ids"], f"{tag}: {key}: {st} {ans}")
        # beams: 4 beams, 4 sequences, best first, scores = transformers' sequences_scores
        b = c["beam4"]
        st, ans = gen(srv, {"text": text, "num_beams": 4, "num_return_sequences": 4, "length_penalty": 1.0,
                            "early_stopping": True, "max_new_tokens": b["max_new_tokens"], "details": True})
        if check(st == 200 and len(ans.get("sequences", [])) == 4, f"{tag}: beam4: {st} {ans}"):
            check([t["id"] for t in ans["tokens"]] == b["sequences"][0], f"{tag}: beam4 best ids")
            for k, (seq, score) in enumerate(zip(b["sequences"], b["sequences_scores"])):
                got = ans["sequences"][k]
                check(abs(got["score"] - score) < 2e-3, f"{tag}: beam {k} score {got['score']} vs {score}")
                rt = ref_text(seq)
                if rt is not None:
                    check(got["text"] == rt, f"{tag}: beam {k} text {got['text']!r} vs {rt!r}")
            check(ans["text"] == ans["sequences"][0]["text"], f"{tag}: beam text is the best sequence's")
        # early_stopping false / "never" and other length penalties (tests/data/beam_goldens.json)
        for run in BEAM[ci * 9:(ci + 1) * 9]:
            if run["early_stopping"] is True or run["length_penalty"] == 1.0:
                continue
            st, ans = gen(srv, {"text": text, "num_beams": 4, "num_return_sequences": 4, "max_new_tokens": 24,
                                "length_penalty": run["length_penalty"], "early_stopping": run["early_stopping"],
                                "details": True})
            what = f"{tag}: beam4 early_stopping {run['early_stopping']} length_penalty {run['length_penalty']}"
            if check(st == 200 and [t["id"] for t in ans["tokens"]] == run["sequences"][0], f"{what}: {st} {ans}"):
                for got, seq, score in zip(ans["sequences"], run["sequences"], run["sequences_scores"]):
                    rt = ref_text(seq)
                    check(abs(got["score"] - score) < 2e-3 and (rt is None or got["text"] == rt),
                          f"{what}: {got} vs {seq} {score}")
        # streaming gives the same tokens and text as the plain call
        st, ctype, ev = srv.stream({"text": text, "max_new_tokens": gi["max_new_tokens"], "stream": True})
        if check(st == 200 and ctype.startswith("text/event-stream") and ev and ev[-1] == "[DONE]",
                 f"{tag}: stream {st} {ctype} {ev[-2:] if ev else ev}"):
            toks = [e["token"] for e in ev if isinstance(e, dict) and "token" in e]
            fin = ev[-2]
            check([t["id"] for t in toks] == gi["ids"], f"{tag}: streamed ids {[t['id'] for t in toks]}")
            st2, plain = gen(srv, {"text": text, "max_new_tokens": gi["max_new_tokens"]})
            check(fin.get("text") == plain.get("text") and fin.get("finish_reason") == plain.get("finish_reason")
                  and fin.get("usage") == plain.get("usage"), f"{tag}: final event {fin} vs {plain}")
            check("".join(t["text"] for t in toks) == fin.get("text"), f"{tag}: streamed text joins to the text")

    # an array of texts: one answer per text, each equal to its golden (and transformers' padded batch)
    bg = G["batch_greedy"]
    st, ans = gen(srv, {"text": bg["texts"], "max_new_tokens": 24, "details": True})
    check(st == 200 and [[t["id"] for t in r["tokens"]] for r in ans["results"]] == bg["ids"],
          f"batch of texts: {st} {str(ans)[:300]}")
    st, ans = srv.post("/tokenize", {"text": [c["text"] for c in cases]})
    check(st == 200 and [r["ids"] for r in ans["results"]] == [c["input_ids"] for c in cases], "/tokenize array")
    # pieces and offsets
    st, ans = srv.post("/tokenize", {"text": "Hello world", "pieces": True, "offsets": True, "add_eos": False})
    want = SP.encode("Hello world", out_type=str)
    check(st == 200 and ans.get("pieces") == want and ans["ids"] == SP.encode("Hello world")
          and len(ans["offsets"]) == len(want) and ans["offsets"][0][0] == 0 and ans["offsets"][-1][1] == 11,
          f"/tokenize pieces/offsets: {ans}")
    st, ans = srv.post("/tokenize", {"text": "Hello world", "nbest": 3})
    check(st == 200 and len(ans.get("nbest", [])) == 3 and ans["nbest"][0]["ids"][-1] == 1
          and ans["nbest"][0]["score"] >= ans["nbest"][1]["score"], f"/tokenize nbest: {ans}")
    st, a1 = srv.post("/tokenize", {"text": "Hello world", "alpha": 0.5, "seed": 7})
    st2, a2 = srv.post("/tokenize", {"text": "Hello world", "alpha": 0.5, "seed": 7})
    check(st == 200 and a1 == a2 and SP.decode(a1["ids"]) == "Hello world", f"/tokenize sampling: {a1} {a2}")

    # /detokenize = SentencePiece's decode (the fixtures' 300 random id sequences)
    n = bad = 0
    with open(os.path.join(FIXTURES, "tokenizer", "detok_public.spm_a.jsonl")) as f:
        for line in f:
            d = json.loads(line)
            st, ans = srv.post("/detokenize", {"ids": d["ids"]})
            n += 1
            if st != 200 or ans.get("text") != d["text"]:
                bad += 1
                if bad <= 3:
                    print("detokenize mismatch:", d["ids"][:10], repr(d["text"])[:80], ans)
    check(bad == 0 and n == 300, f"/detokenize: {n - bad}/{n} lines equal SentencePiece's decode")

    # stop strings: generation ends before the first one, which is left out
    c = cases[1]  # "Hello world": its greedy text is known from SentencePiece
    full = ref_text(c["greedy"]["ids"])
    stop = full[2:4]
    st, ans = gen(srv, {"text": c["text"], "max_new_tokens": 24, "stop": [stop, "zzzz"]})
    check(st == 200 and ans["text"] == full[:full.index(stop)] and ans["finish_reason"] == "stop",
          f"stop {stop!r} in {full!r}: {ans}")
    st, ctype, ev = srv.stream({"text": c["text"], "max_new_tokens": 24, "stop": stop, "stream": True})
    toks = [e["token"]["text"] for e in ev if isinstance(e, dict) and "token" in e]
    check(st == 200 and ev[-2]["text"] == full[:full.index(stop)] and ev[-2]["finish_reason"] == "stop"
          and stop not in "".join(toks), f"stream with stop: {ev}")
    # truncate: the first N tokens, then </s>
    long_case = max(cases, key=lambda c: len(c["input_ids"]))
    st, ans = gen(srv, {"text": long_case["text"], "truncate": 20, "max_new_tokens": 2})
    check(st == 200 and ans["usage"]["input_tokens"] == 21, f"truncate: {st} {ans}")
    st, ans = gen(srv, {"ids": long_case["input_ids"][:20] + [1], "max_new_tokens": 5, "details": True})
    st2, ans2 = gen(srv, {"text": long_case["text"], "truncate": 20, "max_new_tokens": 5, "details": True})
    check(st == 200 and st2 == 200 and ans["tokens"] == ans2["tokens"], "truncate = first 20 ids + </s>")
    # sampling is reproducible with a seed
    req = {"text": cases[0]["text"], "do_sample": True, "top_k": 20, "top_p": 0.9, "temperature": 0.8, "seed": 11,
           "max_new_tokens": 16}
    st, a1 = gen(srv, req)
    st2, a2 = gen(srv, req)
    check(st == 200 and a1 == a2, f"sampling with a seed: {a1} {a2}")

    errors(srv)
    mutations(srv)
    # metrics saw all of it
    check(srv.metric("t5serve_requests_total") > 50, "metrics count requests")
    check(srv.metric("t5serve_output_tokens_total") > 100, "metrics count output tokens")
    check(srv.metric("t5serve_time_to_first_token_seconds_count") > 10, "metrics have time to first token")
    check(srv.metric("t5serve_batch_rows_count") > 10, "metrics have batch rows")


def mutations(srv, n=400):
    """Mutated valid requests (seeded): every answer is a 200 or a 4xx with the error JSON
    shape, never a crash, a hang or a 500."""
    import random
    rnd = random.Random(5)
    seeds = [(b"/generate", {"text": "Hello world", "max_new_tokens": 4, "num_beams": 2, "stop": ["o"]}),
             (b"/generate", {"ids": [872, 73, 1], "max_new_tokens": 3, "details": True, "do_sample": True, "seed": 1}),
             (b"/tokenize", {"text": ["a b", "\u4e2d\u6587"], "pieces": True, "offsets": True}),
             (b"/tokenize", {"text": "Hello", "nbest": 2}),
             (b"/detokenize", {"ids": [872, 73, 1]})]
    values = [None, True, False, 0, -1, 1.5, 1e300, 2 ** 63, "", "x", [], {}, [1, "a"], {"a": []}, "\ud800"]
    bad = 0
    for i in range(n):
        path, obj = seeds[i % len(seeds)]
        obj = dict(obj)
        k = rnd.randrange(4)
        if k == 0:  # a field gets a value of another type
            obj[rnd.choice(list(obj))] = rnd.choice(values)
            raw = json.dumps(obj).encode()
        elif k == 1:  # bytes flipped
            raw = bytearray(json.dumps(obj, ensure_ascii=False).encode())
            for _ in range(rnd.randrange(1, 4)):
                raw[rnd.randrange(len(raw))] = rnd.randrange(256)
            raw = bytes(raw)
        elif k == 2:  # truncated
            raw = json.dumps(obj).encode()
            raw = raw[:rnd.randrange(len(raw))]
        else:  # an extra or numeric field set to an extreme
            obj[rnd.choice(["max_new_tokens", "top_k", "num_beams", "nbest", "truncate", "seed", "alpha",
                            "min_new_tokens", "no_repeat_ngram_size"])] = rnd.choice([0, -5, 10 ** 9, 3, 0.5])
            raw = json.dumps(obj).encode()
        st, _, body = srv.request("POST", path.decode(), raw)
        try:
            ans = json.loads(body)
        except ValueError:
            ans = None
        ok = ans is not None and (st == 200 or (400 <= st < 500 and ans.get("error", {}).get("code") == st))
        if not ok:
            bad += 1
            if bad <= 3:
                print("mutation", i, path, raw[:120], "->", st, body[:200])
    check(bad == 0, f"{n} mutated requests: {n - bad} answered 200 or a clear 4xx")
    st, _, _ = srv.request("GET", "/health")
    check(st == 200, "healthy after the mutated requests")


def errors(srv):
    e400 = [
        ("malformed JSON", b'{"text": "a",', "malformed JSON"),
        ("not an object", b'["a"]', "JSON object"),
        ("empty body", b"", "empty"),
        ("invalid UTF-8", b'{"text": "caf\xe9 \xff"}', "UTF-8"),
        ("NUL character", b'{"text": "a\\u0000b"}', "NUL"),
        ("duplicate key", b'{"text": "a", "text": "b"}', "duplicate"),
        ("deep nesting", b'{"text": ' + b"[" * 100 + b"]" * 100 + b"}", "nesting"),
    ]
    for what, raw, needle in e400:
        st, _, body = srv.request("POST", "/generate", raw)
        check_error(st, json.loads(body), 400, what, needle)
        st, _, body = srv.request("POST", "/tokenize", raw)
        check_error(st, json.loads(body), 400, "/tokenize " + what, needle)
    bad = [
        ({"text": 5}, "text must be a string"),
        ({"text": ["a", 5]}, "text[1] must be a string"),
        ({"text": []}, "empty array"),
        ({"text": ["a"] * 17}, "max_texts"),
        ({}, "is required"),
        ({"text": "a", "ids": [1]}, "not both"),
        ({"text": "a", "max_new_tokens": "5"}, "max_new_tokens must be an integer"),
        ({"text": "a", "max_new_tokens": 2.5}, "max_new_tokens must be an integer"),
        ({"text": "a", "max_new_tokens": 0}, "max_new_tokens must be from 1"),
        ({"text": "a", "max_new_tokens": 10 ** 9}, "max_new_tokens_limit"),
        ({"text": "a", "min_new_tokens": 30, "max_new_tokens": 20}, "min_new_tokens"),
        ({"text": "a", "stream": "yes"}, "stream must be true or false"),
        ({"text": "a", "do_sample": 1}, "do_sample must be true or false"),
        ({"text": "a", "temperature": "hot"}, "temperature must be a number"),
        ({"text": "a", "temperature": 0}, "temperature must be greater than 0"),
        ({"text": "a", "top_p": 1.5}, "top_p"),
        ({"text": "a", "top_k": -1}, "top_k"),
        ({"text": "a", "num_beams": 0}, "num_beams"),
        ({"text": "a", "num_beams": 100}, "num_beams"),
        ({"text": "a", "num_return_sequences": 2}, "num_return_sequences"),
        ({"text": "a", "repetition_penalty": 0}, "repetition_penalty"),
        ({"text": "a", "early_stopping": "sometimes"}, 'early_stopping must be true, false or "never"'),
        ({"text": "a", "early_stopping": 1}, 'early_stopping must be true, false or "never"'),
        ({"text": "a", "seed": -1}, "seed"),
        ({"text": "a", "stop": 5}, "stop must be"),
        ({"text": "a", "stop": [""]}, "stop strings"),
        ({"text": "a", "timeout_ms": 0}, "timeout_ms"),
        ({"text": "a", "stream": True, "num_beams": 2}, "stream needs"),
        ({"text": ["a", "b"], "stream": True}, "stream needs"),
        ({"ids": [1, 99999]}, "outside the vocabulary"),
        ({"ids": ["a"]}, "ids[0] must be an integer"),
        ({"ids": []}, "must not be empty"),
        ({"text": "a", "temprature": 0.5}, "unknown field 'temprature'"),
        ({"text": "a", "x" * 10000: 1}, "unknown field"),
        ({"text": "word " * 2000}, "max_input_tokens"),
    ]
    for body, needle in bad:
        st, ans = srv.post("/generate", body)
        what = "/generate " + json.dumps(body)[:60]
        check_error(st, ans, 400, what, needle)
        if ans and "error" in ans:
            check("x" * 100 not in ans["error"]["message"] and "word word" not in ans["error"]["message"],
                  what + ": message does not echo the input")
    for body, needle in (({"text": "a", "nbest": 0}, "nbest"), ({"text": "a", "nbest": 3, "alpha": 0.1}, "not both"),
                         ({"text": "a", "seed": 3}, "alpha"), ({"text": "a", "pieces": "yes"}, "pieces"),
                         ({"text": "a", "bogus": 1}, "unknown field")):
        st, ans = srv.post("/tokenize", body)
        check_error(st, ans, 400, "/tokenize " + json.dumps(body), needle)
    for body, needle in (({"ids": [8128]}, "outside the vocabulary"), ({"ids": [-1]}, "outside"),
                         ({"ids": "1 2"}, "array of integers"), ({}, "required")):
        st, ans = srv.post("/detokenize", body)
        check_error(st, ans, 400, "/detokenize " + json.dumps(body), needle)
    # 404, 405
    st, _, body = srv.request("GET", "/nope")
    check_error(st, json.loads(body), 404, "GET /nope")
    st, _, body = srv.request("POST", "/generate/x", {"text": "a"})
    check_error(st, json.loads(body), 404, "POST /generate/x")
    st, h, body = srv.request("GET", "/generate")
    check_error(st, json.loads(body), 405, "GET /generate")
    check(h.get("allow") == "POST", f"405 Allow header: {h}")
    st, h, body = srv.request("POST", "/health", {"a": 1})
    check_error(st, json.loads(body), 405, "POST /health")
    st, h, body = srv.request("DELETE", "/tokenize")
    check_error(st, json.loads(body), 405, "DELETE /tokenize")
    # 413: declared length over the limit, and a chunked body that grows over it
    big = b'{"text": "' + b"a" * (1 << 21) + b'"}'
    st, _, body = srv.request("POST", "/generate", big)
    check_error(st, json.loads(body), 413, "2 MiB body")
    c = srv.conn()
    c.putrequest("POST", "/tokenize")
    c.putheader("Transfer-Encoding", "chunked")
    c.putheader("Content-Type", "application/json")
    c.endheaders()
    try:
        for i in range(0, len(big), 65536):
            chunk = big[i:i + 65536]
            c.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        c.send(b"0\r\n\r\n")
    except OSError:
        pass  # the server may close once it has answered
    r = c.getresponse()
    check_error(r.status, json.loads(r.read()), 413, "2 MiB chunked body")
    c.close()
    # 504: a deadline shorter than the work
    long_text = max(G["cases"], key=lambda c: len(c["input_ids"]))["text"]
    st, ans = srv.post("/generate", {"text": [long_text] * 16, "min_new_tokens": 500, "max_new_tokens": 500,
                                     "timeout_ms": 30})
    check_error(st, ans, 504, "timeout_ms 30", "deadline")
    st, _, body = srv.request("GET", "/health")
    check(st == 200, "healthy after the errors")


if __name__ == "__main__":
    main()
