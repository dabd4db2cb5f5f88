#!/usr/bin/python3
"""mk_torch_seeds.py - writes the seed corpus of fuzz_torch_load: small state dicts saved by
Debian's python3-torch itself (torch.save), a few KB each: the zip and the legacy format,
pickle protocols 2 and 4, float32 / float16 / bfloat16, a shared storage, views at storage
offsets and with transposed strides, a 0-d and an empty tensor, a zip whose entries are
deflated (rewritten with zipfile) and a ZIP64 one. Plus refused inputs (an os.system global, a float64
storage) so that the fuzzer starts near the error paths too.
usage: /usr/bin/python3 tests/fuzz/mk_torch_seeds.py tests/fuzz/corpus/fuzz_torch_load"""
import io
import os
import sys
import zipfile
from collections import OrderedDict

import torch


def state(dt):
    g = torch.Generator().manual_seed(5)
    w = torch.randn(4, 6, generator=g).to(dt)
    flat = torch.randn(20, generator=g).to(dt)
    sd = OrderedDict()
    sd["shared.weight"] = w
    sd["encoder.embed_tokens.weight"] = w
    sd["t.weight"] = w.t()
    sd["ln.weight"] = flat[3:9]
    sd["ln2.weight"] = flat[9:20]
    sd["scalar"] = torch.tensor(2.5).to(dt)
    sd["empty"] = torch.zeros(0, 3).to(dt)
    return sd


class Evil:
    def __reduce__(self):
        return (os.system, ("true",))


def main(out):
    os.makedirs(out, exist_ok=True)
    for dt, name in ((torch.float32, "f32"), (torch.float16, "f16"), (torch.bfloat16, "bf16")):
        for proto in (2, 4):
            torch.save(state(dt), os.path.join(out, "zip-%s-p%d" % (name, proto)), pickle_protocol=proto)
            torch.save(state(dt), os.path.join(out, "legacy-%s-p%d" % (name, proto)), pickle_protocol=proto,
                       _use_new_zipfile_serialization=False)
    b = io.BytesIO()
    torch.save(state(torch.float32), b)
    src = zipfile.ZipFile(io.BytesIO(b.getvalue()))
    with zipfile.ZipFile(os.path.join(out, "zip-deflated"), "w", zipfile.ZIP_DEFLATED) as z:
        for i in src.infolist():
            z.writestr(i.filename, src.read(i.filename))
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "torch"))
    import mk_torch_files
    mk_torch_files.write_zip64(os.path.join(out, "zip64"), [(i.filename, src.read(i.filename)) for i in src.infolist()])
    torch.save({"x": torch.ones(3, dtype=torch.float64)}, os.path.join(out, "refused-f64"))
    torch.save({"x": Evil()}, os.path.join(out, "refused-global"))


if __name__ == "__main__":
    main(sys.argv[1])
