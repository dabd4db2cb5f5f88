#!/usr/bin/python3
"""convert_bin_to_safetensors.py - converts a PyTorch checkpoint (`pytorch_model.bin`, or a
sharded `pytorch_model.bin.index.json` with its shards) into `model.safetensors` (or sharded
`model-0000i-of-0000n.safetensors` + `model.safetensors.index.json`), the format t5serve loads.
It is how published T5 PEGASUS checkpoints that only ship `pytorch_model.bin` are served.

Reads with Debian's python3-torch (`torch.load(..., weights_only=True)`: no code from the
checkpoint runs); writes the safetensors format by hand: an 8-byte little-endian header length,
the JSON header (name -> dtype, shape, data_offsets; `__metadata__` format "pt"), padded with
spaces to a multiple of 8, then the raw little-endian tensor bytes with no holes, largest
element size first so that every tensor is aligned to its element size.
Tensors that are views of the same storage as `shared.weight` and are named
`*.embed_tokens.weight` are left out (t5serve and transformers read them from `shared.weight`);
any other shared tensor is written as its own copy. Not a general format converter.

usage: /usr/bin/python3 tools/convert_bin_to_safetensors.py MODEL_DIR_OR_BIN [OUT] [--force]
       (apt-get install python3-torch; OUT defaults to model.safetensors beside the input)"""
import json
import os
import struct
import sys

DTYPES = {  # torch dtype name -> (safetensors dtype, element size)
    "float32": ("F32", 4), "float16": ("F16", 2), "bfloat16": ("BF16", 2), "float64": ("F64", 8),
    "int64": ("I64", 8), "int32": ("I32", 4), "int16": ("I16", 2), "int8": ("I8", 1),
    "uint8": ("U8", 1), "bool": ("BOOL", 1),
}
ITEMSIZE = {v[0]: v[1] for v in DTYPES.values()}


def write_safetensors(path, tensors, metadata=None):
    """Writes tensors, a list of (name, safetensors dtype, shape, raw little-endian bytes), to path
    (through path + ".tmp", then renamed). Returns the header dict written."""
    names = [t[0] for t in tensors]
    if len(set(names)) != len(names):
        raise ValueError("duplicate tensor names")
    order = sorted(tensors, key=lambda t: (-ITEMSIZE[t[1]], t[0]))
    header, off = {}, 0
    for name, dtype, shape, data in order:
        n = 1
        for d in shape:
            n *= d
        if n * ITEMSIZE[dtype] != len(data):
            raise ValueError("tensor %s: %d bytes for shape %s %s" % (name, len(data), list(shape), dtype))
        header[name] = {"dtype": dtype, "shape": [int(d) for d in shape], "data_offsets": [off, off + len(data)]}
        off += len(data)
    header["__metadata__"] = dict(metadata or {"format": "pt"})
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * (-len(hjson) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for _, _, _, data in order:
            f.write(data)
    os.replace(tmp, path)
    return header


def read_safetensors(path):
    """The tensors of a safetensors file: {name: (dtype, shape, bytes)} (a strict reader)."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    header.pop("__metadata__", None)
    data = blob[8 + n:]
    out, spans = {}, []
    for name, info in header.items():
        b, e = info["data_offsets"]
        count = 1
        for d in info["shape"]:
            count *= d
        if not 0 <= b <= e <= len(data) or e - b != count * ITEMSIZE[info["dtype"]]:
            raise ValueError("bad offsets for " + name)
        spans.append((b, e))
        out[name] = (info["dtype"], tuple(info["shape"]), data[b:e])
    pos = 0
    for b, e in sorted(spans):
        if b != pos:
            raise ValueError("hole or overlap in the data buffer")
        pos = e
    if pos != len(data):
        raise ValueError("trailing bytes after the tensors")
    return out


def tensor_entry(torch, name, t):
    dt = str(t.dtype).replace("torch.", "")
    if dt not in DTYPES:
        raise ValueError("tensor %s: unsupported dtype %s" % (name, dt))
    c = t.detach().cpu().contiguous()
    if dt == "bfloat16":
        raw = c.view(torch.int16).numpy().tobytes()
    else:
        raw = c.numpy().tobytes()
    if sys.byteorder != "little":
        raise ValueError("big-endian hosts are not supported")
    return (name, DTYPES[dt][0], tuple(c.shape), raw)


def convert_state_dict(torch, sd):
    """[(name, dtype, shape, bytes)] of a state dict, without the aliases of shared.weight."""
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ValueError("not a state dict of tensors")
    shared = sd.get("shared.weight")
    out, dropped = [], []
    for name, t in sd.items():
        if (shared is not None and name != "shared.weight" and name.endswith("embed_tokens.weight")
                and t.shape == shared.shape and t.stride() == shared.stride()
                and t.data_ptr() == shared.data_ptr()):
            dropped.append(name)
            continue
        out.append(tensor_entry(torch, name, t))
    return out, dropped


def main(argv):
    force = "--force" in argv
    args = [a for a in argv if a != "--force"]
    if not 1 <= len(args) <= 2:
        print(__doc__.strip().split("\n\n")[-1], file=sys.stderr)
        return 2
    src = args[0]
    folder = src if os.path.isdir(src) else os.path.dirname(os.path.abspath(src))
    try:
        import torch
    except ImportError:
        print("convert: needs PyTorch: apt-get install python3-torch (then run with /usr/bin/python3)", file=sys.stderr)
        return 1
    index = os.path.join(folder, "pytorch_model.bin.index.json")
    if os.path.isdir(src) and os.path.isfile(index):
        weight_map = json.load(open(index))["weight_map"]
        shards = sorted(set(weight_map.values()))
        outdir = args[1] if len(args) > 1 else folder
        new_map, total = {}, 0
        for i, shard in enumerate(shards):
            name = "model-%05d-of-%05d.safetensors" % (i + 1, len(shards))
            out = os.path.join(outdir, name)
            if os.path.exists(out) and not force:
                print("convert: %s exists (use --force)" % name, file=sys.stderr)
                return 1
            sd = torch.load(os.path.join(folder, shard), map_location="cpu", weights_only=True)
            tensors, dropped = convert_state_dict(torch, sd)
            write_safetensors(out, tensors)
            for t in tensors:
                new_map[t[0]] = name
                total += len(t[3])
            print("convert: %s: %d tensors%s" % (name, len(tensors), (", left out " + ", ".join(dropped)) if dropped else ""))
        with open(os.path.join(outdir, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": new_map}, f, indent=2)
        return 0
    binpath = os.path.join(src, "pytorch_model.bin") if os.path.isdir(src) else src
    out = args[1] if len(args) > 1 else os.path.join(folder, "model.safetensors")
    if os.path.isdir(out):
        out = os.path.join(out, "model.safetensors")
    if not os.path.isfile(binpath):
        print("convert: no pytorch_model.bin there", file=sys.stderr)
        return 1
    if os.path.exists(out) and not force:
        print("convert: the output exists already (use --force)", file=sys.stderr)
        return 1
    try:
        sd = torch.load(binpath, map_location="cpu", weights_only=True)
        if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
            sd = sd["state_dict"]
        tensors, dropped = convert_state_dict(torch, sd)
    except Exception as e:  # corrupt or foreign file: one clear line, no traceback
        print("convert: cannot read the checkpoint: %s" % str(e).split("\n")[0][:200], file=sys.stderr)
        return 1
    write_safetensors(out, tensors)
    read_safetensors(out)  # self-check of what was written
    print("convert: wrote %d tensors (%d bytes)%s" % (len(tensors), os.path.getsize(out),
          (", left out " + ", ".join(dropped) + " (views of shared.weight)") if dropped else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
