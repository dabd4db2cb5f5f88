#!/usr/bin/env python3
"""st_embed_bench.py - sentence-transformers `encode` (torch) next to `t5 embed` on the same
folder, the same texts, the same batch size and the same pinned cores; runs on the accelerator
machine (torch, transformers, sentence-transformers there). tools/st_embed_side_by_side.sh
drives it; the subcommands:

  make-folder OUT T5 ST5_TINY   a sentence-t5-base-shaped folder with random weights (vocab 32128,
                                d_model 768, 12 heads x 64, d_ff 3072, 12 layers, relu; Pooling mean,
                                Dense 768 -> 768 Identity without bias, Normalize), the tokenizer
                                files of the st5-tiny fixture
  texts OUT N [SEED]            N texts of random common words, about 16-128 tokens each
  st MODEL TEXTS THREADS BATCH REPS OUT.npy    SentenceTransformer.encode, best of REPS
  ours T5 MODEL TEXTS THREADS BATCH REPS CORES OUT.jsonl [COMPUTE_TYPE]   `t5 embed` (taskset CORES),
                                best of REPS, with --compute-type COMPUTE_TYPE when given
  compare OUT.jsonl OUT.npy     cosine / max abs difference of the two sets of embeddings
"""
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import time

WORDS = ("the of and to in is was for that on as with by at from his her an which or be are this had "
         "not but were they have one been their has who its new more first after also two can other "
         "time people into some only year would than over most when city made many such where these "
         "water family world during school later state small under three before being between both house "
         "music known south north part since while several life began left place high system called "
         "however found team game began national number group early united film government series "
         "language river station company university history public village church season county member "
         "second because around against each through under until without model text machine encoder "
         "sentence embedding server request token quick brown fox jumps lazy dog").split()


def make_folder(out, t5, st5_tiny):
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run([t5, "random-model", "--out", out, "--encoder-only", "--vocab", "32128", "--d-model", "768",
                    "--heads", "12", "--d-kv", "64", "--d-ff", "3072", "--layers", "12", "--ff", "relu", "--tied",
                    "--seed", "14"], check=True)
    for f in ("spiece.model", "tokenizer.json", "tokenizer_config.json"):
        if os.path.exists(os.path.join(st5_tiny, f)):
            shutil.copy(os.path.join(st5_tiny, f), out)
    mods = [("Transformer", ""), ("Pooling", "1_Pooling"), ("Dense", "2_Dense"), ("Normalize", "3_Normalize")]
    json.dump([{"idx": i, "name": str(i), "path": p, "type": "sentence_transformers.models." + t}
               for i, (t, p) in enumerate(mods)], open(os.path.join(out, "modules.json"), "w"))
    json.dump({"max_seq_length": 512, "do_lower_case": False}, open(os.path.join(out, "sentence_bert_config.json"), "w"))
    for _, p in mods[1:]:
        os.makedirs(os.path.join(out, p))
    json.dump({"word_embedding_dimension": 768, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
               "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
               "pooling_mode_weightedmean_tokens": False, "pooling_mode_lasttoken": False},
              open(os.path.join(out, "1_Pooling", "config.json"), "w"))
    json.dump({"in_features": 768, "out_features": 768, "bias": False,
               "activation_function": "torch.nn.modules.linear.Identity"},
              open(os.path.join(out, "2_Dense", "config.json"), "w"))
    rng = random.Random(14)
    raw = struct.pack("<%df" % (768 * 768), *(rng.uniform(-1, 1) / 768 ** 0.5 * 3 ** 0.5 for _ in range(768 * 768)))
    hdr = json.dumps({"linear.weight": {"dtype": "F32", "shape": [768, 768], "data_offsets": [0, len(raw)]}}).encode()
    hdr += b" " * (-len(hdr) % 8)
    open(os.path.join(out, "2_Dense", "model.safetensors"), "wb").write(struct.pack("<Q", len(hdr)) + hdr + raw)
    json.dump({}, open(os.path.join(out, "3_Normalize", "config.json"), "w"))
    print(f"made {out}: sentence-t5-base shape, random weights")


def texts(out, n, seed=7):
    rng = random.Random(seed)
    with open(out, "w") as f:
        for _ in range(n):
            f.write(" ".join(rng.choice(WORDS) for _ in range(rng.randint(14, 110))) + "\n")


def st(model, texts_path, threads, batch, reps, out):
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer
    torch.set_num_threads(threads)
    lines = open(texts_path).read().splitlines()
    m = SentenceTransformer(model, device="cpu")
    ntok = sum(len(x) for x in m.tokenizer(lines)["input_ids"])
    m.encode(lines[:batch], batch_size=batch, show_progress_bar=False)  # warm-up
    best, emb = 1e9, None
    for _ in range(reps):
        t0 = time.perf_counter()
        emb = m.encode(lines, batch_size=batch, show_progress_bar=False, convert_to_numpy=True)
        best = min(best, time.perf_counter() - t0)
    np.save(out, emb)
    import sentence_transformers
    print(f"sentence-transformers {sentence_transformers.__version__} / torch {torch.__version__} encode, "
          f"{threads} threads, batch {batch}: {len(lines)} texts ({ntok} tokens) in {best:.3f} s: "
          f"{len(lines) / best:.1f} sentences/s, {ntok / best:.0f} tokens/s (best of {reps})")


def ours(t5, model, texts_path, threads, batch, reps, cores, out, compute_type=None):
    lines = open(texts_path).read().splitlines()
    best = 1e9
    for _ in range(reps):
        t0 = time.perf_counter()
        with open(texts_path) as fin, open(out, "w") as fout:
            subprocess.run(["taskset", "-c", cores, t5, "embed", "--model", model, "--batch", str(batch),
                            "--threads", str(threads)] + (["--compute-type", compute_type] if compute_type else []),
                           stdin=fin, stdout=fout, check=True)
        best = min(best, time.perf_counter() - t0)
    print(f"t5 embed{' --compute-type ' + compute_type if compute_type else ''} (process start, tokenization "
          f"and model mapping included), {threads} threads, batch {batch}: "
          f"{len(lines)} texts in {best:.3f} s: {len(lines) / best:.1f} sentences/s (best of {reps})")


def compare(jsonl, npy):
    import numpy as np
    a = np.array([json.loads(l)["embedding"] for l in open(jsonl)], dtype=np.float64)
    b = np.load(npy).astype(np.float64)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    print(f"embeddings: {len(a)} x {a.shape[1]}, min cosine {cos.min():.7f}, max abs difference "
          f"{np.abs(a - b).max():.2e}")


def main():
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == "make-folder":
        make_folder(*a)
    elif cmd == "texts":
        texts(a[0], int(a[1]), int(a[2]) if len(a) > 2 else 7)
    elif cmd == "st":
        st(a[0], a[1], int(a[2]), int(a[3]), int(a[4]), a[5])
    elif cmd == "ours":
        ours(a[0], a[1], a[2], int(a[3]), int(a[4]), int(a[5]), a[6], a[7], a[8] if len(a) > 8 else None)
    elif cmd == "compare":
        compare(a[0], a[1])
    else:
        sys.exit(__doc__)


main()
