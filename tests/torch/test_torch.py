#!/usr/bin/python3
"""test_torch.py - pytorch_model.bin folders through the real tools and server (suite
23-torch-checkpoints). Torch files are written by Debian's python3-torch (torch.save, the
reference writer) from the fixture checkpoints by mk_torch_files.py.
 1. Every variant (zip, legacy, sharded + index in both formats, shared storages, views with
    offsets and column-major strides, float16 / bfloat16 copies): `t5 generate --format json`
    greedy and beam answers (ids, scores, logprobs) identical to the safetensors reference's.
 2. Deflated and misaligned zip entries (the zip rewritten by Python's zipfile) load, are
    copied with a note, and answer the same; a ZIP64 archive (what torch writes past 4 GiB,
    built by hand; torch.load reads it) loads in place.
 3. Pickles that would run code (a global os.system, posix.system, builtins.eval by
    STACK_GLOBAL, a __reduce__ to subprocess.call or torch.nn.Linear) are refused with the
    global's name, and nothing runs: each payload creates a marker file under torch.load
    (weights_only=False) and none under t5. Storages of other dtypes are refused naming it.
 4. A folder with neither format names the files it looked for.
 5. The T5 PEGASUS port layout (config.json + pytorch_model.bin + vocab.txt, zip and legacy)
    served by build/t5serve: /tokenize ([CLS] ... [SEP]) and /generate greedy and beam4 equal
    transformers' goldens of t5-tiny-pegasus; /info reports the format.
 6. sentence-t5 with pytorch_model.bin in the root and in 2_Dense/ (legacy format): `t5 embed`
    output identical to the safetensors fixture's."""
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import zipfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "server"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, FIXTURES, WORK, Server, check, finish, goldens  # noqa: E402

import mk_torch_files  # noqa: E402
import torch  # noqa: E402

T5 = os.path.join(BUILD, "t5")
INPUTS = "57 300 12 9 77 1\n4 8 15 16 23 42 1\n1\n"


def generate(model, *args):
    r = subprocess.run([T5, "generate", "--model", model, "--input", "ids", "--format", "json",
                        "--max-new-tokens", "12", *args], input=INPUTS, capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def same_answers(dir_, ref, tag):
    for args in ((), ("--num-beams", "4", "--num-return-sequences", "2")):
        rc, out, errs = generate(dir_, *args)
        rrc, rout, _ = generate(ref, *args)
        kind = "beam" if args else "greedy"
        check(rc == 0 and rrc == 0 and out == rout and out.count("\n") == 3,
              f"{tag}: {kind} answers differ from the safetensors folder's (rc {rc}: {errs[-300:]})")


def variants():
    """1. every layout of every seq2seq fixture"""
    for name in ("t5-tiny-gated", "t5-tiny-relu", "t5-tiny-pegasus"):
        out = os.path.join(WORK, "v", name)
        vs = mk_torch_files.main(os.path.join(FIXTURES, "models", name), out)
        check(len(vs) >= 8, f"{name}: {len(vs)} variants")
        for v, ref in vs.items():
            same_answers(os.path.join(out, v), ref, f"{name}/{v}")


def rewritten_zips():
    """2. deflated and misaligned entries: copied with a note, same answers"""
    src = os.path.join(WORK, "v", "t5-tiny-gated", "zip")
    ref = os.path.join(FIXTURES, "models", "t5-tiny-gated")
    for tag, method in (("deflated", zipfile.ZIP_DEFLATED), ("misaligned", zipfile.ZIP_STORED)):
        d = os.path.join(WORK, tag)
        shutil.copytree(src, d)
        zin = zipfile.ZipFile(os.path.join(src, "pytorch_model.bin"))
        with zipfile.ZipFile(os.path.join(d, "pytorch_model.bin"), "w", method) as z:
            for i in zin.infolist():  # Python's zipfile pads nothing: data offsets are arbitrary
                z.writestr(i.filename, zin.read(i.filename))
        offs = [i.header_offset for i in zipfile.ZipFile(os.path.join(d, "pytorch_model.bin")).infolist()]
        check(method == zipfile.ZIP_DEFLATED or any(o % 64 for o in offs), f"{tag}: some entry is misaligned")
        rc, out, errs = generate(d)
        check(rc == 0 and "storages copied to memory" in errs, f"{tag}: loads with a note ({errs[-300:]})")
        same_answers(d, ref, tag)


def zip64():
    """2b. a ZIP64 archive (torch writes one past 4 GiB) is read, still in place"""
    src = os.path.join(WORK, "v", "t5-tiny-gated", "zip")
    d = os.path.join(WORK, "zip64")
    shutil.copytree(src, d)
    zin = zipfile.ZipFile(os.path.join(src, "pytorch_model.bin"))
    p = os.path.join(d, "pytorch_model.bin")
    mk_torch_files.write_zip64(p, [(i.filename, zin.read(i.filename)) for i in zin.infolist()])
    check(zipfile.ZipFile(p).testzip() is None, "zip64: Python's zipfile reads the archive")
    r = subprocess.run(["/usr/bin/python3", "-c", "import torch,sys; torch.load(sys.argv[1])", p],
                       capture_output=True, text=True)
    check(r.returncode == 0, f"zip64: torch.load reads it {r.stderr[-300:]}")
    rc, out, errs = generate(d)
    check(rc == 0 and errs == "", f"zip64: loads in place, no note ({errs[-300:]})")
    same_answers(d, os.path.join(FIXTURES, "models", "t5-tiny-gated"), "zip64")


class Reduce:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def zip_with_pickle(path, pkl):
    """A torch zip checkpoint whose data.pkl is the given bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/version", "3\n")


def malicious():
    """3. refused by name, nothing runs"""
    cfg = os.path.join(FIXTURES, "models", "t5-tiny-pegasus", "config.json")
    cases = []
    for i, (tag, writer, name) in enumerate([
        ("os.system GLOBAL in zip", "os", "os.system"),
        ("torch.save of os.system (zip)", "save", "posix.system"),
        ("torch.save of os.system (legacy)", "save-legacy", "posix.system"),
        ("builtins.eval by STACK_GLOBAL", "eval", "builtins.eval"),
        ("__reduce__ to subprocess.call", "subprocess", "subprocess.call"),
        ("__reduce__ to torch.nn.Linear", "linear", "torch.nn.modules.linear.Linear"),
    ]):
        d = os.path.join(WORK, "evil%d" % i)
        os.makedirs(d)
        shutil.copy(cfg, d)
        cases.append((tag, d, writer, name))
    for tag, d, writer, name in cases:
        for side in ("torch", "t5"):
            marker = os.path.join(d, "marker-" + side)
            p = os.path.join(d, "pytorch_model.bin")
            if writer == "os":
                zip_with_pickle(p, b"\x80\x02cos\nsystem\nq\x00X%sq\x01\x85q\x02Rq\x03." %
                                (len("touch " + marker).to_bytes(4, "little") + ("touch " + marker).encode()))
            elif writer in ("save", "save-legacy"):
                torch.save({"shared.weight": Reduce(os.system, ("touch " + marker,))}, p,
                           _use_new_zipfile_serialization=writer == "save")
            elif writer == "eval":
                zip_with_pickle(p, pickle.dumps(Reduce(eval, ("open(%r, 'w').close()" % marker,)), protocol=4))
            elif writer == "subprocess":
                zip_with_pickle(p, pickle.dumps(Reduce(subprocess.call, (["touch", marker],)), protocol=3))
            else:  # a harmless constructor: nothing to mark, only the refusal to check
                if side == "torch":
                    continue
                zip_with_pickle(p, pickle.dumps({"w": Reduce(torch.nn.Linear, (2, 2))}, protocol=2))
            if side == "torch":  # the payload is live: an unrestricted unpickler runs it
                subprocess.run(["/usr/bin/python3", "-c",
                                "import torch,sys; torch.load(sys.argv[1], weights_only=False)", p],
                               capture_output=True)
                check(os.path.exists(marker), f"{tag}: torch.load(weights_only=False) runs the payload")
                os.unlink(p)
                continue
            rc, out, errs = generate(d)
            check(rc == 1 and f"'{name}'" in errs and "refused" in errs, f"{tag}: refused naming {name}: {errs!r}")
            check(not os.path.exists(marker), f"{tag}: nothing ran under t5")
            r = subprocess.run([T5, "convert", "--model", d, "--out", os.path.join(d, "out")], capture_output=True,
                               text=True)
            check(r.returncode == 1 and name in r.stderr and not os.path.exists(marker), f"{tag}: convert refuses")
    # other storage dtypes: refused naming the dtype
    for dt, want in ((torch.float64, "torch.DoubleStorage (float64)"), (torch.int64, "torch.LongStorage (int64)"),
                     (torch.bool, "torch.BoolStorage (bool)")):
        d = os.path.join(WORK, "dtype-" + want.split()[0])
        os.makedirs(d)
        shutil.copy(cfg, d)
        torch.save({"shared.weight": torch.ones(3, dtype=dt)}, os.path.join(d, "pytorch_model.bin"))
        rc, out, errs = generate(d)
        check(rc == 1 and want in errs, f"{dt}: refused naming {want}: {errs!r}")
    # a truncated checkpoint and garbage: one clear line each
    src = os.path.join(WORK, "v", "t5-tiny-pegasus", "zip", "pytorch_model.bin")
    for tag, data in (("truncated zip", open(src, "rb").read()[:-5000]), ("garbage", b"not a checkpoint" * 99)):
        d = os.path.join(WORK, tag.replace(" ", "-"))
        os.makedirs(d)
        shutil.copy(cfg, d)
        open(os.path.join(d, "pytorch_model.bin"), "wb").write(data)
        rc, out, errs = generate(d)
        check(rc == 1 and errs.count("\n") == 1 and "pytorch_model.bin" in errs, f"{tag}: one clear line {errs!r}")


def neither():
    """4. the error names what it looked for"""
    d = os.path.join(WORK, "noweights")
    os.makedirs(d)
    shutil.copy(os.path.join(FIXTURES, "models", "t5-tiny-pegasus", "config.json"), d)
    rc, out, errs = generate(d)
    check(rc == 1 and all(f in errs for f in mk_torch_files.WEIGHT_FILES), f"no weights: {errs!r}")


def sentence_t5():
    """6. a sentence-transformers folder published with torch files (root and 2_Dense/): `t5 embed`
    answers exactly as the safetensors fixture"""
    fx = os.path.join(FIXTURES, "models", "st5-tiny")
    d = os.path.join(WORK, "st5-bin")
    shutil.copytree(fx, d)
    for sub in ("", "2_Dense"):
        st = os.path.join(d, sub, "model.safetensors")
        torch.save(mk_torch_files.read_safetensors(st), os.path.join(d, sub, "pytorch_model.bin"),
                   _use_new_zipfile_serialization=sub == "")
        os.unlink(st)
    text = "A sentence to embed.\nAnother one, longer than the first.\n"
    r = [subprocess.run([T5, "embed", "--model", m], input=text, capture_output=True, text=True) for m in (fx, d)]
    check(r[0].returncode == 0 and r[1].returncode == 0 and r[0].stdout == r[1].stdout and r[0].stdout.count("\n") == 2,
          f"st5 with pytorch_model.bin files: embeddings equal the fixture's ({r[1].stderr[-300:]})")


def pegasus_port():
    """5. the published T5 PEGASUS layout through the real server, against transformers' goldens"""
    pg = goldens("t5-tiny-pegasus")
    fx = os.path.join(FIXTURES, "models", "t5-tiny-pegasus")
    sd = mk_torch_files.read_safetensors(os.path.join(fx, "model.safetensors"))
    for fmt, legacy in (("pytorch-zip", False), ("pytorch-legacy", True)):
        d = os.path.join(WORK, "t5-pegasus-port-" + fmt)
        os.makedirs(d)
        for f in ("config.json", "vocab.txt"):
            shutil.copy(os.path.join(fx, f), d)
        torch.save(sd, os.path.join(d, "pytorch_model.bin"), _use_new_zipfile_serialization=not legacy)
        check(sorted(os.listdir(d)) == ["config.json", "pytorch_model.bin", "vocab.txt"], "the port's three files")
        srv = Server([], name="port", model=d)
        try:
            st, _, info = srv.request("GET", "/info")
            info = json.loads(info)
            check(st == 200 and info["model"].get("format") == fmt and info["model"]["mode"] == "generate"
                  and info["model"]["tokenizer"] == "wordpiece", f"{fmt}: /info {info.get('model')}")
            for ci, c in enumerate(pg["cases"]):
                tag = f"{fmt} case {ci}"
                st, ans = srv.post("/tokenize", {"text": c["text"], "pieces": True})
                check(st == 200 and ans["ids"] == c["input_ids"] and ans["pieces"][0] == "[CLS]"
                      and ans["pieces"][-1] == "[SEP]", f"{tag}: /tokenize {ans}")
                gi = c["greedy"]
                st, ans = srv.post("/generate", {"text": c["text"], "max_new_tokens": gi["max_new_tokens"],
                                                 "details": True})
                check(st == 200 and [t["id"] for t in ans["tokens"]] == gi["ids"] and ans["text"] == gi["text"],
                      f"{tag}: greedy {ans} expected {gi}")
                b = c["beam4"]
                st, ans = srv.post("/generate", {"text": c["text"], "num_beams": 4, "num_return_sequences": 4,
                                                 "early_stopping": True, "max_new_tokens": gi["max_new_tokens"],
                                                 "details": True})
                check(st == 200 and [t["id"] for t in ans["tokens"]] == b["sequences"][0] and ans["text"] == b["text"]
                      and all(abs(q["score"] - w) < 2e-3 for q, w in zip(ans["sequences"], b["sequences_scores"])),
                      f"{tag}: beam4 {ans} expected {b}")
        finally:
            check(srv.stop() == 0, f"{fmt}: server exits 0")


if __name__ == "__main__":
    variants()
    rewritten_zips()
    zip64()
    malicious()
    neither()
    sentence_t5()
    pegasus_port()
    finish("23-torch-checkpoints")
