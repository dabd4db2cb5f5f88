#!/bin/bash
# Differential test of the Unigram tokenizer against Debian's SentencePiece 0.1.97.
# Builds the ~10 MB corpus with tools/make_corpus.sh, trains four models on
# every 8th line with spm_train (vocab 6000 / 3000 / 4500 / 2500; byte_fallback off and
# on; nmt_nfkc, identity and nfkc_cf normalization; user-defined symbols; no
# remove_extra_whitespaces; treat_whitespace_as_suffix), then encodes the WHOLE corpus
# plus 3000 lines of random bytes (invalid UTF-8, odd whitespace, user symbols) with
# `$BUILD/t5 tokenize` and with `spm_encode --output_format=id`, for those four models
# and the two fixture models, and requires zero differing lines. n-best (4) is compared
# with python3-sentencepiece's nbest_encode_as_ids on 1500 corpus lines per model and 9
# long lines that overflow the A* agenda, and
# the byte offsets of `--format json` with SentencePiece's piece begin/end on the 1534
# lines of the fixtures' tok_public.txt plus those 1500 corpus lines. Decoding of the
# corpus ids and of 3000 random id lines is compared with spm_decode.
# Run time: about 4-7 minutes on the shared 2-core machine (corpus build ~80 s,
# training ~60 s, then per model: encode + decode of the corpus both ways, n-best and
# offsets through Python).
set -eu
root=$(pwd)
T5="$root/$BUILD/t5"
cd "$WORK"
command -v spm_train >/dev/null && command -v spm_encode >/dev/null ||
  { echo "spm_train/spm_encode missing (Debian package sentencepiece)"; exit 1; }
sh "$root/tools/make_corpus.sh" corpus.txt
[ "$(wc -l < corpus.txt)" -gt 100000 ] || { echo "corpus too small"; exit 1; }
awk 'NR % 8 == 0' corpus.txt > train.txt

train() { # name vocab extra-args...
  local name=$1 vocab=$2; shift 2
  spm_train --input=train.txt --model_prefix="$name" --vocab_size="$vocab" --model_type=unigram \
    --num_threads=1 --minloglevel=2 "$@" > "$name.log" 2>&1 || { cat "$name.log"; return 1; }
}
train m_nfkc_6000 6000 --character_coverage=0.995 --normalization_rule_name=nmt_nfkc &
train m_ident_bf_3000 3000 --character_coverage=0.98 --byte_fallback=true \
  --normalization_rule_name=identity --user_defined_symbols='<sep>,<cls>' &
wait %1 && wait %2
train m_nfkc_bf_keepws_4500 4500 --character_coverage=0.99 --byte_fallback=true \
  --remove_extra_whitespaces=false --normalization_rule_name=nmt_nfkc --user_defined_symbols='<sep>' &
train m_nfkccf_suffix_2500 2500 --character_coverage=0.98 --treat_whitespace_as_suffix=true \
  --normalization_rule_name=nfkc_cf &
wait %1 && wait %2

# odd inputs: random bytes mixed with tricky characters, one line each
/usr/bin/python3 - > odd.txt <<'EOF'
import random, sys
r = random.Random(7)
pool = ['a', 'b', ' ', '  ', '\t', '中', '文', '\u3000', '\uff21', '\ufb01', '\u00e9', 'e\u0301', '<sep>',
        '<se', '\ufffd', '😀', '\u200b', '\x7f', '\x01', '<cls>', '▁']
out = sys.stdout.buffer
for i in range(3000):
    parts = [bytes([r.randrange(256)]) if r.random() < 0.3 else r.choice(pool).encode()
             for k in range(r.randint(0, 30))]
    out.write(b''.join(parts).replace(b'\n', b' ') + b'\n')
EOF
cat corpus.txt odd.txt > all.txt
lines=$(wc -l < all.txt)
awk 'NR % 180 == 1' corpus.txt > nbest_in.txt
# long lines whose A* agenda overflows (SentencePiece 0.1.97 shrinks it at 10000 entries)
/usr/bin/python3 - >> nbest_in.txt <<'EOF'
import random
r = random.Random(1)
words = open('corpus.txt', encoding='utf-8', errors='replace').read().split()[:200000]
for n in (500, 2000, 8000, 12000):
    print(' '.join(r.choice(words) for _ in range(n // 5)))
for s in ('ab' * 3000, '中文' * 2000, 'a' * 5000, '的' * 3000, 'hello world ' * 700):
    print(s)
EOF

fail=0
for m in m_nfkc_6000 m_ident_bf_3000 m_nfkc_bf_keepws_4500 m_nfkccf_suffix_2500 \
         "$FIXTURES/tokenizer/spm_a" "$FIXTURES/tokenizer/spm_c"; do
  name=$(basename "$m")
  "$T5" tokenize --model "$m.model" < all.txt > ours.txt
  spm_encode --model="$m.model" --output_format=id < all.txt > ref.txt
  n_ours=$(wc -l < ours.txt); n_ref=$(wc -l < ref.txt)
  diffs=$(diff ref.txt ours.txt | grep -c '^>' || true)
  echo "$name: $lines lines ($(wc -c < all.txt) bytes), ours $n_ours, spm_encode $n_ref, differing lines: $diffs"
  if [ "$diffs" != 0 ] || [ "$n_ours" != "$lines" ] || [ "$n_ref" != "$lines" ]; then fail=1; fi
  # decode: the corpus ids and 3000 random id lines, against spm_decode
  vocab=$(spm_export_vocab --model="$m.model" | wc -l)
  /usr/bin/python3 -c "
import random; r = random.Random(5)
for i in range(3000): print(' '.join(str(r.randrange($vocab) if r.random() < 0.7 else r.randrange(min($vocab, 300))) for _ in range(r.randint(0, 20))))" > rand_ids.txt
  cat ref.txt rand_ids.txt > dec_in.txt
  "$T5" detokenize --model "$m.model" < dec_in.txt > dec_ours.txt
  spm_decode --model="$m.model" --input_format=id < dec_in.txt > dec_ref.txt
  if cmp -s dec_ref.txt dec_ours.txt; then
    echo "$name: decode of $(wc -l < dec_in.txt) id lines identical to spm_decode"
  else
    echo "$name: decode differs from spm_decode: $(diff dec_ref.txt dec_ours.txt | grep -c '^>') lines"; fail=1
  fi
  # n-best against SentencePiece's NBestEncode
  "$T5" tokenize --model "$m.model" --nbest 4 < nbest_in.txt > ours_nb.txt
  /usr/bin/python3 - "$m.model" nbest_in.txt > ref_nb.txt 2> ref_nb.log <<'EOF'
import sentencepiece as spm, sys
sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
for line in open(sys.argv[2], encoding='utf-8', newline='\n').read().split('\n')[:-1]:
    print('\t'.join(' '.join(map(str, ids)) for ids in sp.nbest_encode_as_ids(line, 4)))
EOF
  nd=$(diff ref_nb.txt ours_nb.txt | grep -c '^>' || true)
  echo "$name: n-best 4 on $(wc -l < nbest_in.txt) lines, differing lines: $nd"
  [ "$nd" = 0 ] && [ "$(wc -l < ours_nb.txt)" = "$(wc -l < nbest_in.txt)" ] || fail=1
  # offsets against SentencePiece's pieces (its Python API reports character offsets)
  cat "$FIXTURES/tokenizer/tok_public.txt" nbest_in.txt > offs_in.txt
  "$T5" tokenize --model "$m.model" --format json < offs_in.txt > ours_off.json
  /usr/bin/python3 - "$m.model" offs_in.txt ours_off.json <<'EOF' || fail=1
import sentencepiece as spm, sys, json
sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
lines = open(sys.argv[2], encoding='utf-8', newline='\n').read().split('\n')[:-1]
ours = open(sys.argv[3], encoding='utf-8').read().split('\n')[:-1]
assert len(lines) == len(ours), (len(lines), len(ours))
bad = 0
for text, o in zip(lines, ours):
    o = json.loads(o)
    b = text.encode('utf-8')
    mine = [(i, len(b[:s].decode('utf-8')), len(b[:e].decode('utf-8'))) for i, (s, e) in zip(o['ids'], o['offsets'])]
    ref = [(p.id, p.begin, p.end) for p in sp.encode(text, out_type='immutable_proto').pieces]
    if mine != ref:
        bad += 1
        if bad <= 3: print('offsets differ:', repr(text[:40]), ref[:8], mine[:8])
print(f'{sys.argv[1].split("/")[-1]}: offsets on {len(lines)} lines, differing lines: {bad}')
sys.exit(1 if bad else 0)
EOF
done
[ $fail = 0 ] && echo "tok-diff: no differences"
exit $fail
