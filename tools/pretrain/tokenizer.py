# tokenizer.py - trains the default model's Unigram SentencePiece tokenizer so that its pieces are
# Chinese words and never cross a jieba word boundary (T5 PEGASUS's improvement for Chinese), while
# serving needs no jieba: t5serve encodes raw text with the Unigram model alone.
# Method: prepare.py marks jieba word boundaries in the training documents; here every jieba word
# (a run of whitespace joined to the word after it, as " word") is counted, and SentencePiece 0.1.97
# is trained on that word-frequency list (--input_format=tsv): each word is a separate training
# sentence, so no seed piece and hence no final piece can span two words. This is what sentencepiece
# 0.2's pretokenization_delimiter does; it runs here, with Debian's sentencepiece, which is also the
# reference t5serve's tokenizer is checked against. Training sees words, not texts, so it runs
# without the dummy-prefix and whitespace normalization; the saved model then gets the usual
# whitespace cleanup back (remove_extra_whitespaces), and keeps add_dummy_prefix off: a text is
# encoded as its words, with no leading "▁".
# Not the model training (train.py) and not a tokenizer implementation.
# usage: /usr/bin/python3 tokenizer.py SPM_TRAIN.txt OUT_PREFIX [--vocab 8000]
#   writes OUT_PREFIX.model / .vocab / .words.tsv
import argparse, collections, os, re, sys

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as pb

DELIM = "\ue000"  # prepare.py's jieba boundary mark

ap = argparse.ArgumentParser()
ap.add_argument("text"); ap.add_argument("prefix")
ap.add_argument("--vocab", type=int, default=8000)
a = ap.parse_args()

counts = collections.Counter()
space = re.compile(r"\s+")
with open(a.text, encoding="utf-8") as f:
    for line in f:
        pending = ""
        for w in line.rstrip("\n").split(DELIM):
            if not w.strip():  # whitespace: kept as one space before the next word
                pending = " " if w else pending
                continue
            lead = " " if (pending or w[0].isspace()) else ""
            counts[lead + space.sub(" ", w.strip())] += 1
            pending = ""
tsv = a.prefix + ".words.tsv"
with open(tsv, "w", encoding="utf-8") as f:
    for w, c in counts.most_common():
        if "\t" not in w:
            f.write(f"{w}\t{c}\n")
print(f"{len(counts)} distinct words, {sum(counts.values())} in all", file=sys.stderr)

spm.SentencePieceTrainer.train(
    input=tsv, input_format="tsv", model_prefix=a.prefix, model_type="unigram", vocab_size=a.vocab,
    character_coverage=0.9995, byte_fallback=True, pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
    add_dummy_prefix=False, remove_extra_whitespaces=False, num_threads=os.cpu_count(),
    minloglevel=1)

m = pb.ModelProto()
m.ParseFromString(open(a.prefix + ".model", "rb").read())
m.normalizer_spec.remove_extra_whitespaces = True
open(a.prefix + ".model", "wb").write(m.SerializeToString())

sp = spm.SentencePieceProcessor(model_file=a.prefix + ".model")
multi = sum(1 for i in range(sp.get_piece_size()) if len(sp.id_to_piece(i)) > 1 and not sp.id_to_piece(i).startswith("<"))
print(f"{sp.get_piece_size()} pieces, {multi} of more than one character;",
      "sample:", sp.encode("今天天气很好，我们去公园散步。Hello world!", out_type=str), file=sys.stderr)
