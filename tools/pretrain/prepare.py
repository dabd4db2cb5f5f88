# prepare.py - the CPU half of the default model's data pipeline (run here, with Debian's python3 and
# python3-jieba): documents -> chunks of whole sentences -> PEGASUS pseudo-summaries, a held-out split
# by document, and the jieba-marked text the SentencePiece tokenizer is trained on.
# Not the shuffle (build/shuffle does it, see README.md) and not the tokenizer training (train.py does
# it on the accelerator machine, where sentencepiece 0.2 has pretokenization_delimiter).
# usage: /usr/bin/python3 prepare.py DOCS.jsonl OUTDIR [--max-chars 400] [--heldout-percent 3] [--shifts 4] [--jobs 2]
# writes OUTDIR/train.jsonl, OUTDIR/heldout.jsonl ({"doc", "src", "tgt"} a line, held-out lines also "text",
# the chunk) and OUTDIR/spm_train.txt (training documents, a sentence a line, jieba words joined by U+E000)
import argparse, json, multiprocessing, os, re, sys, zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pegasus import split_sentences, join_sentences, pseudo_summary  # noqa: E402

DELIM = "\ue000"  # jieba word boundary mark for spm training (a private-use character, absent from text)


def chunks(sents, max_chars, offset=0):
    """Consecutive runs of whole sentences of at most max_chars characters (a longer sentence is cut),
    starting `offset` characters into the document (a second, shifted chunking for augmentation)."""
    sents = [s[:max_chars] for s in sents]
    if offset:
        k, n = 0, 0
        while k < len(sents) and n < offset:
            n += len(sents[k]); k += 1
        sents = sents[k:]
    cur, n = [], 0
    for s in sents:
        if cur and n + len(s) > max_chars:
            yield cur
            cur, n = [], 0
        cur.append(s); n += len(s)
    if cur:
        yield cur


def work(item):
    key, text, max_chars, offsets, is_held = item
    sents = split_sentences(text)
    out = []
    for off in offsets:
        for ch in chunks(sents, max_chars, off):
            if len(ch) < 2 or sum(len(s) for s in ch) < 30:
                continue
            src, tgt = pseudo_summary(ch)
            ex = {"doc": key, "src": join_sentences(src), "tgt": join_sentences(tgt)}
            if is_held:  # held out: keep the chunk itself for the lead-of-document baseline
                ex["text"] = join_sentences(ch)
            out.append(ex)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("docs"); ap.add_argument("outdir")
    ap.add_argument("--max-chars", type=int, default=400)
    ap.add_argument("--heldout-percent", type=int, default=3)
    ap.add_argument("--shifts", type=int, default=4, help="chunkings of each training document")
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    docs = [json.loads(l) for l in open(a.docs, encoding="utf-8")]
    items, held = [], set()
    for i, d in enumerate(docs):
        # the same manual page in zh_CN and zh_TW is one document for the split
        key = re.sub(r"/zh_(CN|TW)/", "/", d["source"])
        if key.startswith("fortunes"):
            key += "#%d" % i
        is_held = zlib.crc32(key.encode()) % 100 < a.heldout_percent
        if is_held:
            held.add(key)
        # training documents are chunked --shifts times, each shifted by max_chars/shifts (more
        # distinct pseudo-summaries from little text); held-out ones once
        shifts = [k * a.max_chars // a.shifts for k in range(a.shifts)]
        items.append((key, d["text"], a.max_chars, [0] if is_held else shifts, is_held))
    with multiprocessing.Pool(a.jobs) as pool:
        results = pool.map(work, items, chunksize=8)
    ntr = nho = 0
    import jieba
    jieba.setLogLevel(60)
    with open(os.path.join(a.outdir, "train.jsonl"), "w", encoding="utf-8") as ftr, \
         open(os.path.join(a.outdir, "heldout.jsonl"), "w", encoding="utf-8") as fho, \
         open(os.path.join(a.outdir, "spm_train.txt"), "w", encoding="utf-8") as fsp:
        for (key, text, _, _, _), res in zip(items, results):
            f = fho if key in held else ftr
            for r in res:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
            if key in held:
                nho += len(res)
                continue
            ntr += len(res)
            for s in split_sentences(text):  # tokenizer text: whole training documents, jieba-marked
                fsp.write(DELIM.join(w for w in jieba.cut(s, HMM=False)) + "\n")
    print(f"{len(docs)} documents ({len(held)} held out): {ntr} training and {nho} held-out examples", file=sys.stderr)


if __name__ == "__main__":
    main()
