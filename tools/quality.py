# quality.py - the Python half of tools/quality.sh (Debian's /usr/bin/python3: sentencepiece):
#   heldout DOCS OUT [HALF]  the default model's 270 held-out test examples (HALF "val": the 426
#                      of the validation half, which chose the checkpoint and no weight), rebuilt
#                      exactly as tools/pretrain/prepare.py + train.py cut them (held-out
#                      documents by the crc32 rule, their pseudo-summaries), written as OUT.jsonl
#                      and OUT.ids (train.py's encoder input: spm ids cut to 255, then </s>);
#                      the documents come from Debian packages whose updates change a page now
#                      and then, so models/default/heldout/ keeps the sets the model card measured
#   ids JSONL OUT      OUT.ids of held-out examples JSONL (the encoder input, as heldout writes it)
#   pair IDS GEN OUT   `input ids<TAB>generated ids` lines for `t5 score --input ids`
#   decode SPM GEN OUT generated id lines -> text lines, as train.py decodes (up to </s>, no sentinels)
#   rouge A B [REF]    mean character ROUGE-L of text lines A against B (and of A against the
#                      references' "tgt" in REF.jsonl): prints "vs_b X" and "vs_ref Y"
#   share DIR CLASS    the fraction of the weight-matrix parameters in a matrix class (t5.h T5_MATS_*)
#   agg SCORES         totals of `t5 score --ref-compute-type` JSON lines: "agree A kl K tokens N"
# Not a trainer and not an evaluator of its own: ROUGE-L is pegasus.py's (train.py's numbers).
import json, os, re, sys, zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "pretrain"))


def heldout(docs, out, half="test"):
    from prepare import work  # noqa: E402 (tools/pretrain/prepare.py: chunks + pseudo-summaries)
    import sentencepiece as spm
    examples = []
    for i, line in enumerate(open(docs, encoding="utf-8")):
        d = json.loads(line)
        key = re.sub(r"/zh_(CN|TW)/", "/", d["source"])  # prepare.py's split key
        if key.startswith("fortunes"):
            key += "#%d" % i
        c = zlib.crc32(key.encode())
        if c % 100 < 3 and c % 2 == (half == "test"):  # held out: test half (odd), validation half
            examples += work((key, d["text"], 400, [0], True))
    with open(out + ".jsonl", "w", encoding="utf-8") as fj:
        for e in examples:
            fj.write(json.dumps(e, ensure_ascii=False) + "\n")
    ids(out + ".jsonl", out + ".ids")
    print(f"{len(examples)} {half} examples from {len({e['doc'] for e in examples})} documents", file=sys.stderr)


def ids(jsonl, out):
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=os.path.join(HERE, "..", "models", "default", "spiece.model"))
    with open(out, "w") as fi:
        for line in open(jsonl, encoding="utf-8"):
            fi.write(" ".join(map(str, sp.encode(json.loads(line)["src"])[:255] + [1])) + "\n")


def pair(ids, gen, out):
    with open(out, "w") as f:
        for a, b in zip(open(ids), open(gen)):
            f.write(a.strip() + "\t" + b.strip() + "\n")


def decode(spm_path, gen, out):
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=spm_path)
    n = sp.get_piece_size()
    with open(out, "w", encoding="utf-8") as f:
        for line in open(gen):
            ids = [int(x) for x in line.split()]
            ids = ids[: ids.index(1)] if 1 in ids else ids
            f.write(sp.decode([i for i in ids if i < n]).replace("\n", " ") + "\n")


def rouge(a, b, ref=None):
    from pegasus import rouge_l
    A = open(a, encoding="utf-8").read().split("\n")[:-1]
    B = open(b, encoding="utf-8").read().split("\n")[:-1]
    assert len(A) == len(B), (a, b)
    print("vs_b %.4f" % (sum(rouge_l(x, y) for x, y in zip(A, B)) / len(A)))
    if ref:
        R = [json.loads(l)["tgt"] for l in open(ref, encoding="utf-8")]
        print("vs_ref %.4f" % (sum(rouge_l(x, y) for x, y in zip(A, R)) / len(A)))


def share(folder, cls):
    """Fraction of the weight-matrix parameters in matrix class cls (t5.h's T5_MATS_* names)."""
    c = json.load(open(os.path.join(folder, "config.json")))
    d, inner, ff, V = c["d_model"], c["num_heads"] * c["d_kv"], c["d_ff"], c["vocab_size"]
    le, ld = c["num_layers"], c.get("num_decoder_layers", c["num_layers"])
    gated = c.get("feed_forward_proj", "relu").startswith("gated")
    tied = c.get("tie_word_embeddings", True)
    wi = (2 if gated else 1) * ff * d
    a = 2 * inner * d  # q and k, or v and o, of one layer's attention
    n = {"enc-qk": le * a, "enc-vo": le * a, "enc-wi": le * wi, "enc-wo": le * ff * d, "dec-self-qk": ld * a,
         "dec-self-vo": ld * a, "dec-cross-qk": ld * a, "dec-cross-vo": ld * a, "dec-wi": ld * wi,
         "dec-wo": ld * ff * d, "head": 0 if tied else V * d, "embed": V * d}
    print("%.3f" % (n[cls] / sum(n.values())))


def agg(path):
    agree = tokens = 0
    kl = 0.0
    for line in open(path):
        o = json.loads(line)
        agree += o["agree"]; tokens += o["n"]; kl += o["kl"] * o["n"]
    print("agree %.4f kl %.3g tokens %d" % (agree / tokens, kl / tokens, tokens))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"heldout": heldout, "ids": ids, "pair": pair, "decode": decode, "rouge": rouge, "share": share, "agg": agg}[cmd](*args)
