#!/usr/bin/python3
"""mk_embed_seeds.py - writes the seed corpus of fuzz_embed_config: sentence-transformers
folders for a 16-feature encoder in the harness's input format (uint16 LE length + bytes of
modules.json, sentence_bert_config.json, 1_Pooling/config.json, 2_Dense/config.json, then
2_Dense/model.safetensors). Covers the published (sentence_transformers.models.*, pooling_mode_*
booleans) and ST 6 (pooling_mode key) styles, Dense with / without bias in float32 and
bfloat16, several poolings, and a few broken files. Only the standard library.
usage: /usr/bin/python3 tests/fuzz/mk_embed_seeds.py tests/fuzz/corpus/fuzz_embed_config"""
import json, os, random, struct, sys

D = 16


def st(tensors):
    header, blobs, off = {}, b"", 0
    for name, (dt, shape) in tensors.items():
        n = 1
        for s in shape:
            n *= s
        raw = b"".join(struct.pack("<f", random.uniform(-1, 1)) if dt == "F32" else
                       struct.pack("<f", random.uniform(-1, 1))[2:] for _ in range(n))
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs += raw
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blobs


def mods(dense=True, norm=True, style="models"):
    t = {"models": "sentence_transformers.models.%s",
         "st6": "sentence_transformers.base.modules.%s"}[style]
    m = [{"idx": 0, "name": "0", "path": "", "type": t % "Transformer"},
         {"idx": 1, "name": "1", "path": "1_Pooling", "type": t % "Pooling"}]
    if dense:
        m.append({"idx": 2, "name": "2", "path": "2_Dense", "type": t % "Dense"})
    if norm:
        m.append({"idx": 3, "name": "3", "path": "3_Normalize", "type": t % "Normalize"})
    return json.dumps(m).encode()


def pool(modes):
    keys = ["cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens", "weightedmean_tokens", "lasttoken"]
    c = {"word_embedding_dimension": D}
    c.update({"pooling_mode_" + k: k in modes for k in keys})
    return json.dumps(c).encode()


def dense(n_in, n_out, bias, act, dt="F32"):
    cfg = json.dumps({"in_features": n_in, "out_features": n_out, "bias": bias,
                      "activation_function": "torch.nn.modules.activation." + act}).encode()
    t = {"linear.weight": (dt, [n_out, n_in])}
    if bias:
        t["linear.bias"] = (dt, [n_out])
    return cfg, st(t)


def pack(files):
    out = b""
    for f in files[:-1]:
        out += struct.pack("<H", len(f)) + f
    return out + files[-1]


def main():
    random.seed(14)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    sb = json.dumps({"max_seq_length": 128, "do_lower_case": False}).encode()
    seeds = {
        "st5_mean_dense_norm": [mods(), sb, pool({"mean_tokens"}), *dense(D, 8, False, "Tanh")],
        "gtr_bias_bf16": [mods(), sb, pool({"mean_tokens"}), *dense(D, 8, True, "Tanh", "BF16")],
        "st6_keys": [mods(style="st6"), b"{}", json.dumps({"embedding_dimension": D, "pooling_mode": "lasttoken"}).encode(),
                     *dense(D, 4, True, "GELU")],
        "multi_pool": [mods(norm=False), sb, pool({"cls_token", "max_tokens", "weightedmean_tokens"}),
                       *dense(3 * D, 5, True, "ReLU")],
        "pool_only": [mods(dense=False, norm=False), b"", pool({"max_tokens"}), b"", b""],
        "no_modules": [b"", b"", b"", b"", b""],
        "broken_json": [b"[{\"type\": ", sb, pool({"mean_tokens"}), b"", b""],
        "list_mode": [mods(dense=False), sb, json.dumps({"pooling_mode": ["mean", "max"]}).encode(), b"", b""],
    }
    for name, files in seeds.items():
        open(os.path.join(out, name), "wb").write(pack(files))


main()
