#!/bin/bash
# Speed of the T5 PEGASUS tokenizer next to its reference in the same run, on the same corpus:
#   C:      build/wp_bench (tokenizer/jieba.c + wordpiece.c), one thread, best of 3;
#   Python: Debian's python3-jieba 0.42.1 `jieba.cut(line, HMM=False)`, then per word the vocab
#           lookup or BERT basic tokenization + WordPiece. transformers is not installed here, so
#           the BERT step is a faithful transcription of transformers' BasicTokenizer and
#           WordpieceTokenizer (tokenization_bert.py, the slow tokenizer that made the fixtures),
#           one pass.
# Times are CPU times of each (single-threaded) process, so that neighbours on a shared machine
# do not count.
# Also the dictionary load time (C: parse dict.txt into the trie; Python: jieba's gen_pfdict on
# the same dict.txt, i.e. without its marshal cache).
# usage: tools/bench_wordpiece.sh [CORPUS] [VOCAB]   (BENCH_BYTES: corpus bytes to use, default 3000000;
#        without CORPUS it builds one with tools/make_corpus.sh)
set -eu
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
vocab=${2:-tests/fixtures/pegasus-tokenizer/vocab.txt}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
corpus=${1:-}
if [ -z "$corpus" ]; then
  corpus=$tmp/corpus.txt
  sh tools/make_corpus.sh "$corpus" >/dev/null
fi
head -c "${BENCH_BYTES:-3000000}" "$corpus" | sed '$d' > "$tmp/bench.txt"  # whole lines only
make -s build/wp_bench
echo "== corpus: $(wc -l < "$tmp/bench.txt") lines, $(wc -c < "$tmp/bench.txt") bytes"
build/wp_bench "$vocab" "$tmp/bench.txt" | tee "$tmp/c.txt"
"$PY" - "$vocab" "$tmp/bench.txt" <<'PYEOF' | tee "$tmp/py.txt"
import sys, time, unicodedata, jieba
jieba.setLogLevel(60)
vocab_file, corpus = sys.argv[1], sys.argv[2]
vocab = {}
for i, t in enumerate(open(vocab_file, encoding="utf-8").read().split("\n")):
    if t and t not in vocab:
        vocab[t] = i

# transformers' BasicTokenizer (do_lower_case, strip_accents None, tokenize_chinese_chars) and
# WordpieceTokenizer (max_input_chars_per_word 100), transcribed.
def _is_whitespace(c):
    return c in " \t\n\r" or unicodedata.category(c) == "Zs"
def _is_control(c):
    return c not in "\t\n\r" and unicodedata.category(c).startswith("C")
def _is_punctuation(c):
    cp = ord(c)
    return 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126 or unicodedata.category(c).startswith("P")
def _is_chinese_char(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)
def whitespace_tokenize(text):
    text = text.strip()
    return text.split() if text else []
def basic_tokenize(text):
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or _is_control(ch):
            continue
        out.append(" " if _is_whitespace(ch) else ch)
    text = "".join(" " + c + " " if _is_chinese_char(ord(c)) else c for c in "".join(out))
    text = unicodedata.normalize("NFC", text)
    split_tokens = []
    for token in whitespace_tokenize(text):
        token = token.lower()
        token = "".join(c for c in unicodedata.normalize("NFD", token) if unicodedata.category(c) != "Mn")
        output, start_new = [], True
        for c in token:
            if _is_punctuation(c):
                output.append([c]); start_new = True
            else:
                if start_new:
                    output.append([])
                start_new = False
                output[-1].append(c)
        split_tokens.extend("".join(x) for x in output)
    return whitespace_tokenize(" ".join(split_tokens))
def wordpiece(text):
    output = []
    for token in whitespace_tokenize(text):
        chars = list(token)
        if len(chars) > 100:
            output.append("[UNK]"); continue
        is_bad, start, sub = False, 0, []
        while start < len(chars):
            end, cur = len(chars), None
            while start < end:
                s = "".join(chars[start:end])
                if start > 0:
                    s = "##" + s
                if s in vocab:
                    cur = s; break
                end -= 1
            if cur is None:
                is_bad = True; break
            sub.append(cur); start = end
        output.extend(["[UNK]"] if is_bad else sub)
    return output

t0 = time.process_time()
jieba.Tokenizer.gen_pfdict(open(jieba.get_dict_file().name, "rb"))
t1 = time.process_time()
jieba.initialize()
lines = open(corpus, encoding="utf-8", newline="").read().split("\n")[:-1]
mb = sum(len(l.encode("utf-8")) + 1 for l in lines) / 1e6
t2 = time.process_time()
nw = sum(1 for l in lines for w in jieba.cut(l, HMM=False))
t3 = time.process_time()
cls, sep, unk = vocab["[CLS]"], vocab["[SEP]"], vocab["[UNK]"]
nt, all_ids = 0, []
for l in lines:
    toks = []
    for w in jieba.cut(l, HMM=False):
        toks.extend([w] if w in vocab else [p for t in basic_tokenize(w) for p in wordpiece(t)])
    ids = [cls] + [vocab.get(t, unk) for t in toks] + [sep]
    nt += len(ids)
    all_ids.extend(ids)
t4 = time.process_time()
h = 1469598103934665603
for i in all_ids:  # FNV-1a over every id as 4 little-endian bytes, as wp_bench
    for b in i.to_bytes(4, "little"):
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
print("Py  load: dictionary (jieba gen_pfdict) %.1f ms" % ((t1 - t0) * 1e3))
print("Py  corpus: %d lines, %.2f MB, %d jieba words, %d ids, ids hash %016x" % (len(lines), mb, nw, nt, h))
print("Py  jieba only: %.2f MB/s   jieba + BERT WordPiece (encode): %.2f MB/s" % (mb / (t3 - t2), mb / (t4 - t3)))
PYEOF
c=$(sed -n 's/.*ids hash \([0-9a-f]*\).*/\1/p' "$tmp/c.txt"); p=$(sed -n 's/.*ids hash \([0-9a-f]*\).*/\1/p' "$tmp/py.txt")
if [ -n "$c" ] && [ "$c" = "$p" ]; then echo "ids: identical (hash $c)"; else echo "ids: DIFFER (C $c, Python $p)"; exit 1; fi
