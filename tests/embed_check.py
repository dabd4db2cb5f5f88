#!/usr/bin/python3
"""embed_check.py - `t5 embed` against sentence-transformers' and transformers' outputs.

usage: /usr/bin/python3 tests/embed_check.py T5_BINARY FIXTURES WORK

1. t5-enc-tiny (T5EncoderModel) and t5-tiny-gated (the same encoder in a full T5 folder):
   every pooling of t5-enc-tiny.golden.json (mean, max, cls, last, mean_normalized, token
   embeddings), from text and from ids.
2. st5-tiny: the folder's pipeline (embedding), and without / with the final Normalize.
3. Folders built here from st5-tiny's encoder, their references computed from the golden
   token embeddings (transformers' encoder output) with sentence-transformers' Pooling / Dense /
   Normalize semantics (Pooling.forward, Dense.forward: act(linear(x)), F.normalize): several
   poolings concatenated, Dense with bias and each activation, two Dense layers, bfloat16
   Dense weights, ST 6's `pooling_mode` key, legacy module type names, max_seq_length.
4. bfloat16 / float16 copies of the encoder agree with the float32 goldens to their precision.
5. Malformed folders are start-up errors whose message names the problem.
Tolerance: 1e-4 max abs and cosine >= 0.99999, as the fixtures README asks.
"""
import json
import math
import os
import shutil
import struct
import subprocess
import sys

import numpy as np

T5, FIX, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
M = os.path.join(FIX, "models")
checks, worst = 0, 0.0  # comparisons made, largest error among the 1e-4 ones


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def run(model, lines, *args, expect_rc=0):
    p = subprocess.run([T5, "embed", "--model", model, *args], input="".join(l + "\n" for l in lines),
                       capture_output=True, text=True)
    if p.returncode != expect_rc:
        fail(f"t5 embed {model} {args}: exit {p.returncode} (want {expect_rc}): {p.stderr.strip()}")
    return p


def embed(model, lines, *args):
    out = run(model, lines, *args).stdout.splitlines()
    if len(out) != len(lines):
        fail(f"{model} {args}: {len(out)} output lines for {len(lines)} inputs")
    return [json.loads(o) for o in out]


def close(name, got, want, tol=1e-4, cos_min=0.99999):
    global checks
    g, w = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if g.shape != w.shape:
        fail(f"{name}: shape {g.shape}, want {w.shape}")
    err = float(np.max(np.abs(g - w))) if g.size else 0.0
    gf, wf = g.ravel(), w.ravel()
    cos = float(gf @ wf / max(np.linalg.norm(gf) * np.linalg.norm(wf), 1e-30))
    if err > tol or cos < cos_min:
        fail(f"{name}: max abs error {err:.3g} (tol {tol}), cosine {cos:.7f} (min {cos_min})")
    global worst
    checks += 1
    worst = max(worst, err) if tol == 1e-4 else worst
    return err


def ids_lines(cases):
    return [" ".join(map(str, c["input_ids"])) for c in cases]


# ---- sentence-transformers semantics (no padding: every token is attended) ----
def st_pool(tok, modes):
    tok = np.asarray(tok, dtype=np.float64)
    n = tok.shape[0]
    out = []
    for mode in ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"):
        if mode not in modes:
            continue
        if mode == "cls":
            out.append(tok[0])
        elif mode == "max":
            out.append(tok.max(0))
        elif mode == "mean":
            out.append(tok.sum(0) / n)
        elif mode == "mean_sqrt_len_tokens":
            out.append(tok.sum(0) / math.sqrt(n))
        elif mode == "weightedmean":
            w = np.arange(1, n + 1, dtype=np.float64)
            out.append((tok * w[:, None]).sum(0) / w.sum())
        else:
            out.append(tok[-1])
    return np.concatenate(out)


ACTS = {
    "Identity": lambda x: x,
    "Tanh": np.tanh,
    "ReLU": lambda x: np.maximum(x, 0),
    "Sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "GELU": lambda x: 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2))),
    "SiLU": lambda x: x / (1 + np.exp(-x)),
    "LeakyReLU": lambda x: np.where(x >= 0, x, 0.01 * x),
    "ELU": lambda x: np.where(x > 0, x, np.expm1(x)),
    "Softplus": lambda x: np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20)))),
}


def normalize(x):
    return x / max(np.linalg.norm(x), 1e-12)


# ---- safetensors read / write ----
DT = {"F32": (np.float32, 4), "F16": (np.float16, 2), "BF16": (np.uint16, 2)}


def st_read(path):
    b = open(path, "rb").read()
    hl = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + hl])
    out = {}
    for k, v in h.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        raw = np.frombuffer(b[8 + hl + s:8 + hl + e], dtype=DT[v["dtype"]][0]).reshape(v["shape"])
        out[k] = (v["dtype"], raw)
    return out


def to_bf16(a):
    u = np.asarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def from_bf16(u):
    return (u.astype(np.uint32) << 16).view(np.float32)


def st_write(path, tensors):  # name -> (dtype, array in that dtype's numpy form)
    header, blobs, off = {}, [], 0
    for k, (dt, a) in tensors.items():
        raw = np.ascontiguousarray(a).tobytes()
        header[k] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    hj = json.dumps(header).encode()
    hj += b" " * (-len(hj) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj + b"".join(blobs))


# ---- folder building ----
ENC_FILES = ("config.json", "model.safetensors", "spiece.model", "tokenizer.json", "tokenizer_config.json")


def folder(name, modules, pooling=None, sbert=None, encoder=None):
    """A sentence-transformers folder in WORK/name over t5-enc-tiny's encoder files.
    modules: list of (type, path, files) after the Transformer and Pooling; files: name -> bytes/dict."""
    d = os.path.join(WORK, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for f in ENC_FILES:
        src = os.path.join(encoder or os.path.join(M, "t5-enc-tiny"), f)
        if os.path.exists(src):
            os.symlink(os.path.abspath(src), os.path.join(d, f))
    mods = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}]
    if pooling is not None:
        mods.append({"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"})
        os.makedirs(os.path.join(d, "1_Pooling"))
        json.dump(pooling, open(os.path.join(d, "1_Pooling", "config.json"), "w"))
    for i, (typ, path, files) in enumerate(modules):
        mods.append({"idx": len(mods), "name": str(len(mods)), "path": path, "type": typ})
        if path:
            os.makedirs(os.path.join(d, path), exist_ok=True)
        for fn, content in files.items():
            p = os.path.join(d, path, fn)
            if isinstance(content, dict) and "tensors" in content:
                st_write(p, content["tensors"])
            elif isinstance(content, (dict, list)):
                json.dump(content, open(p, "w"))
            else:
                open(p, "wb").write(content)
    json.dump(mods, open(os.path.join(d, "modules.json"), "w"))
    json.dump(sbert if sbert is not None else {"max_seq_length": 512, "do_lower_case": False},
              open(os.path.join(d, "sentence_bert_config.json"), "w"))
    return d


def bools(modes):
    keys = {"cls": "pooling_mode_cls_token", "max": "pooling_mode_max_tokens", "mean": "pooling_mode_mean_tokens",
            "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
            "weightedmean": "pooling_mode_weightedmean_tokens", "lasttoken": "pooling_mode_lasttoken"}
    c = {"word_embedding_dimension": 64}
    c.update({v: k in modes for k, v in keys.items()})
    return c


def dense(rng, n_in, n_out, bias, act, dtype="F32"):
    w = rng.standard_normal((n_out, n_in)).astype(np.float32) / math.sqrt(n_in)
    b = rng.standard_normal(n_out).astype(np.float32) * 0.1
    if dtype == "BF16":
        tw = {"linear.weight": ("BF16", to_bf16(w))}
        w = from_bf16(to_bf16(w))
        if bias:
            tw["linear.bias"] = ("BF16", to_bf16(b))
            b = from_bf16(to_bf16(b))
    else:
        tw = {"linear.weight": ("F32", w)}
        if bias:
            tw["linear.bias"] = ("F32", b)
    cfg = {"in_features": n_in, "out_features": n_out, "bias": bias,
           "activation_function": f"torch.nn.modules.{'linear' if act == 'Identity' else 'activation'}.{act}"}
    files = {"config.json": cfg, "model.safetensors": {"tensors": tw}}
    return ("sentence_transformers.models.Dense", files,
            lambda x: ACTS[act](w.astype(np.float64) @ x + (b if bias else 0)))


def main():
    enc = json.load(open(os.path.join(M, "t5-enc-tiny.golden.json")))
    st5 = json.load(open(os.path.join(M, "st5-tiny.golden.json")))
    cases = enc["cases"]
    texts = [c["text"] for c in cases]

    # 1. T5EncoderModel and the full T5 folder: every pooling, text and ids
    for model in ("t5-enc-tiny", "t5-tiny-gated"):
        md = os.path.join(M, model)
        for inp, lines in (("text", texts), ("ids", ids_lines(cases))):
            for pooling, key, extra in (("mean", "mean", ()), ("max", "max", ()), ("cls", "cls", ()),
                                        ("last", "last", ()), ("mean", "mean_normalized", ("--normalize",))):
                out = embed(md, lines, "--pooling", pooling, "--input", inp, *extra)
                for c, o in zip(cases, out):
                    close(f"{model} {inp} {key} '{c['text'][:20]}'", o["embedding"], c[key])
            out = embed(md, lines, "--pooling", "none", "--input", inp)
            for c, o in zip(cases, out):
                close(f"{model} {inp} token_embeddings", o["token_embeddings"], c["token_embeddings"])
        out = embed(md, texts)  # no modules.json: mean without normalization
        for c, o in zip(cases, out):
            close(f"{model} default", o["embedding"], c["mean"])
    print(f"t5-enc-tiny, t5-tiny-gated: mean/max/cls/last/mean_normalized/none x text/ids ok ({checks} checks)")

    # 2. st5-tiny: Pooling mean -> Dense -> Normalize
    st = os.path.join(M, "st5-tiny")
    for args, key in (((), "embedding"), (("--no-normalize",), "embedding_no_normalize"),
                      (("--normalize",), "embedding_normalize"), ((), "st_encode_text")):
        out = embed(st, texts, *args)
        for c, o in zip(st5["cases"], out):
            close(f"st5-tiny {key} '{c['text'][:20]}'", o["embedding"], c[key])
            if key == "embedding":
                close("st5-tiny norm", [np.linalg.norm(o["embedding"])], [1.0])
    out = embed(st, ids_lines(st5["cases"]), "--input", "ids")
    for c, o in zip(st5["cases"], out):
        close("st5-tiny ids", o["embedding"], c["embedding"])
    print(f"st5-tiny: embedding, no_normalize, normalize, st_encode_text, ids ok ({checks} checks)")

    # 3. constructed pipelines, references from the transformers token embeddings
    rng = np.random.default_rng(14)
    tok = [c["token_embeddings"] for c in cases]
    pipelines = []
    for act in ACTS:  # one Dense with bias per activation, mean pooling
        typ, files, f = dense(rng, 64, 24, True, act)
        pipelines.append((f"act-{act}", bools({"mean"}), {"mean"}, [(typ, "2_Dense", files, f)]))
    modes = {"cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"}
    d1 = dense(rng, 64 * 6, 40, True, "Tanh")
    d2 = dense(rng, 40, 16, False, "GELU", "BF16")
    norm = ("sentence_transformers.models.Normalize", {}, normalize)
    pipelines.append(("all-poolings-2dense-bf16", bools(modes), modes,
                      [(d1[0], "2_Dense", d1[1], d1[2]), (d2[0], "3_Dense", d2[1], d2[2]),
                       (norm[0], "4_Normalize", norm[1], norm[2])]))
    for m in sorted(modes):  # ST 6's pooling_mode key wins over the booleans
        pipelines.append((f"st6-{m}", dict(bools({"cls"}), pooling_mode=m, embedding_dimension=64), {m}, []))
    d3 = dense(rng, 128, 8, True, "ReLU")
    st6_dense = ("sentence_transformers.base.modules.dense.Dense", d3[1], d3[2])
    pipelines.append(("st6-list", {"embedding_dimension": 64, "pooling_mode": ["lasttoken", "max"]}, {"lasttoken", "max"},
                      [(st6_dense[0], "2_Dense", st6_dense[1], st6_dense[2]),
                       ("sentence_transformers.base.modules.normalize.Normalize", "3_Normalize", {}, normalize)]))
    for name, pcfg, active, mods in pipelines:
        d = folder(name, [(t, p, fl) for t, p, fl, _ in mods], pooling=pcfg)
        out = embed(d, texts)
        for c, t, o in zip(cases, tok, out):
            x = st_pool(t, active)
            for _, _, _, f in mods:
                x = f(x)
            close(f"{name} '{c['text'][:20]}'", o["embedding"], x)
    print(f"constructed pipelines: {len(pipelines)} (poolings, activations, 2 Dense, bf16 Dense, ST 6 keys) ok")

    # max_seq_length: the first max - 1 tokens, then </s> (transformers' truncation)
    d = folder("trunc", [], pooling=bools({"mean"}), sbert={"max_seq_length": 6})
    out = embed(d, texts)
    trunc = [" ".join(map(str, c["input_ids"][:5] + [c["input_ids"][-1]] if len(c["input_ids"]) > 6
                       else c["input_ids"])) for c in cases]
    ref = embed(os.path.join(M, "t5-enc-tiny"), trunc, "--input", "ids")
    for o, r in zip(out, ref):
        close("max_seq_length 6", o["embedding"], r["embedding"], tol=0, cos_min=0)
    print("max_seq_length truncation ok")

    # 4. reduced-precision copies of the encoder
    w = st_read(os.path.join(M, "t5-enc-tiny", "model.safetensors"))
    for dt, tol, cmin in (("BF16", 3e-2, 0.9995), ("F16", 2e-3, 0.999999)):
        d = os.path.join(WORK, f"enc-{dt}")
        os.makedirs(d, exist_ok=True)
        for f in ENC_FILES[2:]:
            shutil.copy(os.path.join(M, "t5-enc-tiny", f), d)
        cfg = json.load(open(os.path.join(M, "t5-enc-tiny", "config.json")))
        json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
        st_write(os.path.join(d, "model.safetensors"),
                 {k: (dt, to_bf16(a) if dt == "BF16" else a.astype(np.float16)) for k, (_, a) in w.items()})
        prec = 0
        for pooling in ("mean", "max", "none"):
            out = embed(d, texts, "--pooling", pooling)
            key = "token_embeddings" if pooling == "none" else pooling
            for c, o in zip(cases, out):
                got = o["token_embeddings" if pooling == "none" else "embedding"]
                prec = max(prec, close(f"{dt} copy {pooling}", got, c[key], tol=tol, cos_min=cmin))
        print(f"{dt} copy of the encoder: max abs error {prec:.2g} against the float32 goldens")

    # 5. malformed folders: start-up errors naming the problem
    good_dense = dense(rng, 64, 8, True, "Tanh")[1]
    bad = [
        ("unknown module", [("sentence_transformers.models.LayerNorm", "2_LayerNorm", {"config.json": {}})],
         bools({"mean"}), None, "LayerNorm"),
        ("no pooling", [], None, None, "Pooling"),
        ("bad pooling_mode", [], {"pooling_mode": "median"}, None, "median"),
        ("no pooling mode", [], bools(set()), None, "no pooling mode"),
        ("pooling dim", [], dict(bools({"mean"}), word_embedding_dimension=32), None, "d_model"),
        ("dense in", [("sentence_transformers.models.Dense", "2_Dense",
                       dict(good_dense, **{"config.json": dict(good_dense["config.json"], in_features=65)}))],
         bools({"mean"}), None, "linear.weight"),
        ("dense size chain", [("sentence_transformers.models.Dense", "2_Dense", good_dense)], bools({"mean", "max"}),
         None, "takes 64 features"),
        ("dense act", [("sentence_transformers.models.Dense", "2_Dense",
                        dict(good_dense, **{"config.json": dict(good_dense["config.json"],
                                                                activation_function="my.custom.Act")}))],
         bools({"mean"}), None, "my.custom.Act"),
        ("dense no weights", [("sentence_transformers.models.Dense", "2_Dense",
                               {"config.json": good_dense["config.json"]})], bools({"mean"}), None, "2_Dense"),
        ("dense bin only", [("sentence_transformers.models.Dense", "2_Dense",
                             {"config.json": good_dense["config.json"], "pytorch_model.bin": b"PK"})],
         bools({"mean"}), None, "pytorch_model.bin"),
        ("dense missing bias", [("sentence_transformers.models.Dense", "2_Dense",
                                 {"config.json": good_dense["config.json"], "model.safetensors": {"tensors": {
                                     "linear.weight": good_dense["model.safetensors"]["tensors"]["linear.weight"]}}})],
         bools({"mean"}), None, "linear.bias"),
        ("path escape", [("sentence_transformers.models.Normalize", "../x", {})], bools({"mean"}), None,
         "relative 'path'"),
        ("lower case", [], bools({"mean"}), {"max_seq_length": 8, "do_lower_case": True}, "do_lower_case"),
        ("bad max_seq_length", [], bools({"mean"}), {"max_seq_length": "x"}, "max_seq_length"),
    ]
    for name, mods, pcfg, sbert, msg in bad:
        d = folder("bad", mods, pooling=pcfg, sbert=sbert)
        p = run(d, ["x"], expect_rc=1)
        if os.environ.get("VERBOSE"):
            print(f"  {name}: {p.stderr.strip()}")
        if msg not in p.stderr or p.stdout:
            fail(f"malformed folder '{name}': want '{msg}' in the error, got: {p.stderr.strip()!r}")
    d = folder("bad", [], pooling=bools({"mean"}))
    for content in (b"{not json", b'{"a": 1}', b"[1, 2]"):
        open(os.path.join(d, "modules.json"), "wb").write(content)
        p = run(d, ["x"], expect_rc=1)
        if "modules.json" not in p.stderr:
            fail(f"modules.json {content!r}: {p.stderr.strip()!r}")
    # the Transformer must be at the root
    json.dump([{"idx": 0, "name": "0", "path": "0_Transformer", "type": "sentence_transformers.models.Transformer"}],
              open(os.path.join(d, "modules.json"), "w"))
    if "0_Transformer" not in run(d, ["x"], expect_rc=1).stderr:
        fail("Transformer outside the root")
    # pooling a Dense-bearing folder cannot take: usage error before any input
    p = run(st, ["x"], "--pooling", "none", expect_rc=0)
    p = subprocess.run([T5, "embed", "--model", st, "--pooling", "bogus"], capture_output=True, text=True)
    if p.returncode != 2 or "bogus" not in p.stderr:
        fail("unknown --pooling")
    # bad input lines: an error object, the others still answered, exit 1
    p = run(os.path.join(M, "t5-enc-tiny"), ["5 1", "99999999", "x y", "7 1"], "--input", "ids", expect_rc=1)
    outs = [json.loads(l) for l in p.stdout.splitlines()]
    if len(outs) != 4 or "error" not in outs[1] or "error" not in outs[2] or "embedding" not in outs[3]:
        fail(f"bad id lines: {p.stdout[:300]}")
    # an encoder-only model cannot generate
    p = subprocess.run([T5, "generate", "--model", os.path.join(M, "t5-enc-tiny"), "--input", "ids"], input="5 1\n",
                       capture_output=True, text=True)
    if p.returncode == 0 or "no decoder" not in p.stderr:
        fail(f"generate on an encoder-only model: {p.returncode} {p.stderr.strip()!r}")
    print(f"malformed folders and inputs: {len(bad) + 4} errors with messages ok")
    print(f"embed: all {checks} comparisons passed; largest error against a reference {worst:.2g}")


main()
