"""deps.py - the dependency graph of server/ by symbols: which object file uses which
other's symbols (nm), printed as one line per file, and the rules of issue 11 checked
on it: no cycle; scheduler.o uses nothing from http/routes*/sse/reply and no MHD_*.
usage: deps.py BUILD   (run by tests/suites/13-server-deps.sh)"""
import glob
import os
import subprocess
import sys

build = sys.argv[1] if len(sys.argv) > 1 else "build"
objs = sorted(glob.glob(os.path.join(build, "server", "*.o")))
if not objs:
    sys.exit(f"deps: no object files in {build}/server")


def nm(args, path):
    out = subprocess.run(["nm"] + args + [path], check=True, capture_output=True, text=True).stdout
    return {ln.split()[-1] for ln in out.splitlines() if ln.strip()}


name = {o: os.path.basename(o) for o in objs}
defined = {o: nm(["--defined-only", "-g"], o) for o in objs}
undefined = {o: nm(["-u"], o) for o in objs}
uses = {name[a]: sorted(name[b] for b in objs if b != a and undefined[a] & defined[b]) for a in objs}

for f in sorted(uses):
    print(f"{f:16} -> {' '.join(uses[f]) or '-'}")

fails = []
# a cycle: depth-first search with colours
state = {}


def visit(f, path):
    state[f] = 1
    for g in uses[f]:
        if state.get(g) == 1:
            fails.append("cycle: " + " -> ".join(path[path.index(g):] + [g]))
        elif g not in state:
            visit(g, path + [g])
    state[f] = 2


for f in sorted(uses):
    if f not in state:
        visit(f, [f])

sched = os.path.join(build, "server", "scheduler.o")
banned = [u for u in uses.get("scheduler.o", []) if u.startswith(("http", "routes", "sse", "reply"))]
if banned:
    fails.append("scheduler.o uses " + ", ".join(banned))
mhd = sorted(s for s in undefined.get(sched, set()) if s.startswith("MHD_"))
if mhd:
    fails.append("scheduler.o uses libmicrohttpd: " + ", ".join(mhd))

for f in fails:
    print("FAIL:", f)
print(f"deps: {len(objs)} objects, {len(fails)} problems")
sys.exit(1 if fails else 0)
