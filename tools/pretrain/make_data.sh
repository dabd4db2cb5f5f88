#!/bin/sh
# make_data.sh - the CPU half of the default model's recipe, end to end: documents, pseudo-summaries,
# held-out split, shuffle (build/shuffle), tokenizer, and the compressed files train.py reads on the
# accelerator machine. Deterministic: the same Debian packages give the same files.
# Not the training (train.py, on the accelerator machine; see README.md beside this file).
# usage: tools/pretrain/make_data.sh OUTDIR     (from the repository root, after `make`)
#   writes OUTDIR/docs.jsonl, OUTDIR/data/{train,heldout}.jsonl(.xz), OUTDIR/data/spm_train.txt,
#   OUTDIR/spiece.model (+ .vocab, .words.tsv). About 10 minutes on 2 cores.
set -eu
out=${1:?usage: make_data.sh OUTDIR}
here=$(dirname "$0")
[ -x build/shuffle ] || { echo "make_data: build/shuffle is missing: run make first" >&2; exit 1; }
mkdir -p "$out/data"
sh tools/make_documents.sh "$out/docs.jsonl"
/usr/bin/python3 "$here/prepare.py" "$out/docs.jsonl" "$out/data" --max-chars 400 --heldout-percent 3 --shifts 4 --jobs 2
build/shuffle -m 64M -s 6 -o "$out/data/train.shuf.jsonl" "$out/data/train.jsonl"
/usr/bin/python3 "$here/tokenizer.py" "$out/data/spm_train.txt" "$out/spiece" --vocab 8000
xz -T2 -6 -c "$out/data/train.shuf.jsonl" > "$out/data/train.jsonl.xz"
xz -T2 -6 -c "$out/data/heldout.jsonl" > "$out/data/heldout.jsonl.xz"
echo "make_data: done; carry $out/spiece.model, $out/data/*.xz, $here/train.py and $here/pegasus.py to the accelerator machine"
