#!/bin/bash
# build/shuffle (tools/shuffle.c): out-of-core uniform line shuffle under a memory bound.
# Checks, on a 100,000-line file 7 times larger than the -m bound (so lines go through temporary
# buckets): the output is a permutation of the input (sorted equal, byte for byte); positions are
# not correlated with input order (Spearman's rho within 5/sqrt(n-1), i.e. 5 standard deviations
# of rho under a uniform permutation, and a 10x10 chi-square of input decile vs output decile);
# every one of the 24 orders of 4 lines appears about equally often through the bucket path
# (chi-square, 23 degrees of freedom); seeds reproduce and differ; pipes (unknown size) work and
# give the same output as the file for the same seed; -o replaces its file only when the run
# succeeded (a failed run leaves it as it was, mode kept); a line longer than the bound fails as
# soon as it is read, not at the end of the input;
# peak memory stays within the bound (plain build only); no temporary file is left; bad input
# and bad options get clear errors that do not echo paths. Run time: about 12 s (40 s under ASan).
# asan: yes
set -eu
S="$(cd "$BUILD" && pwd)/shuffle"
PY=/usr/bin/python3
T="$WORK/tmp"; mkdir -p "$T"
cd "$WORK"

# 100,000 distinct numbered lines of 8..68 bytes, about 3.7 MB
$PY - <<'EOF'
import random
r = random.Random(1)
with open("in.txt", "w") as f:
    for i in range(100000):
        f.write("%d\t%s\n" % (i, "x" * r.randint(0, 60)))
EOF
size=$(stat -c %s in.txt)
echo "input: $size bytes, memory bound 512K"
[ "$size" -gt $((6 * 512 * 1024)) ]

"$S" -m 512K -s 1 -T "$T" -o out1.txt in.txt
"$S" -m 512K -s 1 -T "$T" in.txt > out1b.txt
"$S" -m 512K -s 2 -T "$T" in.txt > out2.txt
"$S" -m 512K -s 3 -T "$T" < in.txt > out3.txt
cat in.txt | "$S" -m 512K -s 4 -T "$T" > out4.txt # a pipe: size unknown
cat in.txt | "$S" -m 512K -s 1 -T "$T" > out1p.txt
cmp out1.txt out1b.txt || { echo "the same seed gave different outputs"; exit 1; }
cmp out1.txt out1p.txt || { echo "the same seed gave different outputs for a file and a pipe of it"; exit 1; }
sort in.txt > sorted.txt
for o in out1 out2 out3 out4; do
  sort $o.txt | cmp - sorted.txt || { echo "$o is not a permutation of the input"; exit 1; }
done
! cmp -s out1.txt out2.txt || { echo "seeds 1 and 2 gave the same order"; exit 1; }
! cmp -s out2.txt out3.txt || { echo "seeds 2 and 3 gave the same order"; exit 1; }
! cmp -s out1.txt in.txt || { echo "the output is the input order"; exit 1; }
[ -z "$(ls -A "$T")" ] || { echo "temporary files left behind"; exit 1; }

$PY - out1.txt out2.txt out3.txt out4.txt <<'EOF'
import sys, numpy as np
for path in sys.argv[1:]:
    pos = np.array([int(l.split("\t", 1)[0]) for l in open(path)], dtype=np.float64)
    n = len(pos)
    # input index of the line at each output position; both are ranks already (a permutation)
    out_rank = np.arange(n, dtype=np.float64)
    rho = np.corrcoef(pos, out_rank)[0, 1]
    bound = 5.0 / np.sqrt(n - 1)
    # 10x10 contingency of input decile vs output decile: expected n/100 in each cell
    table = np.zeros((10, 10))
    np.add.at(table, ((pos * 10 // n).astype(int), (out_rank * 10 // n).astype(int)), 1)
    chi2 = ((table - n / 100) ** 2 / (n / 100)).sum()
    print(f"{path}: n={n} spearman rho={rho:+.5f} (bound {bound:.5f}), decile chi2={chi2:.1f} (81 dof, bound 140)")
    assert abs(rho) < bound, "positions correlated with input order"
    assert chi2 < 140, "output deciles depend on input deciles"  # p < 1e-6 under uniformity
EOF

# uniformity through the bucket path: 4 lines of 20 kB do not fit in a 64K bound (48 kB arena)
$PY - <<'EOF'
with open("four.txt", "w") as f:
    for c in "abcd":
        f.write(c * 20000 + "\n")
EOF
runs=240; [ "$(basename "$BUILD")" = build ] || runs=120 # ASan start-up is slow: 5 per order, still chi-square-sized
for seed in $(seq 1 $runs); do "$S" -m 64K -s "$seed" -T "$T" four.txt | cut -c1 | tr -d '\n'; echo; done > orders.txt
$PY - <<'EOF'
import collections, itertools
c = collections.Counter(l.strip() for l in open("orders.txt"))
perms = ["".join(p) for p in itertools.permutations("abcd")]
assert set(c) <= set(perms), f"not a permutation: {set(c) - set(perms)}"
n = sum(c.values()); e = n / 24
chi2 = sum((c[p] - e) ** 2 / e for p in perms)
print(f"4-line orders over {n} seeds: {len(c)} of 24 seen, chi2={chi2:.1f} (23 dof, bound 53.5)")
assert chi2 < 53.5  # p < 1e-4 under uniformity (an order never seen adds its expected count)
EOF
[ -z "$(ls -A "$T")" ] || { echo "temporary files left behind"; exit 1; }

# memory: peak RSS over that of a run through the same code with a 64K bound stays under the
# bound (not under ASan, whose shadow memory says nothing about the program's own). Two runs of
# the same command differ by up to ~200 kB of RSS here (shared-library pages, page rounding), so
# 256 kB of slack; reading the 3.7 MB input into memory would still exceed it by 1.4 MB.
if [ "$(basename "$BUILD")" = build ] && [ -x /usr/bin/time ]; then
  base=$(/usr/bin/time -f %M "$S" -m 64K -s 1 -T "$T" four.txt 2>&1 >/dev/null)
  peak=$(/usr/bin/time -f %M "$S" -m 2M -s 1 -T "$T" in.txt 2>&1 >/dev/null)
  echo "peak RSS: $peak kB for a 3.7 MB input with -m 2M (baseline $base kB)"
  [ "$peak" -le $((base + 2048 + 256)) ] || { echo "memory bound exceeded"; exit 1; }
fi

# edge cases: empty input, last line without newline, empty lines, CR, NUL bytes
: > empty.txt
[ "$("$S" -s 1 empty.txt | wc -c)" -eq 0 ]
printf 'a\n\nb\r\n\0c\nlast' > edge.txt
"$S" -s 5 edge.txt > edge.out
printf 'a\n\nb\r\n\0c\nlast\n' | sort > edge.sorted
sort edge.out | cmp - edge.sorted || { echo "edge-case lines changed"; exit 1; }

# errors: exit status and message, no path echoed
expect_err() { # status substring command...
  local want=$1 sub=$2; shift 2
  set +e; "$@" > err.out 2> err.txt; local rc=$?; set -e
  [ "$rc" -eq "$want" ] || { echo "exit $rc, wanted $want: $*"; cat err.txt; exit 1; }
  grep -q "$sub" err.txt || { echo "no '$sub' in: $(cat err.txt)"; exit 1; }
  ! grep -q "secret-dir" err.txt || { echo "path echoed: $(cat err.txt)"; exit 1; }
  echo "ok: $*: $(head -c 100 err.txt)"
}
expect_err 1 "cannot open the input" "$S" -s 1 /nonexistent/secret-dir/x.txt
expect_err 1 "is a directory" "$S" -s 1 "$WORK"
expect_err 2 "at least 64K" "$S" -m 1000 in.txt
expect_err 2 "at least 64K" "$S" -m abc in.txt
expect_err 2 "at least 64K" "$S" -m 12Q in.txt
expect_err 2 "at least 64K" "$S" -m 99999999999999999999G in.txt
expect_err 2 "unsigned 64-bit" "$S" -s -3 in.txt
expect_err 2 "unsigned 64-bit" "$S" -s 1x in.txt
expect_err 2 "at most one input" "$S" in.txt in.txt
expect_err 2 "usage" "$S" -q in.txt
cp in.txt same.txt
expect_err 2 "output file is the input" "$S" -s 1 -o same.txt same.txt
cmp same.txt in.txt
expect_err 1 "cannot create a temporary file" "$S" -m 512K -s 1 -T /nonexistent/secret-dir in.txt
expect_err 1 "cannot create the output" "$S" -s 1 -o /nonexistent/secret-dir/out in.txt
$PY -c 'open("long.txt","w").write("a\n" + "y" * 100000 + "\nb\n")'
expect_err 1 "longer than the memory bound" "$S" -m 64K -s 1 -T "$T" long.txt
# -o: a failed run leaves an existing output as it was (and no temporary file beside it); a
# successful one replaces it, keeping its mode
printf 'keep\n' > kept.txt; chmod 640 kept.txt
expect_err 1 "longer than the memory bound" "$S" -m 64K -s 1 -T "$T" -o kept.txt long.txt
[ "$(cat kept.txt)" = keep ] || { echo "a failed run truncated the -o file"; exit 1; }
expect_err 1 "cannot create a temporary file" "$S" -m 512K -s 1 -T /nonexistent/secret-dir -o kept.txt in.txt
[ "$(cat kept.txt)" = keep ] || { echo "a failed run truncated the -o file"; exit 1; }
[ -z "$(ls -A | grep shuffle-out)" ] || { echo "temporary output left behind"; exit 1; }
"$S" -m 512K -s 1 -T "$T" -o kept.txt in.txt
cmp kept.txt out1.txt || { echo "-o over an existing file"; exit 1; }
[ "$(stat -c %a kept.txt)" = 640 ] || { echo "-o changed the mode of the file it replaced"; exit 1; }
# a long line first, then an input that does not end: the error comes at once
mkfifo slow.fifo
( $PY -c 'import sys; sys.stdout.write("y" * 200000 + "\n")'; exec sleep 60 ) > slow.fifo &
writer=$!
t0=$SECONDS
expect_err 1 "longer than the memory bound" timeout 30 "$S" -m 64K -s 1 -T "$T" slow.fifo
kill $writer 2>/dev/null || true
[ $((SECONDS - t0)) -lt 10 ] || { echo "the long line was reported only at the end of the input"; exit 1; }
if [ -w /dev/full ]; then expect_err 1 "cannot write the output" "$S" -s 1 -o /dev/full in.txt; fi
[ -z "$(ls -A "$T")" ] || { echo "temporary files left behind after errors"; exit 1; }
"$S" --help | grep -q "memory bound"
echo "shuffle: all checks passed"
