# train.py - the accelerator half of the default model's recipe (T5 PEGASUS, small): trains an
# mT5-architecture model (T5 v1.1:
# gated-gelu, untied head, relative position buckets) on PEGASUS pseudo-summaries for a fixed time,
# keeps the checkpoint with the best validation loss, exports it in the Hugging Face layout t5serve
# loads (config.json with model_type mt5, model.safetensors in bfloat16, spiece.model), and reports
# held-out character-level ROUGE-L of greedy outputs next to the lead baseline. It also writes
# greedy_check.jsonl: greedy ids of the exported weights (bfloat16 widened to float32, on the CPU, as
# t5serve computes) for some held-out inputs, which tests/suites/1N-default-model.sh replays.
# Not the data pipeline (prepare.py + build/shuffle, on the CPU machine) and not a general trainer.
# usage: python3 train.py DATA_DIR OUT_DIR --spm spiece.model [--minutes 7] [--smoke]
#   DATA_DIR: train.jsonl.xz (prepare.py's train.jsonl shuffled by build/shuffle), heldout.jsonl.xz
import argparse, json, lzma, math, os, random, sys, time, zlib

import torch
import sentencepiece as spm
import transformers
from transformers import T5Config, T5ForConditionalGeneration
from safetensors.torch import save_file, load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pegasus import rouge_l, lead  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("data"); ap.add_argument("out")
ap.add_argument("--spm", required=True, help="the spiece.model from tokenizer.py")
ap.add_argument("--minutes", type=float, default=7.0, help="training time budget")
ap.add_argument("--steps", type=int, default=0, help="fixed number of steps (default: from the time budget)")
ap.add_argument("--batch", type=int, default=128)
ap.add_argument("--lr", type=float, default=1e-3)
ap.add_argument("--d-model", type=int, default=384); ap.add_argument("--d-ff", type=int, default=768)
ap.add_argument("--heads", type=int, default=6); ap.add_argument("--d-kv", type=int, default=64)
ap.add_argument("--enc-layers", type=int, default=4); ap.add_argument("--dec-layers", type=int, default=3)
ap.add_argument("--max-src", type=int, default=256); ap.add_argument("--max-tgt", type=int, default=128)
ap.add_argument("--eval-limit", type=int, default=0, help="held-out test examples to score (0: all)")
ap.add_argument("--smoke", action="store_true", help="a short end-to-end run")
a = ap.parse_args()
os.makedirs(a.out, exist_ok=True)
T0 = time.time()
LOG = open(os.path.join(a.out, "train.log"), "a", encoding="utf-8")


def log(*args):
    msg = "[%6.1fs] " % (time.time() - T0) + " ".join(str(x) for x in args)
    print(msg, flush=True); LOG.write(msg + "\n"); LOG.flush()


def read_jsonl(path):
    with lzma.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(l) for l in f]


random.seed(0); torch.manual_seed(0)
dev = "cuda"
log("versions: torch", torch.__version__, "transformers", transformers.__version__, "sentencepiece", spm.__version__,
    "gpu", torch.cuda.get_device_name(0))

# ---- 1. tokenizer (trained by tokenizer.py on the CPU machine) ------------------------------------
import shutil
spm_path = os.path.join(a.out, "spiece.model")
shutil.copy(a.spm, spm_path)
sp = spm.SentencePieceProcessor(model_file=spm_path)
NSP = sp.get_piece_size()
log(f"tokenizer: {NSP} pieces")
VOCAB = (NSP + 100 + 63) // 64 * 64  # T5 folder convention: 100 sentinels after the pieces, padded rows

# ---- 2. data --------------------------------------------------------------------------------
train = read_jsonl(os.path.join(a.data, "train.jsonl.xz"))
held = read_jsonl(os.path.join(a.data, "heldout.jsonl.xz"))
valid = [e for e in held if zlib.crc32(e["doc"].encode()) % 2 == 0]  # checkpoint choice
test = [e for e in held if zlib.crc32(e["doc"].encode()) % 2 == 1]   # reported numbers
if a.smoke:
    train = train[:20000]
if a.eval_limit:
    test = test[:a.eval_limit]


def enc(text, n):
    ids = sp.encode(text)[: n - 1]
    return ids + [1]


def encode_all(exs):
    return [(enc(e["src"], a.max_src), enc(e["tgt"], a.max_tgt)) for e in exs]


tr, va = encode_all(train), encode_all(valid)
ntok = sum(len(s) + len(t) for s, t in tr)
log(f"data: {len(tr)} training examples ({ntok} tokens, {ntok / max(1, sum(len(e['src']) + len(e['tgt']) for e in train)):.3f} "
    f"tokens/char), {len(va)} validation, {len(test)} test")


def batches(data, bs, shuffle, seed=0):
    idx = list(range(len(data)))
    if shuffle:
        random.Random(seed).shuffle(idx)
    for i in range(0, len(idx), bs):
        chunk = [data[j] for j in idx[i:i + bs]]
        ls = max(len(s) for s, _ in chunk); lt = max(len(t) for _, t in chunk)
        x = torch.tensor([s + [0] * (ls - len(s)) for s, _ in chunk])
        y = torch.tensor([t + [-100] * (lt - len(t)) for _, t in chunk])
        yield x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)


# ---- 3. model -------------------------------------------------------------------------------
cfg = T5Config(vocab_size=VOCAB, d_model=a.d_model, d_kv=a.d_kv, num_heads=a.heads, d_ff=a.d_ff,
               num_layers=a.enc_layers, num_decoder_layers=a.dec_layers, feed_forward_proj="gated-gelu",
               tie_word_embeddings=False, relative_attention_num_buckets=32, relative_attention_max_distance=128,
               layer_norm_epsilon=1e-6, dropout_rate=0.1, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
model = T5ForConditionalGeneration(cfg)
if model.lm_head.weight.data_ptr() == model.shared.weight.data_ptr():
    log("model: transformers tied the head; giving it its own weights")
with torch.no_grad():  # an untied head of its own, scaled so that first logits are about unit size
    model.lm_head.weight = torch.nn.Parameter(torch.randn(VOCAB, a.d_model) * a.d_model ** -0.5)
model.encoder.set_input_embeddings(model.shared); model.decoder.set_input_embeddings(model.shared)
nparam = sum(p.numel() for p in model.parameters())
log(f"model: {nparam / 1e6:.2f}M parameters, {2 * nparam / 1e6:.1f} MB in bfloat16, vocab {VOCAB} ({NSP} pieces + 100 sentinels + padding)")
assert 2 * nparam + os.path.getsize(spm_path) < 39.5e6, "model folder would exceed 40 MB"
model.to(dev)
torch.backends.cuda.matmul.allow_tf32 = True
opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.98), weight_decay=0.01)


def valid_loss():
    model.eval(); tot = n = 0
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        for x, y in batches(va, 256, False):
            loss = model(input_ids=x, attention_mask=(x != 0).long(), labels=y).loss
            k = int((y != -100).sum()); tot += float(loss) * k; n += k
    model.train()
    return tot / max(1, n)


# ---- 4. train for the time budget, keep the best validation checkpoint -------------------------
budget = a.minutes * 60
warm, step, epoch, total = 300, 0, 0, a.steps or 10 ** 9
best, best_state, best_step = float("inf"), None, 0
t_start = time.time(); last_eval = t_start; eval_every = 45 if not a.smoke else 15
model.train()
done = False
while not done:
    for x, y in batches(tr, a.batch, True, seed=epoch):
        if step == 20:
            t20 = time.time()
        if step == 120 and not a.steps:  # fix the schedule's length from the measured step time
            per = (time.time() - t20) / 100
            total = 120 + int((budget - (time.time() - t_start)) / per * 0.94)
            log(f"train: {per * 1000:.1f} ms/step -> {total} steps in {budget:.0f} s")
        # linear warm-up, then linear decay to 5% of the peak at the last step
        lr = a.lr * min(1.0, (step + 1) / warm) * max(0.05, 1.0 - step / total)
        for g in opt.param_groups:
            g["lr"] = lr
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=x, attention_mask=(x != 0).long(), labels=y).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        now = time.time()
        if now - last_eval > eval_every or step >= total or now - t_start > budget:
            vl = valid_loss()
            log(f"step {step} epoch {epoch} lr {lr:.2e} train loss {float(loss):.3f} valid loss {vl:.3f}")
            if vl < best:
                best, best_step = vl, step
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            last_eval = time.time()
        if step >= total or time.time() - t_start > budget:
            done = True
            break
    epoch += 1
train_s = time.time() - t_start
log(f"train: {step} steps, {epoch} epochs, {train_s:.0f} s; best valid loss {best:.3f} at step {best_step}")
model.load_state_dict(best_state)

# ---- 5. export (bfloat16) and reload exactly what was written -----------------------------------
sd = {k: v.detach().to("cpu", torch.bfloat16).contiguous().clone() for k, v in model.state_dict().items()
      if k not in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight")}
save_file(sd, os.path.join(a.out, "model.safetensors"), metadata={"format": "pt"})
config = {"architectures": ["MT5ForConditionalGeneration"], "model_type": "mt5", "d_model": a.d_model, "d_kv": a.d_kv,
          "d_ff": a.d_ff, "num_heads": a.heads, "num_layers": a.enc_layers, "num_decoder_layers": a.dec_layers,
          "feed_forward_proj": "gated-gelu", "tie_word_embeddings": False, "relative_attention_num_buckets": 32,
          "relative_attention_max_distance": 128, "layer_norm_epsilon": 1e-6, "vocab_size": VOCAB, "pad_token_id": 0,
          "eos_token_id": 1, "decoder_start_token_id": 0, "dropout_rate": 0.1, "initializer_factor": 1.0,
          "is_encoder_decoder": True, "use_cache": True, "tokenizer_class": "T5Tokenizer", "torch_dtype": "bfloat16"}
json.dump(config, open(os.path.join(a.out, "config.json"), "w"), indent=2)
size = sum(os.path.getsize(os.path.join(a.out, f)) for f in ("config.json", "model.safetensors", "spiece.model"))
log(f"export: {size / 1e6:.2f} MB (config.json, model.safetensors, spiece.model)")

back = load_file(os.path.join(a.out, "model.safetensors"))
back = {k: v.float() for k, v in back.items()}
back["encoder.embed_tokens.weight"] = back["shared.weight"]; back["decoder.embed_tokens.weight"] = back["shared.weight"]
cfg.dropout_rate = 0.0
m32 = T5ForConditionalGeneration(cfg)
m32.encoder.set_input_embeddings(m32.shared); m32.decoder.set_input_embeddings(m32.shared)
m32.lm_head.weight = torch.nn.Parameter(torch.zeros(VOCAB, a.d_model))  # never tied to shared
missing, unexpected = m32.load_state_dict(back, strict=False)
assert not unexpected and all("embed_tokens" in k for k in missing), (missing, unexpected)
assert torch.equal(m32.lm_head.weight, back["lm_head.weight"]) and torch.equal(m32.shared.weight, back["shared.weight"])
m32.eval()
try:  # transformers' own loader must read the folder to the same model
    from transformers import AutoModelForSeq2SeqLM
    hf = AutoModelForSeq2SeqLM.from_pretrained(a.out, dtype=torch.float32).eval()
    xx = torch.tensor([enc(test[0]["src"], a.max_src)]); d0 = torch.tensor([[0, 5, 6]])
    with torch.no_grad():
        diff = float((hf(input_ids=xx, decoder_input_ids=d0).logits - m32(input_ids=xx, decoder_input_ids=d0).logits).abs().max())
    log(f"export: transformers' from_pretrained ({type(hf).__name__}) reads it back, max |logit diff| {diff:.2e}")
except Exception as e:  # record, do not lose the run
    log("export: from_pretrained check failed:", repr(e)[:300])


def decode(ids):  # generated ids -> text: up to </s>, sentinels and padding rows dropped
    ids = ids[: ids.index(1)] if 1 in ids else ids
    return sp.decode([i for i in ids if i < NSP])


# ---- 6. held-out ROUGE-L: greedy pseudo-summaries vs the lead baselines (GPU, float32, no TF32) ----
torch.backends.cuda.matmul.allow_tf32 = False
g = m32.to(dev)
metrics = {}
try:
    te = [(enc(e["src"], a.max_src), e) for e in test]
    hyps = []
    with torch.no_grad():
        for i in range(0, len(te), 64):
            chunk = te[i:i + 64]; L = max(len(s) for s, _ in chunk)
            x = torch.tensor([s + [0] * (L - len(s)) for s, _ in chunk], device=dev)
            out = g.generate(x, attention_mask=(x != 0).long(), max_new_tokens=a.max_tgt, do_sample=False, num_beams=1)
            hyps += [decode(o[1:].tolist()) for o in out]
    r_model = [rouge_l(h, e["tgt"]) for h, (_, e) in zip(hyps, te)]
    nch = lambda t: len("".join(t.split()))
    r_lead = [rouge_l(lead(e["src"], nch(e["tgt"])), e["tgt"]) for _, e in te]
    r_lead_doc = [rouge_l(lead(e["text"], nch(e["tgt"])), e["tgt"]) for _, e in te]
    mean = lambda v: sum(v) / len(v)
    metrics = {"test_examples": len(te), "test_documents": len({e["doc"] for _, e in te}),
               "rougeL_model_greedy": mean(r_model), "rougeL_lead_input": mean(r_lead), "rougeL_lead_document": mean(r_lead_doc),
               "model_beats_lead_input": mean(r_model) > mean(r_lead), "wins_vs_lead_input": sum(m > b for m, b in zip(r_model, r_lead)),
               "mean_output_chars": mean([nch(h) for h in hyps]), "mean_reference_chars": mean([nch(e["tgt"]) for _, e in te]),
               "train_seconds": round(train_s), "steps": step, "epochs": epoch, "best_valid_loss": best, "best_step": best_step,
               "parameters": nparam, "folder_bytes": size, "train_examples": len(tr), "train_tokens": ntok,
               "gpu": torch.cuda.get_device_name(0)}
    log("held-out ROUGE-L (character F1) over", len(te), "examples:",
        f"model greedy {metrics['rougeL_model_greedy']:.4f} | lead of the input, same length {metrics['rougeL_lead_input']:.4f}"
        f" | lead of the whole chunk, same length {metrics['rougeL_lead_document']:.4f}")
    with open(os.path.join(a.out, "samples.jsonl"), "w", encoding="utf-8") as f:
        for h, (_, e), rm, rl in list(zip(hyps, te, r_model, r_lead))[:40]:
            f.write(json.dumps({"src": e["src"], "tgt": e["tgt"], "greedy": h, "rougeL": rm, "rougeL_lead": rl}, ensure_ascii=False) + "\n")
except Exception as e:
    log("evaluation failed:", repr(e)[:500])
json.dump(metrics, open(os.path.join(a.out, "metrics.json"), "w"), indent=1)

# ---- 7. greedy_check.jsonl: CPU float32 greedy of the exported weights, clear top-1 margins only ----
m32 = m32.to("cpu"); torch.set_num_threads(min(16, os.cpu_count()))
checks, demos, MAXNEW = [], [], 48
demo = ["T5 PEGASUS:开源一个中文生成式预训练模型。它在中文摘要任务上表现很好。研究者使用伪摘要进行预训练。",
        "兰叶春葳蕤，桂华秋皎洁。欣欣此生意，自尔为佳节。谁知林栖者，闻风坐相悦。草木有本心，何求美人折？",
        "在 Debian 这种规模的项目中，很难避免遇到与你意见不和，或者难以合作的人。请接受这一事实，并保持礼貌。"]
cands = [("demo", t) for t in demo] + [("test", e["src"]) for e in test]
with torch.no_grad():
    for kind, text in cands:
        ids = enc(text, a.max_src)
        if kind == "test" and len(ids) > 200:
            continue
        o = m32.generate(torch.tensor([ids]), max_new_tokens=MAXNEW, do_sample=False, num_beams=1,
                         output_scores=True, return_dict_in_generate=True)
        margin = min(float(torch.topk(s[0], 2).values[0] - torch.topk(s[0], 2).values[1]) for s in o.scores)
        gen = o.sequences[0, 1:].tolist()
        c = {"text": text, "input_ids": ids, "max_new_tokens": MAXNEW, "ids": gen, "output": decode(gen),
             "min_top2_margin": round(margin, 4)}
        if kind == "demo":
            demos.append(c)
        if margin >= 0.05:  # a near tie could flip under another float32 summation order
            checks.append(c)
        if len(checks) >= 10:
            break
with open(os.path.join(a.out, "greedy_check.jsonl"), "w", encoding="utf-8") as f:
    for c in checks:
        f.write(json.dumps(c, ensure_ascii=False) + "\n")
log(f"greedy_check: {len(checks)} inputs; min margins {[c['min_top2_margin'] for c in checks]}")
with open(os.path.join(a.out, "demos.jsonl"), "w", encoding="utf-8") as f:
    for c in demos:
        f.write(json.dumps(c, ensure_ascii=False) + "\n")
        log("demo:", c["text"][:40], "->", c["output"], "(margin", c["min_top2_margin"], ")")
log("done")
