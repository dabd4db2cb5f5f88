"""test_http_strict.py - HTTP message strictness of the real t5serve, through raw sockets
(suite 64-http-strict; issue 17's HTTP findings): request smuggling (two Content-Length,
Content-Length with Transfer-Encoding) -> 400 and close; a Transfer-Encoding other than
one `chunked` -> 501 at once; HTTP/1.1 without Host, a NUL in a header -> 400;
percent-escapes in the path (`%68ealth`, `/health%00junk`) -> 400, never routed; an
oversized chunked body -> 413 as soon as the limit is crossed. Reference: RFC 9112
(sections 3.2, 6.1, 6.3) and what nginx answers. Every case ends with the server still
answering a plain request.
Idle connections: with 1,030 idle sockets open (default max_connections, and at
--max-connections 8) a new GET /health is answered within 1 s (the oldest idle connection
is closed for it); with every connection busy mid-request, a new one gets 503 at once.
Run time: about 15 s."""
import json
import os
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, check, finish  # noqa: E402


def raw(port, data, timeout=3.0, keep_sending=None):
    """Sends data on a fresh connection; returns (bytes received until close or timeout,
    seconds to the first byte, closed by the server?). keep_sending: bytes sent again and
    again (a body that never ends) until the answer comes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    t0 = time.time()
    s.sendall(data)
    got, first, closed = b"", None, False
    s.settimeout(0.05 if keep_sending else timeout)
    while time.time() - t0 < timeout:
        if keep_sending:
            try:
                s.send(keep_sending)
            except OSError:
                pass
        try:
            b = s.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            closed = True
            break
        if not b:
            closed = True
            break
        if first is None:
            first = time.time() - t0
        got += b
        if not keep_sending and b"\r\n\r\n" in got and not closed:
            # the whole answer (Content-Length) is in: does the server close?
            head, _, body = got.partition(b"\r\n\r\n")
            n = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
            if n and len(body) >= n[0]:
                s.settimeout(1.0)
                try:
                    closed = s.recv(1) == b""
                except socket.timeout:
                    closed = False
                except OSError:
                    closed = True
                break
    s.close()
    return got, first, closed


def status_of(got):
    try:
        return int(got.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def body_of(got):
    try:
        return json.loads(got.partition(b"\r\n\r\n")[2])
    except ValueError:
        return None


def expect(srv, what, data, status, must_close=True, max_s=1.0):
    got, first, closed = raw(srv.port, data)
    st = status_of(got)
    ok = check(st == status, f"{what}: status {st}, expected {status} ({got[:200]!r})")
    if st and st >= 400:
        b = body_of(got)
        e = b.get("error") if isinstance(b, dict) else None
        check(isinstance(e, dict) and e.get("code") == status and e.get("message"), f"{what}: error body {got[-200:]!r}")
    check(first is not None and first < max_s, f"{what}: answered within {max_s} s ({first})")
    if must_close:
        check(closed, f"{what}: the connection is closed after the answer")
    check(b"\r\n\r\n" not in got.partition(b"\r\n\r\n")[2] or b"HTTP/1.1" not in got[12:],
          f"{what}: a single answer (no smuggled second request): {got[:400]!r}")
    return ok


def alive(srv, what):
    st, _, _ = srv.request("GET", "/health", timeout=5)
    check(st == 200, f"{what}: /health still answers ({st})")


GEN = b'{"text":"hello"}'


def timed_health(port, what):
    t0 = time.time()
    got, first, _ = raw(port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=5)
    dt = time.time() - t0
    check(status_of(got) == 200 and dt < 1.0, f"{what}: GET /health {status_of(got)} in {dt:.2f} s")


def idle_lockout():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    for args in [[], ["--max-connections", "8"]]:
        srv = Server(args + ["--http-threads", "1"], name="idle")
        what = "default max_connections" if not args else "max_connections 8"
        try:
            idle = []
            for _ in range(1030):
                idle.append(socket.create_connection(("127.0.0.1", srv.port), timeout=5))
            time.sleep(0.3)
            for i in range(3):
                timed_health(srv.port, f"{what}, 1030 idle sockets ({i})")
            # a keep-alive client that stays in use is not the one closed: it sends again
            for s in idle:
                s.close()
            if args:
                # every connection busy mid-request (headers in, body pending): a new one gets 503 at once
                busy = []
                for _ in range(8):
                    b = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
                    b.sendall(b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                              b"Content-Length: 100\r\n\r\n{")
                    busy.append(b)
                time.sleep(0.3)
                t0 = time.time()
                got, _, _ = raw(srv.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", timeout=3)
                dt = time.time() - t0
                check(status_of(got) == 503 and dt < 1.0, f"{what}, all busy: 503 at once ({got[:60]!r}, {dt:.2f} s)")
                for b in busy:
                    b.close()
                time.sleep(0.3)
            timed_health(srv.port, f"{what}, afterwards")
        finally:
            check(srv.stop() == 0, f"{what}: clean exit")


def main():
    idle_lockout()
    srv = Server(["--max-body-bytes", "65536"])
    try:
        # 1. smuggling: two Content-Length; Content-Length with chunked
        smuggled = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
        expect(srv, "two Content-Length",
               b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
               + str(len(GEN)).encode() + b"\r\nContent-Length: " + str(len(GEN) + len(smuggled)).encode()
               + b"\r\n\r\n" + GEN + smuggled, 400)
        chunk = b"%x\r\n%s\r\n0\r\n\r\n" % (len(GEN), GEN)
        expect(srv, "Content-Length with chunked",
               b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
               + str(len(chunk)).encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk + smuggled, 400)
        # 2. Transfer-Encoding other than one chunked: 501 at once
        for what, te in [("gzip", b"Transfer-Encoding: gzip\r\n"),
                         ("gzip, chunked", b"Transfer-Encoding: gzip, chunked\r\n"),
                         ("two TE headers", b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n")]:
            expect(srv, f"Transfer-Encoding {what}",
                   b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + te + b"\r\n" + chunk,
                   501)
        # chunked alone still works
        got, _, _ = raw(srv.port, b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunk)
        check(status_of(got) == 200 and "ids" in (body_of(got) or {}), f"plain chunked body: 200 ({got[:200]!r})")
        # 3. Host and NUL
        expect(srv, "HTTP/1.1 without Host", b"GET /health HTTP/1.1\r\n\r\n", 400)
        expect(srv, "two Host headers", b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400)
        got, _, _ = raw(srv.port, b"GET /health HTTP/1.0\r\n\r\n")
        check(status_of(got) == 200, f"HTTP/1.0 without Host: 200 ({got[:100]!r})")
        expect(srv, "NUL in a header value", b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400)
        expect(srv, "NUL in the last header value", b"GET /health HTTP/1.1\r\nHost: x\x00y\r\n\r\n", 400)
        expect(srv, "NUL in a bare-LF header", b"GET /health HTTP/1.1\nHost: x\nX-A: a\x00b\nX-B: c\n\n", 400)
        for what, req in [("bare LF lines", b"GET /health HTTP/1.1\nHost: x\nX-A: a\nX-B: b\nConnection: close\n\n"),
                          ("trailing spaces, empty value, cookie",
                           b"GET /health HTTP/1.1\r\nHost: x  \r\nX-E:\r\nCookie: a=1; b=2\r\nX-A: v \t\r\n"
                           b"Connection: close\r\n\r\n")]:
            got, _, _ = raw(srv.port, req)
            check(status_of(got) == 200, f"{what}: 200 ({got[:100]!r})")
        # 4. percent-escapes in the path are refused, never routed on the decoded path
        for path in [b"/health%00junk", b"/metrics%00", b"/%68ealth", b"/health%2", b"/health%zz", b"/generat%65"]:
            expect(srv, f"path {path.decode()}", b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n", 400)
        got, _, _ = raw(srv.port, b"GET /health?probe=%00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        check(status_of(got) == 200, f"an escape in the query only: 200 ({got[:100]!r})")
        alive(srv, "after the malformed requests")
        # 5. an endless chunked body: 413 once max_body_bytes (64 KiB here) is crossed
        got, first, closed = raw(srv.port, b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\n", timeout=5,
                                 keep_sending=b"a" * 16384)
        check(status_of(got) == 413, f"endless chunked body: 413 ({got[:200]!r})")
        check(first is not None and first < 2, f"endless chunked body: answered within 2 s ({first})")
        check(closed, "endless chunked body: connection closed")
        alive(srv, "after the endless chunked body")
    finally:
        check(srv.stop() == 0, "clean exit")
    finish("test_http_strict")


main()
