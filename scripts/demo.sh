#!/usr/bin/env bash
# Runs fasttrack's main job end to end on this machine, no AWS account needed:
# a private syslog-ng with the shipped syslog-ng/fasttrack.conf, a burst of sample 5xx
# traffic from a "container", the rotated, gzipped log appearing under a file:// dir with its
# incident digest, and the Slack-style notification a local webhook receives.
# Usage (as root on Debian): scripts/demo.sh   [DEMO_DIR=/tmp/fasttrack-demo]
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }
if ! need syslog-ng || ! need python3; then
  echo "== installing syslog-ng-core (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq syslog-ng-core python3 >/dev/null
fi

echo "== building fasttrack (release)"
cargo build --release --quiet
bin=$PWD/target/release/fasttrack

dir=${DEMO_DIR:-/tmp/fasttrack-demo}
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
[ -f "$dir/syslog-ng.pid" ] && kill "$(cat "$dir/syslog-ng.pid")" 2>/dev/null || true
rm -rf "$dir"
mkdir -p "$dir/bucket" "$dir/log"

# The shipped snippet, with its paths pointed into the demo dir.
sed -e "s|/run/docker-syslog.sock|$dir/docker-syslog.sock|" \
    -e "s|/var/log/docker.log|$dir/log/docker.log|" \
    -e "s|exec /usr/bin/fasttrack watch|exec $bin watch -c $dir/fasttrack.toml|" \
    syslog-ng/fasttrack.conf > "$dir/fasttrack.conf"
cat > "$dir/syslog-ng.conf" <<CONF
@version: 3.38
options { stats_freq(0); mark_freq(0); };
@include "$dir/fasttrack.conf"
CONF
cat > "$dir/fasttrack.toml" <<TOML
log = "$dir/log/docker.log"
dest = "file://$dir/bucket"
state-dir = "$dir/state"
log-file = "$dir/fasttrack.log"
control-socket = "$dir/syslog-ng.ctl"
pidfile = "$dir/syslog-ng.pid"
quiet = "2s"
ignore = ['GET /healthz ']
notify = "http://127.0.0.1:$port/services/T000/B000/demo"
TOML

echo "== starting a webhook receiver on 127.0.0.1:$port (stands in for Slack)"
python3 - "$port" "$dir/notification.json" <<'PY' &
import http.server, sys
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        open(sys.argv[2], "wb").write(body)
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Hook).serve_forever()
PY
hook_pid=$!

echo "== starting a private syslog-ng in $dir"
syslog-ng -f "$dir/syslog-ng.conf" -c "$dir/syslog-ng.ctl" -p "$dir/syslog-ng.pid" \
  -R "$dir/syslog-ng.persist" --no-caps
trap 'kill "$(cat "$dir/syslog-ng.pid")" "$hook_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$dir/docker-syslog.sock" ] && break; sleep 0.1; done

echo "== a container logs normal traffic, then a burst of 5xx errors"
python3 - "$dir/docker-syslog.sock" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(sys.argv[1])
def send(msg, container="shop-web"):
    s.send(f"<14>{time.strftime('%b %d %H:%M:%S')} docker/{container}[812]: {msg}".encode())
for i in range(20):
    send(f'10.0.0.{i} - - "GET /products/{i} HTTP/1.1" 200 512')
for i in range(40):
    send(f'10.0.0.{i % 7} - - "POST /checkout HTTP/1.1" 502 157 upstream timed out order={1000+i}')
    send(f'10.0.0.9 - - "GET /cart HTTP/1.1" 200 77')
    if i % 4 == 0:
        send(f'10.0.1.{i} - - "GET /api/stock/{4000 + i * 13} HTTP/1.1" 503 0', "shop-api")
    if i % 10 == 0:
        send('{"level":"error","requestId":"req-%04x","actionId":"ChargeCard","status":500,'
             '"message":"provider answered HTTP/1.1 500 after %dms"}' % (i * 7919 % 65536, 3000 + i), "payments")
        send('10.0.0.1 - - "GET /healthz HTTP/1.1" 503 0')
PY

echo "== waiting for the quiet period (2s), the rotation and the upload"
for _ in $(seq 150); do
  compgen -G "$dir/bucket/*/docker.log-*.gz" >/dev/null && break
  sleep 0.1
done
shipped=$(compgen -G "$dir/bucket/*/docker.log-*.gz" | head -n1 || true)
if [ -z "$shipped" ]; then
  echo "nothing was shipped; fasttrack's log says:" >&2
  cat "$dir/fasttrack.log" >&2
  exit 1
fi
echo
echo "shipped: $shipped"
echo "--- its last lines (zcat | tail -4):"
zcat "$shipped" | tail -n 4
echo "--- fasttrack's log:"
cat "$dir/fasttrack.log"
echo "--- fasttrack digest (the same digest is shipped beside it as ${shipped%.gz}.json):"
"$bin" digest -c "$dir/fasttrack.toml" "$shipped"
for _ in $(seq 50); do [ -s "$dir/notification.json" ] && break; sleep 0.1; done
echo "--- the notification the webhook received (Slack incoming-webhook JSON, its text):"
python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["text"])' "$dir/notification.json" \
  || echo "(none received; see fasttrack's log above)"
echo "--- fasttrack status:"
"$bin" status -c "$dir/fasttrack.toml" || true
