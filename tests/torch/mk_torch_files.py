#!/usr/bin/python3
"""mk_torch_files.py - writes torch checkpoints of a fixture model with Debian's python3-torch
(torch.save itself, the reference writer), in every layout the loader must read, beside
safetensors references of the same values:

  OUT/zip          pytorch_model.bin, torch's zip format, tensors as stored in the fixture
  OUT/legacy       the same, _use_new_zipfile_serialization=False (a sequence of pickles)
  OUT/sharded      pytorch_model-0000i-of-00003.bin + pytorch_model.bin.index.json (zip)
  OUT/legacy-sharded  the same in the legacy format
  OUT/views        zip; shared.weight also saved as encoder/decoder.embed_tokens.weight (one
                   storage, as transformers does), every 1-D tensor a view at an offset into
                   one flat storage, and the 2-D weights of layer 0 stored transposed
                   (non-row-major strides: w.t().contiguous().t())
  OUT/views-legacy the views layout in the legacy format
  OUT/f16, OUT/bf16           zip with every tensor converted to float16 / bfloat16
  OUT/f16-st, OUT/bf16-st     the same values as model.safetensors (the reference side)
  OUT/f32-st       float32 values of the fixture as model.safetensors (the reference for the
                   float32 torch variants when the fixture is stored in float16)

Each folder gets the fixture's config.json and tokenizer files. Writes OUT/variants.json:
{variant: reference folder}.
usage: /usr/bin/python3 tests/torch/mk_torch_files.py FIXTURE_MODEL_DIR OUT_DIR"""
import json
import os
import shutil
import struct
import sys
import zlib
from collections import OrderedDict

import torch

ST_DT = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
DT_ST = {v: k for k, v in ST_DT.items()}
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def read_safetensors(path):
    """OrderedDict name -> tensor (a strict reader of the format)."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    header.pop("__metadata__", None)
    data = blob[8 + n:]
    out = OrderedDict()
    for name, info in header.items():
        b, e = info["data_offsets"]
        dt = ST_DT[info["dtype"]]
        t = torch.frombuffer(bytearray(data[b:e]), dtype=dt) if e > b else torch.empty(0, dtype=dt)
        out[name] = t.reshape(info["shape"])
    return out


def write_safetensors(path, sd):
    """sd: name -> tensor (float32/16, bfloat16), written row-major, largest elements first."""
    order = sorted(sd.items(), key=lambda kv: (-kv[1].element_size(), kv[0]))
    header, off, blobs = {}, 0, []
    for name, t in order:
        c = t.detach().contiguous()
        raw = (c.view(torch.int16) if c.dtype == torch.bfloat16 else c).numpy().tobytes()
        header[name] = {"dtype": DT_ST[c.dtype], "shape": list(c.shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        blobs.append(raw)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def folder(out, name, fixture):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(fixture):
        p = os.path.join(fixture, f)
        if f not in WEIGHT_FILES:
            (shutil.copytree if os.path.isdir(p) else shutil.copy)(p, os.path.join(d, f))
    return d


def save(sd, path, legacy):
    torch.save(sd, path, _use_new_zipfile_serialization=not legacy)


def sharded(sd, d, legacy, n=3):
    names = list(sd)
    per = (len(names) + n - 1) // n
    wm = {}
    for i in range(n):
        part = OrderedDict((k, sd[k]) for k in names[i * per:(i + 1) * per])
        fn = "pytorch_model-%05d-of-%05d.bin" % (i + 1, n)
        save(part, os.path.join(d, fn), legacy)
        wm.update({k: fn for k in part})
    with open(os.path.join(d, "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": sum(t.numel() * t.element_size() for t in sd.values())},
                   "weight_map": wm}, f, indent=2)


def views(sd):
    """The same values through shared storages, offsets and strides."""
    out = OrderedDict()
    ones = [k for k, t in sd.items() if t.dim() == 1]
    dt = sd[ones[0]].dtype if ones else torch.float32
    flat = torch.cat([torch.zeros(3, dtype=dt)] + [sd[k].to(dt) for k in ones]) if ones else None
    pos = 3  # every 1-D tensor at an offset into one storage
    for k, t in sd.items():
        if k in ones and t.dtype == dt:
            out[k] = flat[pos:pos + t.numel()]
            pos += t.numel()
        elif t.dim() == 2 and ".block.0." in k:
            out[k] = t.t().contiguous().t()  # column-major: strides (1, rows)
            assert not out[k].is_contiguous()
        else:
            out[k] = t
    if "shared.weight" in out:
        out["encoder.embed_tokens.weight"] = out["shared.weight"]
        out["decoder.embed_tokens.weight"] = out["shared.weight"][:]  # a second view of the storage
    return out


def write_zip64(path, entries):
    """A stored ZIP64 archive by hand (what torch writes past 4 GiB): every size and offset in
    the ZIP64 extra fields, the ZIP64 end of central directory and its locator; data at
    64-byte offsets as torch aligns them."""
    out, central = bytearray(), bytearray()
    for name, data in entries:
        n = name.encode()
        off = len(out)
        z64 = struct.pack("<HHQQ", 1, 16, len(data), len(data))
        pad = -(off + 30 + len(n) + len(z64) + 4) % 64
        extra = z64 + struct.pack("<HH", 0xcafe, pad) + b"Z" * pad
        crc = zlib.crc32(data)
        out += struct.pack("<IHHHHHIIIHH", 0x04034b50, 45, 0, 0, 0, 0, crc, 0xffffffff, 0xffffffff, len(n),
                           len(extra)) + n + extra
        assert len(out) % 64 == 0
        out += data
        cx = struct.pack("<HHQQQ", 1, 24, len(data), len(data), off)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014b50, 45, 45, 0, 0, 0, 0, crc, 0xffffffff, 0xffffffff,
                               len(n), len(cx), 0, 0, 0, 0, 0xffffffff) + n + cx
    cd_off = len(out)
    out += central
    z64_off = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064b50, 44, 45, 45, 0, 0, len(entries), len(entries), len(central), cd_off)
    out += struct.pack("<IIQI", 0x07064b50, 0, z64_off, 1)
    out += struct.pack("<IHHHHIIH", 0x06054b50, 0xffff, 0xffff, 0xffff, 0xffff, 0xffffffff, 0xffffffff, 0)
    open(path, "wb").write(bytes(out))


def main(fixture, out):
    os.makedirs(out, exist_ok=True)
    sd = read_safetensors(os.path.join(fixture, "model.safetensors"))
    f32 = OrderedDict((k, t.float()) for k, t in sd.items())
    variants = {}
    ref_as_stored = fixture
    if any(t.dtype != torch.float32 for t in sd.values()):  # the reference for float32 copies
        write_safetensors(os.path.join(folder(out, "f32-st", fixture), "model.safetensors"), f32)
    for name, legacy in (("zip", False), ("legacy", True)):
        save(sd, os.path.join(folder(out, name, fixture), "pytorch_model.bin"), legacy)
        variants[name] = ref_as_stored
        sharded(sd, folder(out, name.replace("zip", "") + ("-" if legacy else "") + "sharded", fixture), legacy)
        variants["legacy-sharded" if legacy else "sharded"] = ref_as_stored
        save(views(sd), os.path.join(folder(out, "views" + ("-legacy" if legacy else ""), fixture),
                                      "pytorch_model.bin"), legacy)
        variants["views" + ("-legacy" if legacy else "")] = ref_as_stored
    for name, dt in (("f16", torch.float16), ("bf16", torch.bfloat16), ("f32", torch.float32)):
        conv = OrderedDict((k, t.to(dt)) for k, t in f32.items())
        if dt == torch.float32 and "f32-st" not in os.listdir(out):
            continue  # the fixture is float32 already: "zip" is this variant
        save(conv, os.path.join(folder(out, name, fixture), "pytorch_model.bin"), False)
        if dt != torch.float32:
            write_safetensors(os.path.join(folder(out, name + "-st", fixture), "model.safetensors"), conv)
        variants[name] = os.path.join(out, name + "-st")
    with open(os.path.join(out, "variants.json"), "w") as f:
        json.dump(variants, f, indent=1)
    return variants


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__.strip().split("\n")[-1], file=sys.stderr)
        sys.exit(2)
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
