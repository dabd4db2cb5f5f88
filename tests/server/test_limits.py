"""test_limits.py - every configurable request limit of t5serve at its exact boundary
(suite 63-limits): the server runs with small non-default limits, and for each one a
request right at the limit is accepted while one step past it is refused with the designed
status and a message naming the limit. Limits: max_body_bytes (413), max_json_depth,
max_texts, max_input_tokens (ids and text), max_new_tokens_limit, max_num_beams,
max_nbest, stop strings (count and length), the header block (libmicrohttpd's 32 KB
connection memory: 431), and the API key (missing, wrong, a prefix, a longer key: 401;
/health and /ready stay open). Token counts come from SentencePiece (python3-sentencepiece).
Run time: about 10 s."""
import json
import os
import socket
import sys

import sentencepiece as spm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import MODEL, Server, check, check_error, finish  # noqa: E402

KEY = "k3y-limits-0123456789abcdef"
AUTH = {"Authorization": "Bearer " + KEY}
SP = spm.SentencePieceProcessor(model_file=os.path.join(MODEL, "spiece.model"))
LIM = dict(body=4096, depth=5, texts=3, tokens=20, new=10, beams=3, nbest=4)


def post(srv, path, body, headers=AUTH):
    st, h, data = srv.request("POST", path, body, headers=headers)
    try:
        return st, h, json.loads(data)
    except ValueError:
        return st, h, None


def accepted(srv, path, body, what):
    st, _, ans = post(srv, path, body)
    return check(st == 200, f"{what}: accepted at the limit ({st}, {str(ans)[:200]})")


def refused(srv, path, body, status, what, needle):
    st, _, ans = post(srv, path, body)
    return check_error(st, ans, status, what + " (one past the limit)", needle)


def body_of_size(n):
    """A valid /tokenize body of exactly n bytes."""
    head = '{"text": "'
    return (head + "a" * (n - len(head) - 2) + '"}').encode()


def text_of_tokens(n):
    """A text that SentencePiece encodes into exactly n - 1 pieces (+ </s> = n ids)."""
    words = []
    while len(SP.encode(" ".join(words))) < n - 1:
        words.append("the")
    t = " ".join(words)
    assert len(SP.encode(t)) == n - 1, (n, len(SP.encode(t)))
    return t


def main():
    srv = Server(["--max-body-bytes", str(LIM["body"]), "--max-json-depth", str(LIM["depth"]),
                  "--max-texts", str(LIM["texts"]), "--max-input-tokens", str(LIM["tokens"]),
                  "--max-new-tokens-limit", str(LIM["new"]), "--default-max-new-tokens", "5", "--max-num-beams", str(LIM["beams"]),
                  "--max-nbest", str(LIM["nbest"]), "--api-key", KEY], name="limits")
    try:
        run(srv)
    finally:
        check(srv.stop() == 0, "exits 0 on SIGTERM")
    finish("test_limits")


def run(srv):
    # body size
    accepted(srv, "/tokenize", body_of_size(LIM["body"]), "max_body_bytes")
    refused(srv, "/tokenize", body_of_size(LIM["body"] + 1), 413, "max_body_bytes", "max_body_bytes")
    # JSON depth: depth 5 parses (then fails on its type), depth 6 is refused before parsing
    nest = lambda d: '{"text": ' + "[" * (d - 1) + '"a"' + "]" * (d - 1) + "}"  # noqa: E731
    st, _, ans = post(srv, "/tokenize", nest(LIM["depth"]))
    check(st == 400 and "nesting" not in ans["error"]["message"], f"depth {LIM['depth']} is parsed: {ans}")
    refused(srv, "/tokenize", nest(LIM["depth"] + 1), 400, "max_json_depth", "nesting")
    # texts per request, on both routes that take several
    accepted(srv, "/tokenize", {"text": ["a"] * LIM["texts"]}, "max_texts /tokenize")
    refused(srv, "/tokenize", {"text": ["a"] * (LIM["texts"] + 1)}, 400, "max_texts /tokenize", "max_texts")
    accepted(srv, "/generate", {"text": ["a"] * LIM["texts"], "max_new_tokens": 2}, "max_texts /generate")
    refused(srv, "/generate", {"text": ["a"] * (LIM["texts"] + 1), "max_new_tokens": 2}, 400, "max_texts /generate",
            "max_texts")
    # input tokens: ids and text
    accepted(srv, "/generate", {"ids": [5] * (LIM["tokens"] - 1) + [1], "max_new_tokens": 2}, "max_input_tokens ids")
    refused(srv, "/generate", {"ids": [5] * LIM["tokens"] + [1], "max_new_tokens": 2}, 400, "max_input_tokens ids",
            str(LIM["tokens"]))
    accepted(srv, "/generate", {"text": text_of_tokens(LIM["tokens"]), "max_new_tokens": 2}, "max_input_tokens text")
    refused(srv, "/generate", {"text": text_of_tokens(LIM["tokens"] + 1), "max_new_tokens": 2}, 400,
            "max_input_tokens text", "max_input_tokens")
    accepted(srv, "/generate", {"text": text_of_tokens(LIM["tokens"] + 30), "truncate": LIM["tokens"] - 1,
                                "max_new_tokens": 2}, "truncate to max_input_tokens")
    # new tokens, beams, n-best
    accepted(srv, "/generate", {"text": "a", "max_new_tokens": LIM["new"]}, "max_new_tokens_limit")
    refused(srv, "/generate", {"text": "a", "max_new_tokens": LIM["new"] + 1}, 400, "max_new_tokens_limit",
            "max_new_tokens")
    accepted(srv, "/generate", {"text": "a", "num_beams": LIM["beams"], "max_new_tokens": 3}, "max_num_beams")
    refused(srv, "/generate", {"text": "a", "num_beams": LIM["beams"] + 1, "max_new_tokens": 3}, 400, "max_num_beams",
            "num_beams")
    accepted(srv, "/tokenize", {"text": "hello world", "nbest": LIM["nbest"]}, "max_nbest")
    refused(srv, "/tokenize", {"text": "hello world", "nbest": LIM["nbest"] + 1}, 400, "max_nbest", "nbest")
    refused(srv, "/tokenize", {"text": "hello world", "alpha": 0.1, "nbest_size": LIM["nbest"] + 1}, 400,
            "nbest_size over max_nbest", "nbest_size")
    # the n-best searches take at most max_input_tokens tokens of text (ids count </s>: n - 1 pieces)
    accepted(srv, "/tokenize", {"text": text_of_tokens(LIM["tokens"] + 1), "nbest": 2}, "nbest at max_input_tokens")
    refused(srv, "/tokenize", {"text": text_of_tokens(LIM["tokens"] + 2), "nbest": 2}, 400,
            "nbest over max_input_tokens", "max_input_tokens")
    refused(srv, "/tokenize", {"text": text_of_tokens(LIM["tokens"] + 2), "alpha": 0.1, "nbest_size": 2}, 400,
            "nbest_size > 1 over max_input_tokens", "max_input_tokens")
    accepted(srv, "/tokenize", {"text": text_of_tokens(LIM["tokens"] + 2)}, "plain /tokenize is not bounded by tokens")
    # stop strings: 16 of at most 256 bytes
    accepted(srv, "/generate", {"text": "a", "max_new_tokens": 3, "stop": ["x" * 256] + ["y"] * 15}, "stop strings")
    refused(srv, "/generate", {"text": "a", "max_new_tokens": 3, "stop": ["y"] * 17}, 400, "stop count", "16")
    refused(srv, "/generate", {"text": "a", "max_new_tokens": 3, "stop": ["x" * 257]}, 400, "stop length", "256")
    # header block: libmicrohttpd's connection memory (32 KB) bounds it
    for n, ok in ((8000, True), (40000, False)):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * n + b"\r\n\r\n")
        data = s.recv(200)
        s.close()
        st = int(data.split(b" ")[1]) if data.startswith(b"HTTP/1.1 ") else 0
        check(st == 200 if ok else st == 431, f"a {n}-byte header: status {st}")
    # API key: compared in constant time (server/http.c auth_ok); every wrong form is a 401
    for what, h in (("no key", {}), ("wrong key", {"Authorization": "Bearer " + "x" * len(KEY)}),
                     ("a prefix of the key", {"Authorization": "Bearer " + KEY[:-1]}),
                     ("the key and more", {"Authorization": "Bearer " + KEY + "x"}),
                     ("not Bearer", {"Authorization": "Basic " + KEY}), ("empty", {"Authorization": "Bearer "})):
        for path in ("/tokenize", "/generate", "/detokenize"):
            st, hd, ans = post(srv, path, {"text": "a"} if path != "/detokenize" else {"ids": [1]}, headers=h)
            check_error(st, ans, 401, f"{what} on {path}")
            check("www-authenticate" in hd, f"{what} on {path}: WWW-Authenticate")
            check(KEY[:8] not in json.dumps(ans), f"{what}: the key is not echoed")
    for path in ("/metrics", "/info"):
        st, _, _ = srv.request("GET", path)
        check(st == 401, f"GET {path} without the key: {st}")
        st, _, _ = srv.request("GET", path, headers=AUTH)
        check(st == 200, f"GET {path} with the key: {st}")
    for path in ("/health", "/ready"):
        st, _, _ = srv.request("GET", path)
        check(st == 200, f"GET {path} is open: {st}")
    st, _, ans = post(srv, "/tokenize", {"text": "a"}, headers={"Authorization": "bearer  " + KEY})
    check(st == 200, f"scheme is case-insensitive, spaces tolerated: {st}")


if __name__ == "__main__":
    main()
