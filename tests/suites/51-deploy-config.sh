#!/bin/bash
# 51-deploy-config: the shipped deployment files agree with the real server and with each
# other. Every T5SERVE_* setting of the Kubernetes ConfigMap, the compose file and the
# Dockerfile is a real key that build/t5serve applies (its --print-config shows the value);
# the Deployment's probes, port, preStop and grace period fit the drain timeout; the Service
# and the HPA point at the Deployment; nginx accepts the shipped configuration (nginx -t) and
# its upstreams are the compose replicas' ports; every series the Grafana dashboard queries
# appears in a live t5serve's GET /metrics. Not a Kubernetes or compose run (none here).
# Run time: about 5 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${BUILD:=build}" "${FIXTURES:=tests/fixtures}" "${WORK:=$(mktemp -d)}"
T5SERVE=$BUILD/t5serve
MODEL=$FIXTURES/models/t5-tiny-gated
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
PY=/usr/bin/python3
[ -x "$T5SERVE" ] || { echo "51-deploy-config: missing $T5SERVE"; exit 1; }

# 1. settings -> t5serve --print-config; structural checks of the manifests.
$PY - "$T5SERVE" <<'EOF'
import json, os, re, subprocess, sys, yaml
t5serve = sys.argv[1]

def effective(env):
    """The configuration t5serve derives from these T5SERVE_* variables (nothing else set)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("T5SERVE_")}
    e.update(env)
    out = subprocess.run([t5serve, "--print-config"], env=e, capture_output=True, text=True)
    assert out.returncode == 0, "t5serve --print-config rejected %r: %s" % (env, out.stderr[:300])
    cfg = {}
    for line in out.stdout.splitlines():
        m = re.match(r'^(\w+) = "?(.*?)"?$', line)
        if m:
            cfg[m.group(1)] = m.group(2)
    return cfg

def check_env(where, env):
    env = {k: str(v) for k, v in env.items() if k.startswith("T5SERVE_")}
    cfg = effective(env)
    env.pop("T5SERVE_CONFIG", None)
    for k, v in env.items():
        key = k[len("T5SERVE_"):].lower()
        assert key in cfg, "%s: %s is not a t5serve setting" % (where, k)
        assert cfg[key] == v, "%s: %s=%s but t5serve applies %s" % (where, k, v, cfg[key])
    print("51-deploy-config: %s: %d settings, all applied by t5serve" % (where, len(env)))
    return cfg

cm = yaml.safe_load(open("deploy/k8s/configmap.yaml"))
cfg = check_env("deploy/k8s/configmap.yaml", cm["data"])

docs = {}
for f in ("deployment", "service", "hpa"):
    docs[f] = yaml.safe_load(open("deploy/k8s/%s.yaml" % f))
dep = docs["deployment"]
pod = dep["spec"]["template"]
c = pod["spec"]["containers"][0]
assert c["envFrom"][0]["configMapRef"]["name"] == cm["metadata"]["name"]
port = int(cfg["port"])
assert c["ports"][0]["containerPort"] == port, "containerPort != T5SERVE_PORT"
assert c["livenessProbe"]["httpGet"]["path"] == "/health"
assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
sleep = int(c["lifecycle"]["preStop"]["exec"]["command"][-1])
grace = pod["spec"]["terminationGracePeriodSeconds"]
drain = int(cfg["drain_timeout_ms"]) / 1000
assert grace >= sleep + drain + 2, "grace %ss < preStop %ss + drain %ss + 2" % (grace, sleep, drain)
assert pod["spec"]["securityContext"]["runAsUser"] != 0
assert dep["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
svc = docs["service"]
assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items(), "Service selects no pod"
assert svc["spec"]["ports"][0]["targetPort"] in ("http", port)
hpa = docs["hpa"]["spec"]
assert hpa["scaleTargetRef"]["kind"] == "Deployment"
assert hpa["scaleTargetRef"]["name"] == dep["metadata"]["name"]
assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]
print("51-deploy-config: Deployment: probes /health and /ready on %d, grace %d s >= preStop %d s "
      "+ drain %g s; Service and HPA point at it" % (port, grace, sleep, drain))

comp = yaml.safe_load(open("deploy/compose.yaml"))
ports = []
for name, s in comp["services"].items():
    if s.get("image", "").startswith("t5serve:"):
        ports.append(int(check_env("deploy/compose.yaml " + name, s["environment"])["port"]))
        assert s.get("init") and s.get("stop_signal", "SIGTERM") == "SIGTERM"
ups = re.findall(r"^\s*server\s+127\.0\.0\.1:(\d+)", open("deploy/nginx/t5serve.conf").read(), re.M)
assert sorted(map(int, ups)) == sorted(ports), "nginx upstreams %s != compose replicas %s" % (ups, ports)
print("51-deploy-config: nginx upstreams = compose replicas' ports %s" % sorted(ports))

envs = {}  # the ENV instructions of the runtime stage (continuation lines joined)
for ins in re.sub(r"\\\n", " ", open("Dockerfile").read()).splitlines():
    if ins.startswith("ENV "):
        envs.update(m.groups() for m in re.finditer(r"(T5SERVE_\w+)=(\S+)", ins))
assert envs, "no T5SERVE_ ENV in the Dockerfile"
conf = envs.get("T5SERVE_CONFIG")
assert conf and re.search(r"^COPY (--\S+ )*config/t5serve.conf %s$" % re.escape(conf), open("Dockerfile").read(), re.M), \
    "the Dockerfile's T5SERVE_CONFIG is not config/t5serve.conf"
envs["T5SERVE_CONFIG"] = "config/t5serve.conf"
check_env("Dockerfile (with config/t5serve.conf)", envs)
EOF

# 2. nginx accepts the shipped configuration (paths moved into $WORK).
N=$WORK/nginx
mkdir -p "$N"
cp deploy/nginx/t5serve.conf "$N/"
sed -e "s#/run/nginx-t5serve.pid#$N/nginx.pid#; s#/var/log/nginx/#$N/#" deploy/nginx/nginx.conf > "$N/nginx.conf"
sed -i "s#/var/log/nginx/#$N/#" "$N/t5serve.conf"
"$NGINX" -t -q -p "$N" -e "$N/error.log" -c "$N/nginx.conf"
echo "51-deploy-config: nginx -t accepts deploy/nginx/nginx.conf + t5serve.conf"

# 3. the dashboard's series exist in a live server's /metrics.
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
T5SERVE_HOST=127.0.0.1 T5SERVE_PORT=$PORT T5SERVE_MODEL=$MODEL "$T5SERVE" > "$WORK/server.log" 2>&1 &
SPID=$!
trap 'kill -KILL $SPID 2>/dev/null || true' EXIT
for _ in $(seq 300); do curl -fsS -o /dev/null "http://127.0.0.1:$PORT/ready" 2>/dev/null && break; sleep 0.1; done
curl -fsS -d '{"text":"Hello world","max_new_tokens":4}' "http://127.0.0.1:$PORT/generate" > /dev/null
curl -fsS -d '{"text":"Hello world"}' "http://127.0.0.1:$PORT/tokenize" > /dev/null
curl -fsS "http://127.0.0.1:$PORT/metrics" > "$WORK/metrics.txt"
$PY - "$WORK/metrics.txt" <<'EOF'
import json, re, sys
have = {re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)", l).group(1)
        for l in open(sys.argv[1]) if l.strip() and not l.startswith("#")}
dash = json.load(open("deploy/grafana/t5serve-dashboard.json"))
used = set()
for p in dash["panels"]:
    for t in p["targets"]:
        used |= set(re.findall(r"\b(t5serve_[a-z_]+)", t["expr"]))
missing = sorted(used - have)
assert not missing, "the dashboard queries series t5serve does not expose: %s" % missing
print("51-deploy-config: the dashboard's %d panels query %d series, all in /metrics"
      % (len(dash["panels"]), len(used)))
EOF
kill -TERM $SPID
wait $SPID
echo "51-deploy-config: ok"
