#!/bin/bash
# tools/convert_bin_to_safetensors.py (pytorch_model.bin -> model.safetensors) with Debian's
# python3-torch: (1) the t5-tiny-pegasus fixture's tensors (read from its model.safetensors,
# written by Hugging Face's safetensors) saved by torch.save with an aliased
# encoder/decoder.embed_tokens.weight, converted back: the same names, dtypes, shapes and bytes
# as the reference file; (2) a synthetic state dict (float16, bfloat16, float64, int64, bool,
# non-contiguous, 0-d and empty tensors) round-trips exactly; (3) a sharded checkpoint gives
# shards + model.safetensors.index.json; (4) bad inputs fail with one clear line.
# Run time: about 20 s on an idle 2-core machine (each torch import is ~2 s), 70 s under load.
set -eu
PY=/usr/bin/python3
"$PY" -c "import torch" 2>/dev/null || { echo "python3-torch is missing (scripts/install-deps.sh installs it)"; exit 1; }
TOOL=$PWD/tools/convert_bin_to_safetensors.py
export TOOL FIXTURES WORK
"$PY" - <<'PYEOF'
import importlib.util, json, os, shutil, subprocess, sys
import torch
spec = importlib.util.spec_from_file_location("conv", os.environ["TOOL"])
conv = importlib.util.module_from_spec(spec); spec.loader.exec_module(conv)
fx, work, tool = os.environ["FIXTURES"], os.environ["WORK"], os.environ["TOOL"]
TD = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
      "I64": torch.int64, "BOOL": torch.bool}

def run(*args):
    return subprocess.run(["/usr/bin/python3", tool, *args], capture_output=True, text=True)

# (1) the fixture model through torch.save and back
ref = conv.read_safetensors(os.path.join(fx, "models/t5-tiny-pegasus/model.safetensors"))
sd = {}
for name, (dt, shape, raw) in ref.items():
    t = torch.frombuffer(bytearray(raw), dtype=TD[dt]).reshape(shape) if raw else torch.empty(shape, dtype=TD[dt])
    sd[name] = t
sd["encoder.embed_tokens.weight"] = sd["shared.weight"]
sd["decoder.embed_tokens.weight"] = sd["shared.weight"][:]  # a view of the same storage
m = os.path.join(work, "pegasus"); os.makedirs(m)
for f in ("config.json", "vocab.txt"):
    shutil.copy(os.path.join(fx, "models/t5-tiny-pegasus", f), m)
torch.save(sd, os.path.join(m, "pytorch_model.bin"))
r = run(m)
assert r.returncode == 0, r.stderr
print(r.stdout.strip())
got = conv.read_safetensors(os.path.join(m, "model.safetensors"))
assert set(got) == set(ref), (set(got) ^ set(ref))
for k in ref:
    assert got[k] == ref[k], k
print("fixture t5-tiny-pegasus: %d tensors, %d bytes identical to the reference safetensors"
      % (len(ref), sum(len(v[2]) for v in ref.values())))
r = run(m)
assert r.returncode == 1 and "exists" in r.stderr, r

# (2) dtypes and layouts
g = torch.Generator().manual_seed(8)
syn = {
    "a.f16": torch.randn(3, 5, generator=g).half(),
    "b.bf16": torch.randn(7, generator=g).bfloat16(),
    "c.f64": torch.randn(2, 2, 2, generator=g).double(),
    "d.i64": torch.arange(-5, 6),
    "e.bool": torch.tensor([True, False, True]),
    "f.transposed": torch.randn(4, 6, generator=g).t(),
    "g.scalar": torch.tensor(3.5),
    "h.empty": torch.zeros(0, 4),
    "i.f32": torch.randn(5, 3, generator=g),
}
p = os.path.join(work, "syn.bin"); torch.save(syn, p)
out = os.path.join(work, "syn.safetensors")
r = run(p, out)
assert r.returncode == 0, r.stderr
got = conv.read_safetensors(out)
assert set(got) == set(syn)
for k, t in syn.items():
    dt, shape, raw = got[k]
    assert shape == tuple(t.shape) and TD[dt] == t.dtype, k
    back = torch.frombuffer(bytearray(raw), dtype=t.dtype).reshape(shape) if raw else torch.empty(shape, dtype=t.dtype)
    assert torch.equal(back, t), k
with open(out, "rb") as f:
    n = int.from_bytes(f.read(8), "little")
    hdr = json.loads(f.read(n))
for k, v in hdr.items():
    if k != "__metadata__":
        assert (8 + n + v["data_offsets"][0]) % conv.ITEMSIZE[v["dtype"]] == 0, k  # aligned
assert n % 8 == 0 and hdr["__metadata__"] == {"format": "pt"}
print("synthetic: %d tensors of 6 dtypes round-trip exactly, aligned" % len(syn))

# (3) sharded
s = os.path.join(work, "sharded"); os.makedirs(s)
names = sorted(syn)
torch.save({k: syn[k] for k in names[:4]}, os.path.join(s, "pytorch_model-00001-of-00002.bin"))
torch.save({k: syn[k] for k in names[4:]}, os.path.join(s, "pytorch_model-00002-of-00002.bin"))
json.dump({"metadata": {}, "weight_map": {k: "pytorch_model-0000%d-of-00002.bin" % (1 if i < 4 else 2)
           for i, k in enumerate(names)}}, open(os.path.join(s, "pytorch_model.bin.index.json"), "w"))
r = run(s)
assert r.returncode == 0, r.stderr
idx = json.load(open(os.path.join(s, "model.safetensors.index.json")))
assert set(idx["weight_map"]) == set(syn)
for k, shard in idx["weight_map"].items():
    assert conv.read_safetensors(os.path.join(s, shard))[k][1] == tuple(syn[k].shape)
print("sharded: 2 shards + index")

# (4) bad inputs
bad = os.path.join(work, "bad"); os.makedirs(bad)
open(os.path.join(bad, "pytorch_model.bin"), "wb").write(b"not a checkpoint" * 100)
r = run(bad)
assert r.returncode == 1 and "cannot read the checkpoint" in r.stderr and "Traceback" not in r.stderr, r
r = run(os.path.join(work, "nowhere"))
assert r.returncode == 1 and "Traceback" not in r.stderr, r
print("bad inputs: clear errors")
PYEOF
