"""test_compat.py - the OpenAI-compatible (/v1) and TGI-compatible routes over real HTTP
against a real t5serve (tests/suites/36-server-compat.sh): answer shapes (OpenAI's API
reference, TGI's router types), the errors in each API's shape with today's statuses, and
the numbers against the fixtures' transformers goldens: greedy ids, per-step
log-probabilities and top alternatives, and the presence / frequency penalties predicted
from the golden logits. Streams are parsed as SSE. Clients: tests/suites/35-clients.sh."""
import base64
import json
import math
import struct

from harness import FIXTURES, Server, check, finish, goldens, parse_sse

G = goldens()
CASES = G["cases"]


def sse(srv, path, obj, headers=None):
    c = srv.conn()
    try:
        c.request("POST", path, body=json.dumps(obj).encode(), headers={"Content-Type": "application/json", **(headers or {})})
        r = c.getresponse()
        return r.status, r.getheader("Content-Type"), r.read().decode()
    finally:
        c.close()


def v1_error(st, body, status, what, param=None, code=None):
    e = (body or {}).get("error") if isinstance(body, dict) else None
    check(st == status, f"{what}: status {st}, expected {status}: {body}")
    check(isinstance(e, dict) and set(e) == {"message", "type", "param", "code"} and isinstance(e["message"], str)
          and e["param"] == param and e["code"] == code, f"{what}: OpenAI error shape {body}")


def predicted_penalty_divergence(steps, gold, fp, pp):
    """Walks the golden greedy path: at each step the penalized argmax among the golden
    top-5 logits (exact when it stays above the 5th raw logit: penalties only lower
    scores). Returns (step, token) of the first step where it differs from the golden
    token, or None."""
    counts = {}
    for i, st in enumerate(steps):
        top = st["top"]
        pen = [(lg - counts.get(t, 0) * fp - (pp if counts.get(t, 0) else 0), t) for t, lg in top]
        best = max(pen)
        if best[0] < top[-1][1]:
            return None  # the winner may lie outside the top 5: no prediction
        if best[1] != gold[i]:
            return i, best[1]
        counts[gold[i]] = counts.get(gold[i], 0) + 1
    return None


def main():
    srv = Server(["--model-name", "tiny"])
    try:
        # ---- models ----
        st, _, d = srv.request("GET", "/v1/models")
        m = json.loads(d)
        check(st == 200 and m["object"] == "list" and len(m["data"]) == 1 and
              set(m["data"][0]) == {"id", "object", "created", "owned_by"} and m["data"][0]["id"] == "tiny" and
              m["data"][0]["object"] == "model" and m["data"][0]["owned_by"] == "t5serve" and
              isinstance(m["data"][0]["created"], int), f"/v1/models {m}")
        st, _, d = srv.request("GET", "/v1/models/tiny")
        check(st == 200 and json.loads(d) == m["data"][0], f"/v1/models/tiny {d}")
        st, _, d = srv.request("GET", "/v1/models/other")
        v1_error(st, json.loads(d), 404, "/v1/models/other", "model", "model_not_found")
        st, _, d = srv.request("POST", "/v1/models", {})
        v1_error(st, json.loads(d), 405, "POST /v1/models (http.c's error reshaped)")
        st, _, d = srv.request("GET", "/info")
        check(json.loads(d)["model"]["name"] == "tiny", "/info names the model by model_name")

        for c in CASES:
            ids, gold = c["input_ids"], c["greedy"]["ids"]
            mx = c["greedy"]["max_new_tokens"]
            # ---- completions: greedy from ids = the golden ids' text ----
            st, ref = srv.post("/detokenize", {"ids": gold})
            st, a = srv.post("/v1/completions", {"model": "tiny", "prompt": ids, "max_tokens": mx, "temperature": 0,
                                                 "logprobs": 5})
            ch = a["choices"][0]
            check(st == 200 and set(a) == {"id", "object", "created", "model", "choices", "usage"} and
                  a["id"].startswith("cmpl-") and a["object"] == "text_completion" and a["model"] == "tiny",
                  f"completion shape {a}")
            check(set(ch) == {"index", "text", "logprobs", "finish_reason"} and ch["text"] == ref["text"],
                  f"completion text {ch['text']!r} vs golden {ref['text']!r}")
            check(ch["finish_reason"] == ("stop" if gold[-1] == 1 else "length"), f"finish {ch['finish_reason']}")
            check(a["usage"] == {"prompt_tokens": len(ids), "completion_tokens": len(gold),
                                 "total_tokens": len(ids) + len(gold)}, f"usage {a['usage']}")
            lp = ch["logprobs"]
            check(len(lp["tokens"]) == len(gold) and "".join(lp["tokens"]) == ref["text"], f"logprobs tokens {lp['tokens']}")
            off = 0
            for i, st_ in enumerate(c["greedy"]["steps"][:len(gold)]):
                want = [(t, l - st_["logsumexp"]) for t, l in st_["top"]]
                check(abs(lp["token_logprobs"][i] - want[0][1]) < 2e-3, f"step {i}: {lp['token_logprobs'][i]} vs {want[0]}")
                got = sorted(lp["top_logprobs"][i].values(), reverse=True)
                # the 5 most likely (texts may coincide: then fewer keys) = the golden top 5
                for k, g in enumerate(got[:3]):
                    check(any(abs(g - w) < 2e-3 for _, w in want), f"step {i} alternative {k}: {g} not in {want}")
                check(lp["text_offset"][i] == off, f"text_offset {i}")
                off += len(lp["tokens"][i])  # characters, as OpenAI counts them
            # streamed: chunks concatenate to the text, finish then usage then [DONE]
            st, ct, body = sse(srv, "/v1/completions", {"prompt": ids, "max_tokens": mx, "temperature": 0, "stream": True,
                                                        "stream_options": {"include_usage": True}})
            ev = parse_sse(body)
            check(st == 200 and ct.startswith("text/event-stream") and ev[-1] == "[DONE]", f"stream {st} {ct} {ev[-1:]}")
            chunks = [e for e in ev[:-1] if e["choices"]]
            check("".join(e["choices"][0]["text"] for e in chunks) == ref["text"] and
                  all(e["object"] == "text_completion" and e["id"] == ev[0]["id"] for e in ev[:-1]), "stream text")
            check(chunks[-1]["choices"][0]["finish_reason"] == ch["finish_reason"] and
                  all(e["choices"][0]["finish_reason"] is None for e in chunks[:-1]), "stream finish_reason")
            check(ev[-2]["choices"] == [] and ev[-2]["usage"] == a["usage"], f"stream usage {ev[-2]}")
            # TGI: /generate {inputs} with details = the golden ids and log-probabilities
            st, t = srv.post("/generate", {"inputs": c["text"], "parameters": {"max_new_tokens": mx, "details": True,
                                                                               "decoder_input_details": True}})
            st2, own = srv.post("/generate", {"text": c["text"], "max_new_tokens": mx})
            d = t["details"]
            check(st == 200 and set(t) == {"generated_text", "details"} and t["generated_text"] == own["text"],
                  f"TGI generate {t} vs {own}")
            check(set(d) == {"finish_reason", "generated_tokens", "seed", "prefill", "tokens"} and d["seed"] is None and
                  d["finish_reason"] == ("eos_token" if own["finish_reason"] == "eos" else "length") and
                  d["generated_tokens"] == own["usage"]["output_tokens"] and len(d["prefill"]) == 1 and
                  d["prefill"][0]["logprob"] is None, f"TGI details {d}")
            check(all(set(x) == {"id", "text", "logprob", "special"} for x in d["tokens"]) and
                  "".join(x["text"] for x in d["tokens"]) == own["text"] and
                  d["tokens"][-1]["special"] == (d["tokens"][-1]["id"] == 1), "TGI tokens")
            # chat = completions on the text
            st, cc = srv.post("/v1/completions", {"prompt": c["text"], "max_tokens": mx, "temperature": 0})
            st, chat = srv.post("/v1/chat/completions", {"messages": [{"role": "user", "content": c["text"]}],
                                                         "max_completion_tokens": mx, "temperature": 0})
            check(st == 200 and chat["object"] == "chat.completion" and chat["id"].startswith("chatcmpl-") and
                  chat["choices"][0]["message"] == {"role": "assistant", "content": cc["choices"][0]["text"], "refusal": None},
                  f"chat {chat}")

        # TGI stream: token events, the last with generated_text and details; POST / both ways
        c0 = CASES[0]
        st, own = srv.post("/generate", {"text": c0["text"], "max_new_tokens": 6})
        st, ct, body = sse(srv, "/generate_stream", {"inputs": c0["text"], "parameters": {"max_new_tokens": 6}})
        ev = parse_sse(body)
        check(st == 200 and all(e["generated_text"] is None and e["details"] is None for e in ev[:-1]) and
              ev[-1]["generated_text"] == own["text"] and "".join(e["token"]["text"] for e in ev) == own["text"] and
              ev[-1]["details"]["generated_tokens"] == len(ev) and ev[-1]["details"]["finish_reason"] in ("length", "eos_token"),
              f"generate_stream {ev}")
        st, arr = srv.post("/", {"inputs": c0["text"], "parameters": {"max_new_tokens": 6}})
        check(st == 200 and arr == [{"generated_text": own["text"]}], f"POST / {arr}")
        st, ct, body = sse(srv, "/", {"inputs": c0["text"], "parameters": {"max_new_tokens": 6}, "stream": True})
        check(parse_sse(body)[-1]["generated_text"] == own["text"], "POST / stream")

        # penalties: the first divergence from the golden path, predicted from the golden logits
        predicted = 0
        for fp, pp in ((1.5, 0.0), (0.0, 1.8), (0.7, 0.9)):
            for c in CASES:
                gold, steps = c["greedy"]["ids"], c["greedy"]["steps"]
                pred = predicted_penalty_divergence(steps, gold, fp, pp)
                if pred is None:
                    continue
                i, tok = pred
                predicted += 1
                st, r = srv.post("/generate", {"ids": c["input_ids"], "max_new_tokens": i + 1, "details": True,
                                               "frequency_penalty": fp, "presence_penalty": pp})
                got = [x["id"] for x in r["tokens"]]
                check(got[:i] == gold[:i] and got[i] == tok, f"penalties {fp}/{pp}: step {i} {got} vs {gold[:i]}+[{tok}]")
        check(predicted >= 3, f"penalties: {predicted} divergences predicted from the golden logits")
        # n=2 seeded: reproducible, each choice /generate's sampling with the derived seed
        st, a = srv.post("/v1/completions", {"prompt": c0["text"], "max_tokens": 6, "n": 2, "seed": 5})
        st, b = srv.post("/v1/completions", {"prompt": c0["text"], "max_tokens": 6, "n": 2, "seed": 5})
        st, g0 = srv.post("/generate", {"text": c0["text"], "max_new_tokens": 6, "do_sample": True, "top_k": 0, "seed": 5})
        check([x["index"] for x in a["choices"]] == [0, 1] and a["choices"] == b["choices"] and
              a["choices"][0]["text"] == g0["text"], f"n=2 seeded {a['choices']} {g0}")
        # best_of at temperature 0: the beam search's best n
        st, bm = srv.post("/generate", {"text": c0["text"], "max_new_tokens": 6, "num_beams": 3, "num_return_sequences": 2})
        st, bo = srv.post("/v1/completions", {"prompt": c0["text"], "max_tokens": 6, "temperature": 0, "best_of": 3, "n": 2})
        check([x["text"] for x in bo["choices"]] == [x["text"] for x in bm["sequences"]], f"best_of beams {bo} {bm}")
        # stop strings: cut, finish_reason stop
        full = own["text"]
        if len(full) > 3:
            stop = full[2:4]
            st, s1 = srv.post("/v1/completions", {"prompt": c0["text"], "max_tokens": 6, "temperature": 0, "stop": [stop]})
            check(s1["choices"][0]["text"] == full[:full.index(stop)] and s1["choices"][0]["finish_reason"] == "stop",
                  f"stop {stop!r}: {s1['choices']}")
        # chat template: a format with the roles' contents
        tsrv = Server(["--chat-template", "{system} | {user}"], name="tpl")
        try:
            st, x = tsrv.post("/v1/chat/completions", {"messages": [{"role": "system", "content": "sum"},
                                                                    {"role": "user", "content": "abc"}],
                                                       "temperature": 0, "max_tokens": 5})
            st, y = tsrv.post("/v1/completions", {"prompt": "sum | abc", "temperature": 0, "max_tokens": 5})
            check(x["choices"][0]["message"]["content"] == y["choices"][0]["text"], f"chat_template {x} {y}")
        finally:
            check(tsrv.stop() == 0, "template server exits 0")

        # ---- errors: OpenAI's shape on /v1, TGI's on its bodies ----
        bad = [({"prompt": "a", "model": "gpt-4"}, 404, "model", "model_not_found"),
               ({"prompt": "a", "echo": True}, 400, "echo", None),
               ({"prompt": "a", "suffix": "x"}, 400, "suffix", None),
               ({"prompt": "a", "logprobs": 6}, 400, "logprobs", None),
               ({"prompt": "a", "stop": ["a", "b", "c", "d", "e"]}, 400, "stop", None),
               ({"prompt": "a", "n": 2, "best_of": 1}, 400, "best_of", None),
               ({"prompt": "a", "temperature": 3}, 400, "temperature", None),
               ({"prompt": "a", "max_tokens": 100000}, 400, "max_tokens", None),
               ({"prompt": "a", "stream": True, "best_of": 2}, 400, "best_of", None),
               ({"prompt": "a", "stream_options": {"include_usage": True}}, 400, "stream_options", None),
               ({"prompt": "a", "frobnicate": 1}, 400, "frobnicate", None),
               ({"prompt": []}, 400, "prompt", None),
               ({"prompt": [[]]}, 400, "prompt", None),
               ({"prompt": [99999999]}, 400, "prompt", None),
               ({}, 400, "prompt", None)]
        for body, status, param, code in bad:
            st, e = srv.post("/v1/completions", body)
            v1_error(st, e, status, f"completions {body}", param, code)
        st, e = srv.post("/v1/completions", "{nope")
        v1_error(st, e, 400, "completions: bad JSON")
        st, e = srv.post("/v1/completions", {"prompt": "a", "user": "u1", "max_tokens": 1})
        check(st == 200, "user is accepted and ignored")
        chat_bad = [({"messages": [{"role": "user", "content": "a"}], "tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
                    ({"messages": [{"role": "user", "content": "a"}], "response_format": {"type": "json_object"}}, "response_format"),
                    ({"messages": []}, "messages"),
                    ({"messages": [{"role": "system", "content": "a"}]}, "messages"),
                    ({"messages": [{"role": "user", "content": "a"}], "top_logprobs": 2}, "top_logprobs")]
        for body, param in chat_bad:
            st, e = srv.post("/v1/chat/completions", body)
            v1_error(st, e, 400, f"chat {body}", param)
        st, e = srv.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "a"}],
                                                  "response_format": {"type": "text"}, "max_tokens": 2})
        check(st == 200, "response_format text is accepted")
        for params, needle in (({"typical_p": 0.5}, "typical_p"), ({"watermark": True}, "watermark"),
                               ({"return_full_text": True}, "return_full_text"), ({"nope": 1}, "nope")):
            st, e = srv.post("/generate", {"inputs": "a", "parameters": params})
            check(st == 400 and isinstance(e.get("error"), str) and needle in e["error"] and
                  e.get("error_type") == "validation", f"TGI {params}: {st} {e}")
        for params in ({"typical_p": 1.0}, {"watermark": False}, {"return_full_text": False}):
            st, e = srv.post("/generate", {"inputs": "a", "parameters": {"max_new_tokens": 2, **params}})
            check(st == 200 and "generated_text" in e, f"TGI {params} accepted: {e}")
    finally:
        check(srv.stop() == 0, "server exits 0")

    # API key: 401 in OpenAI's shape on /v1 (invalid_api_key), the embeddings on st5-tiny
    ksrv = Server(["--api-key", "k1"], name="key", model=f"{FIXTURES}/models/st5-tiny")
    try:
        st, e = ksrv.post("/v1/embeddings", {"input": "a"}, headers={"Authorization": "Bearer no"})
        v1_error(st, e, 401, "wrong key", None, "invalid_api_key")
        auth = {"Authorization": "Bearer k1"}
        st, ref = ksrv.post("/embed", {"text": ["hello", "world"]}, headers=auth)
        st, a = ksrv.post("/v1/embeddings", {"input": ["hello", "world"], "model": "st5-tiny"}, headers=auth)
        check(st == 200 and a["object"] == "list" and a["model"] == "st5-tiny" and
              [x["embedding"] for x in a["data"]] == [x["embedding"] for x in ref["results"]] and
              [x["index"] for x in a["data"]] == [0, 1] and all(x["object"] == "embedding" for x in a["data"]) and
              a["usage"]["prompt_tokens"] == a["usage"]["total_tokens"] > 0, f"embeddings {str(a)[:200]}")
        st, b = ksrv.post("/v1/embeddings", {"input": "hello", "encoding_format": "base64"}, headers=auth)
        raw = base64.b64decode(b["data"][0]["embedding"])
        vals = struct.unpack(f"<{len(raw) // 4}f", raw)
        want = [struct.unpack("<f", struct.pack("<f", x))[0] for x in ref["results"][0]["embedding"]]
        check(list(vals) == want, "base64 embedding = /embed's float32 values")
        for body, param in (({"input": "a", "dimensions": 7}, "dimensions"), ({"input": "a", "encoding_format": "int8"}, "encoding_format"),
                            ({"input": []}, "input"), ({"input": [1, "a"]}, "input")):
            st, e = ksrv.post("/v1/embeddings", body, headers=auth)
            v1_error(st, e, 400, f"embeddings {body}", param)
        dim = len(ref["results"][0]["embedding"])
        st, e = ksrv.post("/v1/embeddings", {"input": "a", "dimensions": dim}, headers=auth)
        check(st == 200, "dimensions equal to the model's is accepted")
        st, e = ksrv.post("/v1/completions", {"prompt": "a"}, headers=auth)
        v1_error(st, e, 400, "completions on an encoder-only model")
    finally:
        check(ksrv.stop() == 0, "key server exits 0")
    finish("test_compat")


main()
