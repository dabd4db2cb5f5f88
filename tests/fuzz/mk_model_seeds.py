#!/usr/bin/python3
"""mk_model_seeds.py - writes the seed corpus of fuzz_model_load: tiny random T5
checkpoints (a few KB) in the harness's input format: uint16 LE length of config.json,
config.json, then model.safetensors (written here by hand: 8-byte LE header length,
JSON header, raw little-endian data). Covers gated-gelu untied float32, relu tied
float16, bfloat16, an encoder-only (T5EncoderModel) one, and a couple of broken files. Only the standard library.
usage: /usr/bin/python3 tests/fuzz/mk_model_seeds.py tests/fuzz/corpus/fuzz_model_load"""
import json, random, struct, sys, os

def tensors(cfg, gated, tied):
    d, h, kv, ff, V = cfg["d_model"], cfg["num_heads"], cfg["d_kv"], cfg["d_ff"], cfg["vocab_size"]
    t = {"shared.weight": [V, d]}
    if not tied: t["lm_head.weight"] = [V, d]
    for side, n in (("encoder", cfg["num_layers"]), ("decoder", cfg["num_decoder_layers"])):
        for i in range(n):
            blocks = ["SelfAttention"] + (["EncDecAttention"] if side == "decoder" else [])
            for j, kind in enumerate(blocks):
                pre = f"{side}.block.{i}.layer.{j}"
                t[f"{pre}.layer_norm.weight"] = [d]
                for p in "qkvo":
                    t[f"{pre}.{kind}.{p}.weight"] = [h * kv, d] if p != "o" else [d, h * kv]
                if i == 0 and j == 0:
                    t[f"{pre}.{kind}.relative_attention_bias.weight"] = [cfg["relative_attention_num_buckets"], h]
            pre = f"{side}.block.{i}.layer.{len(blocks)}"
            t[f"{pre}.layer_norm.weight"] = [d]
            if gated:
                t[f"{pre}.DenseReluDense.wi_0.weight"] = [ff, d]
                t[f"{pre}.DenseReluDense.wi_1.weight"] = [ff, d]
            else:
                t[f"{pre}.DenseReluDense.wi.weight"] = [ff, d]
            t[f"{pre}.DenseReluDense.wo.weight"] = [d, ff]
        t[f"{side}.final_layer_norm.weight"] = [d]
    return t

def safetensors(shapes, dtype, rng):
    size = {"F32": 4, "F16": 2, "BF16": 2}[dtype]
    hdr, blob = {"__metadata__": {"format": "pt"}}, bytearray()
    for name, shape in sorted(shapes.items()):
        n = 1
        for s in shape: n *= s
        start = len(blob)
        for _ in range(n):
            x = rng.uniform(-0.5, 0.5) if not name.endswith("layer_norm.weight") else 1.0
            if dtype == "F32": blob += struct.pack("<f", x)
            elif dtype == "F16": blob += struct.pack("<e", x)
            else: blob += struct.pack("<f", x)[2:]
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [start, len(blob)]}
    h = json.dumps(hdr).encode()
    return struct.pack("<Q", len(h)) + h + bytes(blob)

def seed(cfg, st):
    c = json.dumps(cfg).encode()
    return struct.pack("<H", len(c)) + c + st

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = random.Random(7)
base = {"model_type": "t5", "vocab_size": 12, "d_model": 4, "d_kv": 2, "num_heads": 2, "d_ff": 6,
        "num_layers": 1, "num_decoder_layers": 2, "relative_attention_num_buckets": 4,
        "relative_attention_max_distance": 8, "layer_norm_epsilon": 1e-6, "decoder_start_token_id": 0,
        "eos_token_id": 1, "pad_token_id": 0}
gated = dict(base, model_type="mt5", feed_forward_proj="gated-gelu", tie_word_embeddings=False)
relu = dict(base, feed_forward_proj="relu", tie_word_embeddings=True)
g = safetensors(tensors(gated, True, False), "F32", rng)
files = {
    "gated_f32": seed(gated, g),
    "relu_f16_tied": seed(relu, safetensors(tensors(relu, False, True), "F16", rng)),
    "gated_bf16": seed(gated, safetensors(tensors(gated, True, False), "BF16", rng)),
    "truncated": seed(gated, g[: len(g) // 2]),
    "header_too_long": seed(gated, struct.pack("<Q", 1 << 40) + g[8:]),
    "config_not_object": seed([1, 2], g),
}
enc = dict(gated, architectures=["T5EncoderModel"], is_encoder_decoder=False)  # encoder-only: no decoder
files["encoder_only"] = seed(enc, safetensors({k: v for k, v in tensors(gated, True, True).items()
                                               if not k.startswith("decoder.")}, "F32", rng))
for name, data in files.items():
    open(os.path.join(out, name), "wb").write(data)
