#!/usr/bin/python3
"""test_convert.py - `t5 convert` (C, no torch) against torch itself (suite 22-convert).
Inputs are written by Debian's python3-torch (torch.save); outputs are read back with a strict
safetensors reader (the reference implementation's rules: no overlap, no hole, no tail).
 1. The t5-tiny-pegasus fixture's tensors saved by torch.save with aliased
    encoder/decoder.embed_tokens.weight, converted: the same names, dtypes, shapes and bytes
    as the fixture's model.safetensors (written by Hugging Face's safetensors); the aliases
    are left out; the tokenizer and config files are copied; a second run refuses to
    overwrite, --force replaces; `t5 generate` answers as the fixture does.
 2. A synthetic state dict (float32, float16, bfloat16, transposed, offset views, 0-d, empty)
    round-trips exactly, each tensor aligned, the header padded to 8 bytes; --dtype bf16 /
    f16 / f32 equal torch's own conversions (t.to(dtype)) bit for bit, special values
    included (NaN stays NaN); float64 / int64 / bool storages are refused naming the dtype.
 3. A sharded checkpoint (pytorch_model.bin.index.json) gives one file, or shards +
    model.safetensors.index.json under --max-shard-size, covering every tensor.
 4. A sentence-transformers folder: 2_Dense/pytorch_model.bin converted too, modules copied.
 5. Bad inputs fail with one clear line."""
import json
import os
import shutil
import struct
import subprocess
import sys
from collections import OrderedDict

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "server"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, FIXTURES, WORK, check, finish  # noqa: E402

import mk_torch_files  # noqa: E402
import torch  # noqa: E402

T5 = os.path.join(BUILD, "t5")
SIZE = {"F32": 4, "F16": 2, "BF16": 2}


def convert(*args):
    return subprocess.run([T5, "convert", *args], capture_output=True, text=True)


def strict_read(path, ours=True):
    """{name: (dtype, shape, bytes)} of a safetensors file; raises on any rule broken (ours:
    also the metadata t5 convert writes)."""
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    assert n % 8 == 0, "header not padded to 8"
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", None)
    assert meta == {"format": "pt"} or not ours
    data, out, spans = blob[8 + n:], {}, []
    for name, info in header.items():
        b, e = info["data_offsets"]
        count = 1
        for d in info["shape"]:
            count *= d
        assert 0 <= b <= e <= len(data) and e - b == count * SIZE[info["dtype"]], name
        assert (8 + n + b) % SIZE[info["dtype"]] == 0, name + " misaligned"
        spans.append((b, e))
        out[name] = (info["dtype"], tuple(info["shape"]), data[b:e])
    pos = 0
    for b, e in sorted(spans):
        assert b == pos, "hole or overlap"
        pos = e
    assert pos == len(data), "trailing bytes"
    return out


def raw(t):
    c = t.contiguous()
    return (c.view(torch.int16) if c.dtype == torch.bfloat16 else c).numpy().tobytes()


def fixture_roundtrip():
    fx = os.path.join(FIXTURES, "models", "t5-tiny-pegasus")
    ref = strict_read(os.path.join(fx, "model.safetensors"), ours=False)
    sd = mk_torch_files.read_safetensors(os.path.join(fx, "model.safetensors"))
    sd["encoder.embed_tokens.weight"] = sd["shared.weight"]
    sd["decoder.embed_tokens.weight"] = sd["shared.weight"][:]  # a view of the same storage
    m = os.path.join(WORK, "pegasus")
    os.makedirs(m)
    for f in ("config.json", "vocab.txt"):
        shutil.copy(os.path.join(fx, f), m)
    torch.save(sd, os.path.join(m, "pytorch_model.bin"))
    out = os.path.join(WORK, "pegasus-st")
    r = convert("--model", m, "--out", out)
    check(r.returncode == 0 and "left out" in r.stdout, f"fixture: convert {r.stdout} {r.stderr}")
    got = strict_read(os.path.join(out, "model.safetensors"))
    check(set(got) == set(ref), f"fixture: names {set(got) ^ set(ref)}")
    check(all(got.get(k) == v for k, v in ref.items()), "fixture: dtypes, shapes and bytes equal the reference")
    check(sorted(os.listdir(out)) == ["config.json", "model.safetensors", "vocab.txt"], f"fixture: {os.listdir(out)}")
    check(open(os.path.join(out, "vocab.txt"), "rb").read() == open(os.path.join(fx, "vocab.txt"), "rb").read(),
          "fixture: vocab.txt copied")
    r = convert("--model", m, "--out", out)
    check(r.returncode == 1 and "already holds model.safetensors" in r.stderr, f"second run refuses {r.stderr}")
    r = convert("--model", m, "--out", out, "--force")
    check(r.returncode == 0 and strict_read(os.path.join(out, "model.safetensors")) == got, "--force replaces")
    g = [subprocess.run([T5, "generate", "--model", d, "--format", "json", "--num-beams", "3"], input="你好世界\n",
                        capture_output=True, text=True).stdout for d in (fx, out)]
    check(g[0] and g[0] == g[1], "fixture: generate answers as the fixture")
    r = convert("--model", m, "--out", m)  # in place, beside the .bin
    check(r.returncode == 0 and strict_read(os.path.join(m, "model.safetensors")) == got, "in place")


def synthetic():
    g = torch.Generator().manual_seed(8)
    flat = torch.randn(40, generator=g)
    special = torch.tensor([0.0, -0.0, 1.0, float("inf"), float("-inf"), float("nan"), 1e-40, -3e-42, 65504.0,
                            65520.0, 1e5, 1.00048828125, 1.0009765625 + 2 ** -11, 3.0e-8, 6.0e-8, 2.0 ** -24,
                            1.0 + 2.0 ** -8, 1.0 + 3 * 2.0 ** -8, 3.4e38, -1.5e-5])
    syn = OrderedDict([
        ("a.f16", torch.randn(3, 5, generator=g).half()),
        ("b.bf16", torch.randn(7, generator=g).bfloat16()),
        ("f.transposed", torch.randn(4, 6, generator=g).t()),
        ("g.scalar", torch.tensor(3.5)),
        ("h.empty", torch.zeros(0, 4)),
        ("i.f32", torch.randn(5, 3, generator=g)),
        ("j.offset", flat[7:19].reshape(3, 4)),
        ("k.strided", flat[::3]),
        ("l.special", special),
        ("m.3d", torch.randn(2, 3, 4, generator=g).permute(2, 0, 1)),
    ])
    d = os.path.join(WORK, "syn")
    os.makedirs(d)
    torch.save(syn, os.path.join(d, "pytorch_model.bin"))
    for dt, tdt in ((None, None), ("bf16", torch.bfloat16), ("f16", torch.float16), ("f32", torch.float32)):
        out = os.path.join(WORK, "syn-" + (dt or "as-stored"))
        r = convert("--model", d, "--out", out, *(["--dtype", dt] if dt else []))
        check(r.returncode == 0, f"synthetic {dt}: {r.stderr}")
        got = strict_read(os.path.join(out, "model.safetensors"))
        check(set(got) == set(syn), f"synthetic {dt}: names")
        for k, t in syn.items():
            want = t if tdt is None else t.to(tdt)
            gd, gs, gb = got[k]
            ok = gs == tuple(t.shape) and mk_torch_files.ST_DT[gd] == want.dtype
            if ok and gb != raw(want):  # NaN payloads may differ: NaN-ness must not
                back = mk_torch_files.read_safetensors(os.path.join(out, "model.safetensors"))[k]
                ok = torch.equal(back.isnan(), want.isnan()) and torch.equal(
                    torch.nan_to_num(back.float(), 7.0), torch.nan_to_num(want.float(), 7.0))
            check(ok, f"synthetic {dt}: {k} equals torch's {want.dtype} values")
    for dt, want in ((torch.float64, "float64"), (torch.int64, "int64"), (torch.bool, "bool")):
        bad = os.path.join(WORK, "syn-" + want)
        os.makedirs(bad)
        torch.save({"x": torch.ones(2, dtype=dt), "y": torch.ones(2)}, os.path.join(bad, "pytorch_model.bin"))
        r = convert("--model", bad, "--out", bad + "-out")
        check(r.returncode == 1 and f"({want})" in r.stderr and r.stderr.count("\n") == 1,
              f"{want}: refused naming the dtype: {r.stderr!r}")


def sharded():
    fx = os.path.join(FIXTURES, "models", "t5-tiny-gated")
    src = os.path.join(WORK, "gated-v")
    mk_torch_files.main(fx, src)
    ref = strict_read(os.path.join(fx, "model.safetensors"), ours=False)
    for tag, args, files in (("merged", [], 1), ("re-sharded", ["--max-shard-size", "300KB"], None)):
        out = os.path.join(WORK, "gated-" + tag)
        r = convert("--model", os.path.join(src, "sharded"), "--out", out, *args)
        check(r.returncode == 0, f"{tag}: {r.stderr}")
        st = sorted(f for f in os.listdir(out) if f.endswith(".safetensors"))
        if files == 1:
            check(st == ["model.safetensors"], f"{tag}: {st}")
            got = strict_read(os.path.join(out, "model.safetensors"))
        else:
            idx = json.load(open(os.path.join(out, "model.safetensors.index.json")))
            check(len(st) > 2 and sorted(set(idx["weight_map"].values())) == st, f"{tag}: shards {st}")
            got = {}
            for f in st:
                part = strict_read(os.path.join(out, f))
                check(sum(len(v[2]) for v in part.values()) <= 300000 or len(part) == 1,
                      f"{tag}: {f} within the bound, or one tensor larger than it")
                check(all(idx["weight_map"][k] == f for k in part), f"{tag}: {f} in the weight map")
                got.update(part)
            check(idx["metadata"]["total_size"] == sum(len(v[2]) for v in got.values()), f"{tag}: total_size")
        check(got == ref, f"{tag}: every tensor equals the fixture's")
        g = [subprocess.run([T5, "generate", "--model", d, "--format", "json"], input="Hello world\n",
                            capture_output=True, text=True).stdout for d in (fx, out)]
        check(g[0] and g[0] == g[1], f"{tag}: generate answers as the fixture")


def sentence_transformers():
    fx = os.path.join(FIXTURES, "models", "st5-tiny")
    d = os.path.join(WORK, "st5")
    shutil.copytree(fx, d)
    os.unlink(os.path.join(d, "model.safetensors"))
    torch.save(mk_torch_files.read_safetensors(os.path.join(fx, "model.safetensors")),
               os.path.join(d, "pytorch_model.bin"))
    dense = [s for s in os.listdir(d) if s.endswith("_Dense")]
    for s in dense:
        p = os.path.join(d, s)
        if os.path.exists(os.path.join(p, "model.safetensors")):
            torch.save(mk_torch_files.read_safetensors(os.path.join(p, "model.safetensors")),
                       os.path.join(p, "pytorch_model.bin"))
            os.unlink(os.path.join(p, "model.safetensors"))
    out = os.path.join(WORK, "st5-out")
    r = convert("--model", d, "--out", out)
    check(r.returncode == 0, f"st5: {r.stderr}")
    check(strict_read(os.path.join(out, "model.safetensors")) ==
          strict_read(os.path.join(fx, "model.safetensors"), ours=False),
          "st5: weights equal the fixture's")
    for root, _, files in os.walk(fx):
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), fx)
            o = os.path.join(out, rel)
            if f.endswith(".safetensors"):
                check(os.path.exists(o) and strict_read(o) == strict_read(os.path.join(root, f), ours=False),
                      f"st5: {rel} converted back from its pytorch_model.bin")
            else:
                check(os.path.exists(o) and open(o, "rb").read() == open(os.path.join(root, f), "rb").read(),
                      f"st5: {rel} copied")


def bad_inputs():
    bad = os.path.join(WORK, "bad")
    os.makedirs(bad)
    open(os.path.join(bad, "pytorch_model.bin"), "wb").write(b"not a checkpoint" * 100)
    r = convert("--model", bad, "--out", bad + "-out")
    check(r.returncode == 1 and "not a torch checkpoint" in r.stderr and r.stderr.count("\n") == 1, f"garbage {r}")
    r = convert("--model", os.path.join(WORK, "nowhere"), "--out", bad + "-out")
    check(r.returncode == 1 and "not a folder" in r.stderr, f"no folder {r}")
    os.unlink(os.path.join(bad, "pytorch_model.bin"))
    r = convert("--model", bad, "--out", bad + "-out")
    check(r.returncode == 1 and "pytorch_model.bin.index.json" in r.stderr, f"no weights {r}")
    for args in ([], ["--model", bad], ["--model", bad, "--out", bad, "--dtype", "int8"],
                 ["--model", bad, "--out", bad, "--max-shard-size", "lots"]):
        r = convert(*args)
        check(r.returncode == 2, f"usage error {args}: {r.returncode}")


if __name__ == "__main__":
    fixture_roundtrip()
    synthetic()
    sharded()
    sentence_transformers()
    bad_inputs()
    finish("22-convert")
