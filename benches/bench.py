#!/usr/bin/env python3
"""fasttrack against the chain it replaces and the tools people would pick instead.

Every figure runs both sides in the same run, on the same input, RUNS times, and reports the
medians and their ratio (absolute times on a shared machine are noise; ratios are not).

  1 stdin drain of `watch` (200-byte lines, no rotation) vs `cat | wc -l`, and watch's peak RSS
  2 `fasttrack rotate --reopen none` of a LOG_MB log to file:// vs `gzip -6` (and -9, pigz -p 2)
  3 fast-track latency, end of the quiet period -> object complete in S3, LOG_MB log, vs the
    seed chain (syslog-ng program() loop -> logrotate -> mv, gzip -9, aws s3 cp -> reopen)
  4 idle CPU of `watch` over IDLE seconds with no input vs the seed chain's loop
  5 peak RSS of `fasttrack rotate` of a BIG_MB log to S3 vs `aws s3 cp` of the same file
  6 upload throughput of a BIG_MB object: `fasttrack upload` vs `aws s3 cp`
  7 lines lost / duplicated over ROTATIONS rotations under steady traffic, both chains
  8 figure 2's compression against `pigz -p 2 -6`, and the .gz read back by Java and Go
  9 fast-track latency with S3 behind a LINK_MBPS link (a token-bucket proxy): upload while
    compressing against compress-then-upload (`--upload-while-compressing=false`)
 10 rotate + upload of a HUGE_MB log to S3: peak RSS and wall time against the same to file://
 11 the release binary's size, stripped
 12 `fasttrack report` over the incident index of a fleet (REPORT_HOSTS x REPORT_INCIDENTS
    records on s3s-fs): time and peak RSS, against the same over a tenth of the records

Usage: python3 benches/bench.py [--only 1,2,...] [--runs R] [--log-mb MB] [--big-mb MB]
       [--idle-seconds S] [--rotations N] [--quiet S] [--rate LINES_PER_S] [--keep-work]
       [--report-hosts N] [--report-incidents N] [--link-mbps M] [--huge-mb MB] [--huge-runs N]
Run through scripts/bench.sh, which installs what it needs and builds the release binary.
"""
import argparse
import datetime
import gzip
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASELINE = os.path.join(ROOT, "benches", "baseline")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
# FASTTRACK_BENCH_BIN measures another build (e.g. an older commit's) with the same harness.
BIN = os.environ.get("FASTTRACK_BENCH_BIN", os.path.join(TARGET, "release", "fasttrack"))
SNIPPET = os.path.join(ROOT, "syslog-ng", "fasttrack.conf")
KEY, SECRET, BUCKET = "AKIAFASTTRACKBENCH", "fasttrack-bench-secret", "bench"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": KEY,
    "AWS_SECRET_ACCESS_KEY": SECRET,
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}
os.environ.update(AWS_ENV)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, **kw)


def timed(cmd, **kw):
    t = time.perf_counter()
    sh(cmd, **kw)
    return time.perf_counter() - t


def gnu_time(cmd, **kw):
    """Runs cmd under GNU time: (seconds, peak RSS KiB, user+sys CPU seconds)."""
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "TIME %M %U %S", "sh", "-c", cmd],
                       stderr=subprocess.PIPE, text=True, **kw)
    wall = time.perf_counter() - t
    line = [l for l in p.stderr.splitlines() if l.startswith("TIME ")]
    if p.returncode != 0 or not line:
        raise RuntimeError(f"{cmd} failed ({p.returncode}): {p.stderr[-2000:]}")
    _, rss, user, system = line[-1].split()
    return wall, int(rss), float(user) + float(system)


def median(xs):
    return statistics.median(xs)


def stamp(text, pattern):
    """The time (epoch seconds) of the first line of fasttrack's log matching pattern."""
    m = re.search(r"^(\S+)Z +" + pattern, text, re.M)
    if not m:
        raise RuntimeError(f"no line matching {pattern!r} in fasttrack's log")
    return datetime.datetime.fromisoformat(m.group(1)).timestamp()


# ---------------------------------------------------------------------------------------------
# Input: a realistic docker.log (mixed hosts and containers, about 2% 5xx lines)

CONTAINERS = ["shop-web", "api", "auth", "search", "worker", "billing", "cdn-edge"]
PATHS = ["/products/", "/cart/", "/api/v2/orders/", "/static/app.", "/login?next=/",
         "/api/v1/users/", "/checkout/", "/healthz"]
AGENTS = ["Mozilla/5.0 (X11; Linux x86_64)", "curl/8.5.0", "python-requests/2.31",
          "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X)", "kube-probe/1.29"]


def docker_line(rng, i, status=None):
    if status is None:
        status = rng.choices([200, 201, 204, 301, 304, 400, 404, 500, 502, 503, 504],
                             [62, 4, 3, 2, 10, 3, 14, 1.0, 0.5, 0.3, 0.2])[0]
    host = f"web{rng.randint(1, 8)}"
    ctr = rng.choice(CONTAINERS)
    t = 43200 + i // 2000
    return (f"Nov 21 {t // 3600 % 24:02d}:{t // 60 % 60:02d}:{t % 60:02d} {host} "
            f"docker/{ctr}[{rng.randint(100, 999)}]: 10.{rng.randint(0, 255)}.{rng.randint(0, 255)}."
            f"{rng.randint(0, 255)} - - \"GET {rng.choice(PATHS)}{rng.randint(1, 99999)} HTTP/1.1\" "
            f"{status} {rng.randint(100, 90000)} \"-\" \"{rng.choice(AGENTS)}\" "
            f"rt={rng.random():.3f} req={rng.getrandbits(64):016x}\n")


def make_log(path, mb, seed=42):
    """Writes a docker.log of `mb` MiB (cached by size and seed)."""
    cache = os.path.join(TARGET, "bench", f"docker-{mb}MiB-{seed}.log")
    if not os.path.exists(cache):
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        log(f"generating a {mb} MiB docker.log (cached in {cache})")
        rng = random.Random(seed)
        size, i, chunk = 0, 0, []
        with open(cache + ".tmp", "w") as f:
            while size < mb << 20:
                line = docker_line(rng, i)
                chunk.append(line)
                size += len(line)
                i += 1
                if len(chunk) == 10000:
                    f.write("".join(chunk))
                    chunk = []
            f.write("".join(chunk))
        os.rename(cache + ".tmp", cache)
    shutil.copyfile(cache, path)


# ---------------------------------------------------------------------------------------------
# Real servers: s3s-fs on loopback, a private syslog-ng

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3:
    def __init__(self, work):
        self.root = os.path.join(work, "s3")
        os.makedirs(os.path.join(self.root, BUCKET), exist_ok=True)
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["s3s-fs", "--host", "127.0.0.1", "--port", str(self.port), "--access-key", KEY,
             "--secret-key", SECRET, self.root], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("s3s-fs did not start")
                time.sleep(0.05)
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def path(self, key):
        return os.path.join(self.root, BUCKET, key)

    def objects(self, prefix):
        d = self.path(prefix)
        if not os.path.isdir(d):
            return []
        return sorted(os.path.join(d, n) for n in os.listdir(d) if n.endswith(".gz"))

    def cpu(self):
        """s3s-fs's user+sys CPU so far, in seconds: it runs on the same cores as the client,
        so every figure that uploads says what the server took too."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.kill()
        self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.stop()


RUNNING = []  # every syslog-ng started, stopped at exit whatever happens


class SyslogNg:
    """syslog-ng with a unix-stream source, the article's filters, docker.log and a program()."""

    def __init__(self, work, log_path, program, name="sng"):
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir, exist_ok=True)
        self.input = os.path.join(self.dir, "in.sock")
        self.ctl = os.path.join(self.dir, "ctl")
        self.pidfile = os.path.join(self.dir, "pid")
        conf = os.path.join(self.dir, "syslog-ng.conf")
        with open(conf, "w") as f:
            f.write(f"""@version: 3.38
options {{ stats_freq(0); stats_level(1); mark_freq(0); }};
source s_in {{ unix-stream("{self.input}"); }};
filter f_docker {{ program("docker") or tags("docker"); }};
filter f_5xxERR-hook {{ filter(f_docker) and message("HTTP\\/.{{3,20}}[[:space:]]5[[:digit:]]{{2}}[[:space:]]"); }};
destination d_docker {{ file("{log_path}"); }};
destination d_hook {{ program("{program}" mark-mode(none)); }};
log {{ source(s_in); filter(f_docker); destination(d_docker); }};
log {{ source(s_in); filter(f_5xxERR-hook); destination(d_hook); }};
""")
        self.proc = subprocess.Popen(
            ["syslog-ng", "-F", "-f", conf, "-c", self.ctl, "-p", self.pidfile, "-R",
             os.path.join(self.dir, "persist"), "--no-caps"],
            stdin=subprocess.DEVNULL, stdout=open(os.path.join(self.dir, "out"), "w"),
            stderr=subprocess.STDOUT, start_new_session=True)
        RUNNING.append(self)
        deadline = time.time() + 20
        while not (os.path.exists(self.input) and os.path.exists(self.pidfile)):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("syslog-ng did not start: " +
                                   open(os.path.join(self.dir, "out")).read())
            time.sleep(0.05)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.input)

    def send(self, text):
        self.sock.sendall(text.encode())

    def dropped(self):
        out = subprocess.run(["syslog-ng-ctl", "stats", "-c", self.ctl], capture_output=True,
                             text=True).stdout
        return {l.split(";")[1].split("#")[0]: int(l.split(";")[5]) for l in out.splitlines()
                if l.startswith("dst.") and l.split(";")[4] == "dropped"}

    def stop(self):
        if self not in RUNNING:
            return
        RUNNING.remove(self)
        if hasattr(self, "sock"):
            self.sock.close()
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        # program() children live in their own process group: stop them too.
        subprocess.run(["pkill", "-9", "-f", self.dir], stderr=subprocess.DEVNULL)


def syslog_line(seq, status):
    """What Docker's syslog driver sends over a local socket (no hostname)."""
    return (f"<14>Nov 21 12:00:00 docker/web-1[42]: 10.0.0.1 - - \"GET /api/orders?seq={seq} "
            f"HTTP/1.1\" {status} 17 rt=0.004\n")


class Chain:
    """One fast-track chain under its own syslog-ng: fasttrack's or the seed's."""

    def __init__(self, kind, work, s3, quiet, stamp_loop=True, endpoint=None, extra="", name=None):
        self.kind, self.s3 = kind, s3
        self.dir = os.path.join(work, name or kind)
        endpoint = endpoint or s3.endpoint
        self.logs = os.path.join(self.dir, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.log = os.path.join(self.logs, "docker.log")
        # Each chain of each figure and run ships under its own prefix.
        self.prefix = f"{os.path.basename(work)}-{name or kind}/host1"
        if kind == "fasttrack":
            cfg = os.path.join(self.dir, "fasttrack.toml")
            open(cfg, "w").close()
            args = (f"-c {cfg} --log {self.log} --dest s3://{BUCKET}/{self.prefix.split('/')[0]} --host host1 "
                    f"--state-dir {self.dir}/state --log-file {self.dir}/fasttrack.log "
                    f"--endpoint-url {endpoint} --path-style --region us-east-1 "
                    f"--quiet {quiet}s --keep 1000000 {extra}")
            self.syslog = None
            program = f"exec {BIN} watch {args} --control-socket {self.dir}/sng/ctl --pidfile {self.dir}/sng/pid"
        else:
            conf = os.path.join(self.dir, "logrotate-docker.conf")
            text = open(os.path.join(BASELINE, "logrotate-docker.conf.in")).read()
            for k, v in {"@LOG@": self.log, "@BASELINE@": BASELINE,
                         "@S3URL@": f"s3://{BUCKET}/{self.prefix}", "@ENDPOINT@": s3.endpoint,
                         "@CTL@": f"{self.dir}/sng/ctl", "@PIDFILE@": f"{self.dir}/sng/pid"}.items():
                text = text.replace(k, v)
            open(conf, "w").write(text)
            script = "loop-stamp.sh" if stamp_loop else "loop.sh"
            env = (f"FT_QUIET={quiet} FT_STAMP={self.dir}/stamp FT_HOOKLOG={self.dir}/hook.log "
                   f"FT_LOGROTATE='/usr/sbin/logrotate -vf -s {self.dir}/logrotate.state {conf}'")
            program = f"exec env {env} /bin/sh {BASELINE}/{script}".replace('"', '\\"')
        self.program = program

    def start(self):
        self.sng = SyslogNg(self.dir, self.log, self.program)
        return self

    def stop(self):
        self.sng.stop()

    def objects(self):
        return self.s3.objects(self.prefix)


def wait_object(chain, before, local_gz_dir, timeout):
    """Waits for a new object in S3 whose size equals its local .gz; returns when it was seen."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for path in chain.objects():
            if path in before:
                continue
            local = os.path.join(local_gz_dir, os.path.basename(path))
            try:
                if os.path.getsize(path) == os.path.getsize(local):
                    return time.time(), path
            except OSError:
                pass
        time.sleep(0.02)
    return None, None


# ---------------------------------------------------------------------------------------------
# The figures

def fig_drain(a, work, rows):
    """1: drain of an all-5xx stream of realistic access lines (every line classified, the
    digester parses and groups what it can), then of a stream of false positives only (200s
    with a 500-599-byte body, which the article's rule passes on: classified and counted as
    not 5xx), each against `cat | wc -l` of the same file."""
    n = a.drain_lines
    rng = random.Random(7)
    inputs = []
    sample = "".join(syslog_5xx_line(rng, i) for i in range(20000)).encode()
    inputs.append(("all-5xx access lines", sample * max(1, n // 20000)))
    sample = "".join(syslog_5xx_line(rng, i, false_positive=True) for i in range(20000)).encode()
    inputs.append(("false positives only: 200s with 5xx sizes", sample * max(1, n // 20000)))
    for label, data in inputs:
        lines = os.path.join(work, "lines")
        with open(lines, "wb") as f:
            f.write(data)
        count = data.count(b"\n")
        del data
        shutil.rmtree(f"{work}/st", ignore_errors=True)
        os.makedirs(f"{work}/none", exist_ok=True)
        common = (f"-c /dev/null --log {work}/none/docker.log --dest file://{work} --state-dir {work}/st "
                  f"--log-file {work}/ft.log --reopen none --quiet 1h")
        base, ours, rss = [], [], []
        for _ in range(a.runs):
            shutil.rmtree(f"{work}/st", ignore_errors=True)
            base.append(timed(f"cat {lines} | wc -l >/dev/null"))
            wall, peak, _ = gnu_time(f"cat {lines} | {BIN} watch {common}")
            ours.append(wall)
            rss.append(peak)
        b, o = median(base), median(ours)
        ratio = b / o
        note = f"peak RSS {max(rss) / 1024:.1f} MiB"
        saved = os.path.join(work, "st", "incident-digest.json")
        if os.path.exists(saved):
            import json
            d = json.load(open(saved))["builder"]
            done = d["lines"]
            note += (f"; {done + d['not_digested']:,} incident lines, {d.get('not_5xx', 0):,} not 5xx; "
                     f"digested {done:,} ({100 * done / max(1, done + d['not_digested']):.0f}% of the "
                     f"incident lines), the rest counted")
        rows.append(("1", f"stdin drain of `watch`, lines/s ({label})", f"{count / o / 1e6:.2f} M/s",
                     "`cat | wc -l`", f"{count / b / 1e6:.2f} M/s", f"{ratio:.2f}x",
                     ">= 0.5x, RSS < 16 MB", ratio >= 0.5 and max(rss) < 16 * 1024, note))
        os.remove(lines)


def syslog_5xx_line(rng, i, false_positive=False):
    """A 5xx line as syslog-ng's program() destination hands it to `watch`; with
    `false_positive`, a 200 whose 500-599-byte size the article's rule takes for a 5xx."""
    host = f"web{rng.randrange(8)}"
    container = rng.choice(["api", "web", "auth", "billing", "search", "worker", "gateway"])
    method, path = rng.choice([("GET", "/api/orders/{}"), ("POST", "/api/orders"),
                               ("GET", "/api/users/{}/profile"), ("PUT", "/api/carts/{}"),
                               ("GET", "/search?q=item{}"), ("POST", "/auth/token")])
    status = rng.choice([500, 502, 502, 503, 504])
    size = rng.randrange(9999)
    if false_positive:
        status, size = 200, rng.randrange(500, 600)
    return (f"Nov 22 04:{i // 60 % 60:02d}:{i % 60:02d} {host} docker/{container}[{100 + i % 900}]: "
            f"10.0.{rng.randrange(256)}.{rng.randrange(256)} - - [22/Nov/2026:04:26:15 +0000] "
            f"\"{method} {path.format(rng.randrange(100000))} HTTP/1.1\" {status} {size} "
            f"\"-\" \"curl/8.{rng.randrange(9)}\" rt={rng.random():.3f} req={rng.getrandbits(64):016x}\n")


def fig_compress(a, work, rows):
    src = os.path.join(work, "source.log")
    make_log(src, a.log_mb)
    size = os.path.getsize(src)
    d = os.path.join(work, "rot")
    times = {"fasttrack": [], "gzip -6": [], "gzip -9": [], "pigz -p 2 -6": []}
    sizes = {}
    for r in range(a.runs):
        for name, cmd in [("gzip -6", "gzip -6 -c {src} > {out}"),
                          ("gzip -9", "gzip -9 -c {src} > {out}"),
                          ("pigz -p 2 -6", "pigz -p 2 -6 -c {src} > {out}")]:
            out = os.path.join(work, "out.gz")
            times[name].append(timed(cmd.format(src=src, out=out)))
            sizes[name] = os.path.getsize(out)
            os.remove(out)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(f"{d}/logs")
        os.makedirs(f"{d}/dest")
        shutil.copyfile(src, f"{d}/logs/docker.log")
        times["fasttrack"].append(timed(
            f"{BIN} rotate -c /dev/null --log {d}/logs/docker.log --dest file://{d}/dest --host h "
            f"--state-dir {d}/state --log-file {d}/ft.log --reopen none >/dev/null"))
    gz = [os.path.join(f"{d}/dest/h", n) for n in os.listdir(f"{d}/dest/h") if n.endswith(".gz")][0]
    sizes["fasttrack"] = os.path.getsize(gz)
    # The output is one ordinary .gz that the usual readers take back byte-identical.
    sh(f"gzip -t {gz}")
    sh(f"zcat {gz} | cmp - {src}")
    with gzip.open(gz, "rb") as f:
        assert hashlib.sha256(f.read()).digest() == hashlib.sha256(open(src, "rb").read()).digest()
    readers = read_back_elsewhere(gz, src, work)
    g6 = median(times["gzip -6"])
    ft, pz = median(times["fasttrack"]), median(times["pigz -p 2 -6"])
    size_ratio = sizes["fasttrack"] / sizes["gzip -6"]
    rows.append(("8", f"compress a {a.log_mb} MiB log (whole `rotate --reopen none` to file://)",
                 f"{ft:.2f} s, {size / ft / 1e6:.0f} MB/s", "`pigz -p 2 -6`",
                 f"{pz:.2f} s, {size / pz / 1e6:.0f} MB/s", f"{pz / ft:.2f}x",
                 ">= 1.6x speed at <= 1.00x `gzip -6`'s size", pz / ft >= 1.6 and size_ratio <= 1.0,
                 f"size {size_ratio:.3f}x gzip -6; one gzip member per MiB (libdeflate), read back "
                 f"identical by {readers}"))
    for name in ["fasttrack", "gzip -9", "pigz -p 2 -6"]:
        t = median(times[name])
        speed = g6 / t
        size_ratio = sizes[name] / sizes["gzip -6"]
        if name == "fasttrack":
            rows.append(("2", f"compress a {a.log_mb} MiB log (`rotate --reopen none` to file://)",
                         f"{t:.2f} s, {size / t / 1e6:.0f} MB/s", "`gzip -6`",
                         f"{g6:.2f} s, {size / g6 / 1e6:.0f} MB/s", f"{speed:.2f}x",
                         ">= 2x speed at <= 1.02x size", speed >= 2 and size_ratio <= 1.02,
                         f"size {size_ratio:.3f}x gzip -6 ({size / sizes['fasttrack']:.1f}:1); "
                         "`gzip -t`, `zcat`, Python's gzip read it back identical"))
        else:
            rows.append(("2", f"  for comparison: `{name}`", "", "`gzip -6`", "",
                         f"{speed:.2f}x", "", None, f"{t:.2f} s, size {size_ratio:.3f}x gzip -6"))


JAVA_READER = """
import java.io.*; import java.security.MessageDigest; import java.util.zip.GZIPInputStream;
public class ReadGz { public static void main(String[] a) throws Exception {
  MessageDigest d = MessageDigest.getInstance("SHA-256"); byte[] b = new byte[1 << 16];
  try (InputStream in = new GZIPInputStream(new BufferedInputStream(new FileInputStream(a[0])), 1 << 16)) {
    for (int n; (n = in.read(b)) > 0; ) d.update(b, 0, n); }
  StringBuilder s = new StringBuilder(); for (byte x : d.digest()) s.append(String.format("%02x", x));
  System.out.println(s); } }
"""

GO_READER = """package main
import ("bufio"; "compress/gzip"; "crypto/sha256"; "fmt"; "io"; "os")
func main() {
  f, err := os.Open(os.Args[1]); if err != nil { panic(err) }
  r, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<16)); if err != nil { panic(err) }
  h := sha256.New(); if _, err := io.Copy(h, r); err != nil { panic(err) }
  fmt.Printf("%x\\n", h.Sum(nil)) }
"""


def read_back_elsewhere(gz, src, work):
    """Java's GZIPInputStream and Go's compress/gzip (multistream by default) read `gz` back:
    both must give `src`'s sha256. Returns the readers' names, for the table."""
    want = hashlib.sha256(open(src, "rb").read()).hexdigest()
    d = os.path.join(work, "readers")
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, "ReadGz.java"), "w").write(JAVA_READER)
    open(os.path.join(d, "readgz.go"), "w").write(GO_READER)
    sh(f"cd {d} && javac ReadGz.java")
    got = {"Java GZIPInputStream": subprocess.run(["java", "-cp", d, "ReadGz", gz], check=True,
                                                  capture_output=True, text=True).stdout.strip(),
           "Go compress/gzip": subprocess.run(["go", "run", os.path.join(d, "readgz.go"), gz],
                                              check=True, capture_output=True, text=True,
                                              env={**os.environ, "GOCACHE": os.path.join(d, "gocache"),
                                                   "HOME": d}).stdout.strip()}
    for name, sha in got.items():
        if sha != want:
            raise RuntimeError(f"{name} read {gz} back as sha256 {sha}, not {want}")
    return "`gzip -t`, `zcat`, Python's gzip, " + ", ".join(got)


def fig_latency(a, work, rows, s3):
    """End of the quiet period -> object complete, for a LOG_MB docker.log."""
    results = {"fasttrack": [], "seed": []}
    for r in range(a.runs):
        for kind in ["fasttrack", "seed"]:
            chain = Chain(kind, os.path.join(work, f"lat{r}"), s3, a.quiet)
            make_log(chain.log, a.log_mb)
            chain.start()
            time.sleep(1)
            before = set(chain.objects())
            chain.sng.send(syslog_line(0, 503))
            t_quiet_end = time.time() + a.quiet
            seen, path = wait_object(chain, before, chain.logs, timeout=a.quiet + 600)
            chain.stop()
            if seen is None:
                raise RuntimeError(f"{kind}: no object after {a.quiet + 600} s")
            results[kind].append(seen - t_quiet_end)
            log(f"latency {kind} run {r}: {seen - t_quiet_end:.2f} s ({os.path.basename(path)})")
    # The article's loop as written, once: does it fire at all?
    chain = Chain("seed", os.path.join(work, "lat-as-written"), s3, a.quiet, stamp_loop=False)
    open(chain.log, "w").write(syslog_line(0, 200))
    chain.start()
    time.sleep(1)
    chain.sng.send(syslog_line(1, 503))
    seen, _ = wait_object(chain, set(), chain.logs, timeout=3 * a.quiet + 5)
    chain.stop()
    never = seen is None
    f, s = median(results["fasttrack"]), median(results["seed"])
    rows.append(("3", f"fast-track latency, end of quiet -> object in S3, {a.log_mb} MiB log",
                 f"{f:.2f} s", "seed chain (stamp variant)", f"{s:.2f} s", f"{f / s:.3f}x",
                 "<= 0.2x", f / s <= 0.2,
                 "the article's loop as written: " + (f"never fired in {3 * a.quiet + 5} s (pipe mtime never changes)"
                                                      if never else "fired")))


class SlowLink:
    """A loopback TCP proxy in front of the S3 server whose client-to-server direction, all
    connections together, carries at most `rate` bytes/s: each chunk waits for its turn on
    one shared clock (no bursts). Responses flow unlimited (they are small)."""

    def __init__(self, upstream_port, rate):
        self.rate, self.upstream = rate, upstream_port
        self.lock = threading.Lock()
        self.next_free = time.monotonic()
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(64)
        self.endpoint = f"http://127.0.0.1:{self.srv.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.upstream))
            threading.Thread(target=self._pump, args=(c, u, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, False), daemon=True).start()

    def _pump(self, src, dst, limited):
        try:
            while True:
                # Large reads: the link stands for a network, whose cost is not this machine's
                # CPU; fewer, larger chunks keep the proxy's own CPU (which the compressor
                # competes with on 2 cores) small. At 40 MB/s a chunk is 6.5 ms of link.
                chunk = src.recv(256 * 1024)
                if not chunk:
                    break
                if limited:
                    with self.lock:
                        start = max(time.monotonic(), self.next_free)
                        self.next_free = start + len(chunk) / self.rate
                    delay = self.next_free - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        self.srv.close()


def fig_stream(a, work, rows, s3):
    """9: end of quiet -> object complete for a LOG_MB log, S3 behind a LINK_MBPS link:
    upload while compressing against compress-then-upload, same binary, same run."""
    link = SlowLink(s3.port, a.link_mbps * 1e6)
    modes = {"while": a.stream_args, "after": f"{a.stream_args} --upload-while-compressing=false"}
    results = {m: [] for m in modes}
    try:
        for r in range(a.runs):
            for mode, extra in modes.items():
                chain = Chain("fasttrack", os.path.join(work, f"stream{r}"), s3, a.quiet,
                              endpoint=link.endpoint, extra=extra, name=f"ft-{mode}")
                make_log(chain.log, a.log_mb)
                chain.start()
                time.sleep(1)
                before = set(chain.objects())
                chain.sng.send(syslog_line(0, 503))
                t_quiet_end = time.time() + a.quiet
                seen, path = wait_object(chain, before, chain.logs, timeout=a.quiet + 600)
                chain.stop()
                if seen is None:
                    raise RuntimeError(f"{mode}: no object after {a.quiet + 600} s")
                results[mode].append(seen - t_quiet_end)
                log(f"stream latency, upload {mode} compressing, run {r}: {seen - t_quiet_end:.2f} s")
    finally:
        link.stop()
    w, b = median(results["while"]), median(results["after"])
    rows.append(("9", f"fast-track latency, end of quiet -> object in S3, {a.log_mb} MiB log, "
                      f"S3 behind a {a.link_mbps} MB/s link",
                 f"{w:.2f} s", "compress, then upload (`--upload-while-compressing=false`)",
                 f"{b:.2f} s", f"{w / b:.2f}x", "<= 0.7x", w / b <= 0.7,
                 f"options: {a.stream_args or 'the defaults (8 MiB parts, 4 at once)'}; the link is "
                 "a token-bucket proxy in the harness (SlowLink)"))


def fig_huge(a, work, rows, s3):
    """10: rotate + upload of a HUGE_MB log to S3 (peak RSS, wall time) against the same
    command to file:// (compression with nothing to wait for)."""
    base = os.path.join(work, "base.log")
    make_log(base, a.log_mb)
    src = os.path.join(work, "huge.log")
    with open(src, "wb") as out:
        while out.tell() < a.huge_mb << 20:
            with open(base, "rb") as f:
                shutil.copyfileobj(f, out, 8 << 20)
    os.remove(base)
    size = os.path.getsize(src)
    walls, rsss, locals_, compress_ms, completes = [], [], [], [], []
    cpus = {"file": [], "s3": [], "server": []}
    for r in range(a.huge_runs):
        for dest in ["file", "s3"]:
            d = os.path.join(work, f"huge{r}-{dest}")
            os.makedirs(f"{d}/logs")
            os.makedirs(f"{d}/dest")
            os.link(src, f"{d}/logs/docker.log")
            target = (f"--dest file://{d}/dest" if dest == "file" else
                      f"--dest s3://{BUCKET}/huge{r} --endpoint-url {s3.endpoint} --path-style "
                      "--region us-east-1")
            server = s3.cpu()
            wall, rss, cpu = gnu_time(f"{BIN} rotate -c /dev/null --log {d}/logs/docker.log --host h "
                                      f"--state-dir {d}/state --log-file {d}/ft.log --reopen none "
                                      f"{target} >/dev/null")
            cpus[dest].append(cpu)
            if dest == "s3":
                cpus["server"].append(s3.cpu() - server)
            text = open(f"{d}/ft.log").read()
            if dest == "file":
                locals_.append(wall)
                m = re.search(r"compressed \S+: \d+ lines, \d+ -> \d+ bytes in (\d+) ms", text)
                compress_ms.append(int(m.group(1)))
            else:
                walls.append(wall)
                rsss.append(rss)
                if "uploaded while compressed" not in text:
                    raise RuntimeError(f"the {a.huge_mb} MiB log was not uploaded while compressed")
                # From the last part acknowledged to the object in place: the store's
                # CompleteMultipartUpload. s3s-fs copies every part into one file then (on the
                # same 2 cores and disk); S3 itself does not send the bytes again.
                completes.append(stamp(text, r"INFO shipped .*uploaded while compressed") -
                                 stamp(text, r"INFO all \d+ parts of .* completing"))
            shutil.rmtree(d)
        shutil.rmtree(os.path.join(s3.root, BUCKET, f"huge{r}"), ignore_errors=True)
    os.remove(src)
    w, l, rss = median(walls), median(locals_), max(rsss)
    c = median(compress_ms) / 1000
    done = median(completes)
    rows.append(("10", f"rotate + upload of a {size / 2**30:.1f} GiB log to S3 (local server)",
                 f"{w:.1f} s, peak RSS {rss / 1024:.0f} MiB", "the same `rotate` to file://",
                 f"{l:.1f} s", f"{w / l:.2f}x", "RSS < 64 MB, wall <= 1.15x",
                 rss * 1024 < 64e6 and w / l <= 1.15,
                 f"both include the rename and the digest scan; the compression step alone took "
                 f"{c:.1f} s ({w / c:.2f}x); {a.huge_runs} run(s); CPU: to file:// "
                 f"{median(cpus['file']):.1f} s, to S3 {median(cpus['s3']):.1f} s + s3s-fs "
                 f"{median(cpus['server']):.1f} s (2 cores)"))
    rows.append(("10", "  the same, less the store's CompleteMultipartUpload", f"{w - done:.1f} s",
                 "the same `rotate` to file://", f"{l:.1f} s", f"{(w - done) / l:.2f}x",
                 "(what fasttrack's side takes)", None,
                 f"s3s-fs took {done:.1f} s from the last part to the object in place: it copies "
                 "the parts into one file; every part was up by then"))


def fig_size(a, work, rows):
    """11: the release binary's size, stripped."""
    out = os.path.join(work, "fasttrack.stripped")
    sh(f"strip -o {out} {BIN}")
    size = os.path.getsize(out)
    baseline = 14e6
    rows.append(("11", "release binary size, stripped", f"{size / 1e6:.1f} MB",
                 "the issue's figure before this round", f"{baseline / 1e6:.0f} MB",
                 f"{size / baseline:.2f}x", "<= 8 MB", size <= 8e6,
                 f"unstripped {os.path.getsize(BIN) / 1e6:.1f} MB"))


def fig_idle(a, work, rows):
    secs = a.idle_seconds
    d = os.path.join(work, "idle")
    os.makedirs(f"{d}/logs", exist_ok=True)
    ft = (f"{BIN} watch -c /dev/null --log {d}/logs/docker.log --dest file://{d} --state-dir {d}/st "
          f"--log-file {d}/ft.log --reopen none")
    seed = (f"env FT_QUIET=30 FT_STAMP={d}/stamp FT_HOOKLOG={d}/hook.log FT_LOGROTATE=true "
            f"/bin/sh {BASELINE}/loop-stamp.sh")
    tick = os.sysconf("SC_CLK_TCK")

    def cpu_ns(pid):
        """CPU time of a process, by thread (ns, from schedstat), plus what its waited-for
        children used (clock ticks: the seed loop's date and stat processes) under "kids"."""
        out = {}
        for tid in os.listdir(f"/proc/{pid}/task"):
            out[tid] = int(open(f"/proc/{pid}/task/{tid}/schedstat").read().split()[0])
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        out["kids"] = (int(fields[13]) + int(fields[14])) * 10**9 // tick  # cutime + cstime
        return out

    def family(pid):
        """The process and its long-lived descendants (the seed's reader subshell); the loop's
        short-lived sleep, date and stat come back through the loop's cutime."""
        kids = [int(k) for k in open(f"/proc/{pid}/task/{pid}/children").read().split()]
        kids = [k for k in kids if open(f"/proc/{k}/comm").read().strip() in ("sh", "fasttrack")]
        return [pid] + [p for k in kids for p in family(k)]

    # stdin: a pipe that stays open and silent, as syslog-ng's is between errors.
    procs = {name: subprocess.Popen(cmd, shell=True, stdin=subprocess.PIPE, start_new_session=True)
             for name, cmd in [("fasttrack", f"exec {ft}"), ("seed", f"exec {seed}")]}
    time.sleep(3)  # past the start-up (config, destination, recovery pass)
    # Long-lived processes only: the seed loop's per-second date and stat come back through cutime.
    start = {name: {p: cpu_ns(p) for p in family(proc.pid)} for name, proc in procs.items()}
    time.sleep(secs)
    cpu = {}
    for name, proc in procs.items():
        used = 0
        for pid, before in start[name].items():
            try:
                after = cpu_ns(pid)
            except FileNotFoundError:
                raise RuntimeError(f"{name}: process {pid} ended during the idle measurement")
            # Threads that came and went in between count from zero; ones that ended are lost
            # (none should: an idle watch starts and ends nothing).
            used += sum(v - before.get(k, 0) for k, v in after.items())
        cpu[name] = used / 1e9
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()
    f, s = cpu["fasttrack"], cpu["seed"]
    rows.append(("4", f"idle CPU of `watch`, {secs} s without input", f"{f * 1e6:.0f} µs",
                 "seed chain's loop (stamp variant)", f"{s * 1000:.0f} ms",
                 f"{f / s:.4f}x" if s else "-", "<= 1% and < 10 ms",
                 f <= 0.01 * s and f < 0.010,
                 "after a 3 s start-up; thread run time from /proc schedstat, children included"))


def fig_big(a, work, rows, s3):
    """5: peak RSS of rotate + upload of a BIG_MB log; 6: upload of a BIG_MB object."""
    src = os.path.join(work, "big.log")
    make_log(src, a.big_mb)
    noise = os.path.join(work, "big.bin")
    sh(f"head -c {a.big_mb}M /dev/urandom > {noise}")
    obj = os.path.getsize(noise)
    # Figure 6 uploads to its own s3s-fs whose directory is in memory (/dev/shm). This VM's
    # disk is the host's: after a gigabyte was written (even synced), the next upload ran at
    # 0.7x-1.5x its speed, whichever uploader it was. In memory the figure is the uploaders'.
    shm_free = shutil.disk_usage("/dev/shm").free if os.path.isdir("/dev/shm") else 0
    if shm_free < 4 * (a.big_mb << 20):
        log(f"figure 6: /dev/shm has {shm_free >> 20} MiB free, less than 4x {a.big_mb} MiB: "
            "its store writes to disk, and disk noise is in its figures")
        fig_big_runs(a, work, rows, s3, s3, "on disk (/dev/shm too small)", src, noise)
        return
    mem_root = tempfile.mkdtemp(prefix="fasttrack-bench-", dir="/dev/shm")
    try:
        with S3(mem_root) as up_s3:
            fig_big_runs(a, work, rows, s3, up_s3, "in memory (/dev/shm)", src, noise)
    finally:
        shutil.rmtree(mem_root, ignore_errors=True)


def fig_big_runs(a, work, rows, s3, up_s3, where, src, noise):
    endpoint = s3.endpoint
    rss_ft, rss_aws, t_ft, t_aws, t_req = [], [], [], [], []
    # A multiple of 3 runs: who uploads first rotates (see below), so each goes first as often.
    for r in range(-(-a.runs // 3) * 3):
        d = os.path.join(work, f"big{r}")
        os.makedirs(f"{d}/logs")
        common = (f"-c /dev/null --log {d}/logs/docker.log --host h --state-dir {d}/state "
                  f"--log-file {d}/ft.log --reopen none --path-style --region us-east-1")
        # 5: the whole fast-track of the log (rename, gzip, sha256, multipart upload, verify).
        os.link(src, f"{d}/logs/docker.log")
        _, rss, _ = gnu_time(f"{BIN} rotate {common} --dest s3://{BUCKET}/big{r} "
                             f"--endpoint-url {endpoint} >/dev/null")
        rss_ft.append(rss)
        _, rss, _ = gnu_time(f"aws s3 cp --only-show-errors --endpoint-url {endpoint} {src} "
                             f"s3://{BUCKET}/aws{r}/big.log")
        rss_aws.append(rss)
        # 6: a BIG_MB object: random bytes gzip cannot shrink, rotated while the store is down
        # (the file stays pending), then `fasttrack upload` once the store is there. Its own
        # log directory and state: only that file is pending.
        d = os.path.join(work, f"up{r}")
        os.makedirs(f"{d}/logs")
        common = (f"-c /dev/null --log {d}/logs/docker.log --host h --state-dir {d}/state "
                  f"--log-file {d}/ft.log --reopen none --path-style --region us-east-1")
        os.link(noise, f"{d}/logs/docker.log")
        dead = f"http://127.0.0.1:{free_port()}"

        def pending(common, prefix):
            p = subprocess.run(f"{BIN} rotate {common} --dest s3://{BUCKET}/{prefix} "
                               f"--compression-level 1 --endpoint-url {dead}",
                               shell=True, capture_output=True, text=True)
            if p.returncode != 3:
                raise RuntimeError(f"rotate to a dead store exited {p.returncode}: {p.stderr[-2000:]}")

        def timed_upload(cmd):
            """(wall s, client CPU s, s3s-fs CPU s) of one upload. Each starts with nothing left
            to write back: an upload timed while the gigabytes written before it are flushed
            measures the disk, not the uploader."""
            os.sync()
            before = up_s3.cpu()
            wall, _, cpu = gnu_time(cmd)
            return wall, cpu, up_s3.cpu() - before

        pending(common, f"up{r}")
        gz = [os.path.join(f"{d}/logs", n) for n in os.listdir(f"{d}/logs") if n.endswith(".gz")]

        def ft_upload():
            t_ft.append(timed_upload(f"{BIN} upload {common} --dest s3://{BUCKET}/up{r} "
                                     f"--endpoint-url {up_s3.endpoint} >/dev/null"))

        def aws_upload():
            t_aws.append(timed_upload(f"aws s3 cp --only-show-errors --endpoint-url {up_s3.endpoint} "
                                      f"{gz[0]} s3://{BUCKET}/aws{r}/up.gz"))

        # The same with --checksum when-required: no CRC32 header on the parts (Content-MD5
        # and the ETag checks still cover every byte). Its own pending file, made now too.
        d2 = os.path.join(work, f"up{r}-required")
        os.makedirs(f"{d2}/logs")
        common2 = common.replace(d, d2)
        os.link(noise, f"{d2}/logs/docker.log")
        pending(common2, f"req{r}")

        def req_upload():
            t_req.append(timed_upload(f"{BIN} upload {common2} --dest s3://{BUCKET}/req{r} "
                                      f"--checksum when-required --endpoint-url {up_s3.endpoint} >/dev/null"))

        # Who goes first rotates. Whichever upload runs first after the rotates that made the
        # .gz files is slower, by 5-20% (seen for both uploaders, store in memory or on disk):
        # timed first every time, fasttrack lost figure 6 to the order. Each run's ratios pair
        # the uploads of that run.
        steps = [ft_upload, aws_upload, req_upload]
        for step in steps[r % 3:] + steps[:r % 3]:
            step()
        shutil.rmtree(d2)
        shutil.rmtree(os.path.join(up_s3.root, BUCKET, f"req{r}"), ignore_errors=True)
        assert len(gz) == 1, gz
        obj = os.path.getsize(gz[0])
        shutil.rmtree(d)
        shutil.rmtree(os.path.join(work, f"big{r}"))
        shutil.rmtree(os.path.join(s3.root, BUCKET, f"big{r}"), ignore_errors=True)
        shutil.rmtree(os.path.join(s3.root, BUCKET, f"aws{r}"), ignore_errors=True)
        shutil.rmtree(os.path.join(up_s3.root, BUCKET, f"up{r}"), ignore_errors=True)
        shutil.rmtree(os.path.join(up_s3.root, BUCKET, f"aws{r}"), ignore_errors=True)
    f, b = max(rss_ft), median(rss_aws)
    rows.append(("5", f"peak RSS, rotate + upload of a {a.big_mb} MiB log to S3", f"{f / 1024:.0f} MiB",
                 "`aws s3 cp` of the same file", f"{b / 1024:.0f} MiB", f"{f / b:.2f}x",
                 "<= 0.5x and < 64 MB", f / b <= 0.5 and f * 1024 < 64e6,
                 "the largest of fasttrack's runs against the median of aws's"))
    wall = lambda runs: median([w for w, _, _ in runs])
    f, b, q = wall(t_ft), wall(t_aws), wall(t_req)
    cpu = lambda runs, i: median([run[i] for run in runs])

    def paired(ours):
        """The geometric mean of the runs' ratios (aws's time / ours), and the ratios."""
        ratios = [a_[0] / o[0] for o, a_ in zip(ours, t_aws)]
        return statistics.geometric_mean(ratios), ", ".join(f"{x:.2f}x" for x in ratios)

    ratio, spread = paired(t_ft)
    rows.append(("6", f"upload of a {obj / 2**20:.0f} MiB object to the local S3 server ({where})",
                 f"{obj / f / 1e6:.0f} MB/s", "`aws s3 cp`", f"{obj / b / 1e6:.0f} MB/s",
                 f"{ratio:.2f}x", ">= 1x", ratio >= 1,
                 "whole commands, wall time, default `--checksum when-supported` (Content-MD5 and "
                 "x-amz-checksum-crc32 computed in one pass per part); ETags checked; ratio: "
                 f"geometric mean of the runs' ({spread}; first: fasttrack, aws, when-required, ...); "
                 f"speeds: medians; CPU: fasttrack {cpu(t_ft, 1):.1f} s + s3s-fs "
                 f"{cpu(t_ft, 2):.1f} s, aws {cpu(t_aws, 1):.1f} s + s3s-fs {cpu(t_aws, 2):.1f} s"))
    ratio, spread = paired(t_req)
    rows.append(("6", "  the same with `--checksum when-required`", f"{obj / q / 1e6:.0f} MB/s",
                 "`aws s3 cp`", f"{obj / b / 1e6:.0f} MB/s", f"{ratio:.2f}x", ">= 1x", ratio >= 1,
                 f"Content-MD5 only; ETags still checked; runs {spread}; CPU: "
                 f"fasttrack {cpu(t_req, 1):.1f} s + s3s-fs {cpu(t_req, 2):.1f} s"))


def count_lines(paths_gz, live_paths):
    seqs = []
    for p in paths_gz:
        with gzip.open(p, "rt", errors="replace") as f:
            for line in f:
                m = re.search(r"seq=(\d+)", line)
                if m:
                    seqs.append(int(m.group(1)))
    for p in live_paths:
        if os.path.exists(p):
            with open(p, errors="replace") as f:
                for line in f:
                    m = re.search(r"seq=(\d+)", line)
                    if m:
                        seqs.append(int(m.group(1)))
    return seqs


def fig_loss(a, work, rows, s3):
    results = {}
    for kind in ["fasttrack", "seed"]:
        chain = Chain(kind, os.path.join(work, "loss"), s3, a.loss_quiet).start()
        stop = threading.Event()
        sent = [0]

        def traffic():
            seq, start = 0, time.time()
            while not stop.is_set():
                due = int((time.time() - start) * a.rate)
                batch = []
                while seq < due:
                    # a 5xx line every (quiet + 2) seconds of traffic: one rotation each
                    period = int(a.rate * (a.loss_quiet + 2))
                    batch.append(syslog_line(seq, 502 if seq % period == 0 else 200))
                    seq += 1
                if batch:
                    chain.sng.send("".join(batch))
                    sent[0] = seq
                time.sleep(0.005)

        t = threading.Thread(target=traffic)
        t.start()
        deadline = time.time() + a.rotations * (a.loss_quiet + 10) + 120
        while len(chain.objects()) < a.rotations and time.time() < deadline:
            time.sleep(0.2)
        stop.set()
        t.join()
        rotations = len(chain.objects())
        time.sleep(a.loss_quiet + 5)  # a rotation in flight finishes
        dropped = chain.sng.dropped()
        chain.stop()
        live = [chain.log] + [os.path.join(chain.logs, n) for n in os.listdir(chain.logs)
                              if re.fullmatch(r"docker\.log(\.\d+|-\d+)", n)]
        seqs = count_lines(chain.objects(), live)
        counts = {}
        for s in seqs:
            counts[s] = counts.get(s, 0) + 1
        lost = sum(1 for s in range(sent[0]) if s not in counts)
        dup = sum(n - 1 for n in counts.values() if n > 1)
        if dup:
            log(f"{kind}: duplicated seqs {[s for s, n in counts.items() if n > 1][:10]}")
        results[kind] = (sent[0], lost, dup, rotations, dropped.get("d_docker", 0))
        log(f"loss {kind}: sent {sent[0]}, lost {lost}, duplicated {dup}, {rotations} objects, "
            f"syslog-ng dropped {dropped}")
    f, s = results["fasttrack"], results["seed"]
    rows.append(("7", f"lines lost / duplicated over {a.rotations} rotations, {a.rate} lines/s",
                 f"{f[1]} / {f[2]} of {f[0]:,}", "seed chain (stamp variant)",
                 f"{s[1]} / {s[2]} of {s[0]:,}", "-", "0 / 0 for fasttrack",
                 f[1] == 0 and f[2] == 0,
                 f"objects: fasttrack {f[3]}, seed {s[3]}; quiet {a.loss_quiet} s for both"))


def index_record(rng, prefix, host, i, day):
    """An incident index record as `fasttrack rotate` writes it (docs/incident-index.md)."""
    name = f"docker.log-{1795300000 + i * 600}"
    first = f"{day}T{i % 24:02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.000Z"
    lines = rng.randint(5, 5000)
    statuses = {"502": lines * 6 // 10, "503": lines * 3 // 10}
    statuses["500"] = lines - statuses["502"] - statuses["503"]
    templates = [(f"POST /api/v2/orders/<n> {s}", str(s)) for s in (502, 503, 500)] + [
        ("GET /checkout/<n> 502", "502"),
        ("[error] ChargeCard 500 provider answered HTTP/<n> <n> after <n>ms", "500")]
    record = {
        "version": 1, "dt": day, "host": host, "log": f"{name}.gz",
        "key": f"{prefix}/{host}/{name}.gz", "sidecar_key": f"{prefix}/{host}/{name}.json",
        "bytes": lines * 40, "lines": lines, "first_seen": first, "last_seen": first,
        "incident_id": first.replace("-", "").replace(":", ""), "statuses": statuses,
        "programs": [{"key": f"docker/{c}", "count": lines // (k + 2)}
                     for k, c in enumerate(rng.sample(CONTAINERS, 3))],
        "messages": [{"template": t, "count": lines // (k + 2), "status": st}
                     for k, (t, st) in enumerate(templates)],
        "shipped_at": first[:19] + "Z",
    }
    key = f"{prefix}/_incidents/dt={day}/{host}-{name}.json"
    return key, json.dumps(record, separators=(",", ":")) + "\n"


def fig_report(a, work, rows, shared_s3):
    """12: `fasttrack report` over a fleet's index, written straight into s3s-fs's directory.
    Its own s3s-fs: the shared one, after figure 10's 5 GiB upload, served the same listing
    and records with 40% more CPU (report 14.0 s against 7.6 s with a fresh server)."""
    with S3(os.path.join(work, "report-store")) as s3:
        fig_report_runs(a, work, rows, s3)


def fig_report_runs(a, work, rows, s3):
    days = ["2026-11-21", "2026-11-22"]

    def fleet(prefix, hosts):
        rng = random.Random(8)
        for h in range(hosts):
            host = f"web{h:04d}"
            for i in range(a.report_incidents):
                key, body = index_record(rng, prefix, host, i, days[i % 2])
                os.makedirs(os.path.dirname(s3.path(key)), exist_ok=True)
                with open(s3.path(key), "w") as f:
                    f.write(body)
        return hosts * a.report_incidents

    small_hosts = max(1, a.report_hosts // 10)
    n_big, n_small = fleet("fleet", a.report_hosts), fleet("fleet-small", small_hosts)
    out = os.path.join(work, "report.json")

    def report(prefix, n):
        before = s3.cpu()
        wall, rss, cpu = gnu_time(
            f"{BIN} report s3://{BUCKET}/{prefix} -c /dev/null --host bench "
            f"--state-dir {work}/report-state --endpoint-url {s3.endpoint} --path-style "
            f"--region us-east-1 --since {days[0]} --until 2026-11-23 --json > {out}")
        with open(out) as f:
            got = json.load(f)
        if got["incidents"] != n or got["unreadable"]:
            raise RuntimeError(f"report counted {got['incidents']} of {n} records: {got['errors']}")
        return wall, rss, cpu, s3.cpu() - before

    big, small = [], []
    for _ in range(a.runs):
        big.append(report("fleet", n_big))
        small.append(report("fleet-small", n_small))
    t_big, t_small = median([r[0] for r in big]), median([r[0] for r in small])
    rss_big, rss_small = max(r[1] for r in big), max(r[1] for r in small)
    cpu_big, server_big = median([r[2] for r in big]), median([r[3] for r in big])
    rows.append(("12", f"`fasttrack report` over {n_big:,} index records "
                      f"({a.report_hosts:,} hosts x {a.report_incidents}) on s3s-fs",
                 f"{t_big:.2f} s, {rss_big / 1024:.1f} MiB",
                 f"the same over {n_small:,} records ({small_hosts:,} hosts)",
                 f"{t_small:.2f} s, {rss_small / 1024:.1f} MiB",
                 f"{t_big / t_small:.1f}x", "< 10 s, peak RSS < 1.5x the small run's",
                 t_big < 10 and rss_big < 1.5 * rss_small,
                 f"2 partitions listed at once (ListObjectsV2, 1,000 keys a page), records "
                 f"fetched while listed, 64 in flight; peak RSS {rss_big / rss_small:.2f}x for 10x "
                 f"the records; CPU: fasttrack {cpu_big:.1f} s, s3s-fs {server_big:.1f} s"))


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="1,2,3,4,5,6,7,8,9,10,11,12")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--log-mb", type=int, default=200)
    ap.add_argument("--big-mb", type=int, default=1024)
    ap.add_argument("--drain-lines", type=int, default=5_000_000)
    ap.add_argument("--idle-seconds", type=int, default=60)
    ap.add_argument("--quiet", type=int, default=5, help="quiet period of both chains in figure 3")
    ap.add_argument("--loss-quiet", type=int, default=2, help="quiet period of both chains in figure 7")
    ap.add_argument("--rotations", type=int, default=20)
    ap.add_argument("--rate", type=int, default=2000, help="lines/s of steady traffic in figure 7")
    ap.add_argument("--report-hosts", type=int, default=1000, help="hosts of figure 12's fleet")
    ap.add_argument("--report-incidents", type=int, default=20, help="incidents per host, figure 12")
    ap.add_argument("--link-mbps", type=int, default=40, help="figure 9's link to S3, MB/s")
    ap.add_argument("--stream-args", default="", help="more fasttrack options for both sides of figure 9")
    ap.add_argument("--huge-mb", type=int, default=5120, help="figure 10's log, MiB")
    ap.add_argument("--huge-runs", type=int, default=1, help="runs of figure 10")
    ap.add_argument("--keep-work", action="store_true")
    a = ap.parse_args()
    only = set(a.only.split(","))
    work = tempfile.mkdtemp(prefix="fasttrack-bench-", dir="/var/tmp")
    rows = []
    s3 = None
    try:
        if only & {"3", "5", "6", "7", "9", "10", "12"}:
            s3 = S3(work)
        if "8" in only:
            only.add("2")
        for n, fn in [("1", fig_drain), ("2", fig_compress), ("4", fig_idle), ("11", fig_size)]:
            if n in only:
                log(f"figure {n}")
                fn(a, work, rows)
        if "6" in only:
            only.add("5")
        for n, fn in [("3", fig_latency), ("5", fig_big), ("7", fig_loss), ("9", fig_stream),
                      ("10", fig_huge), ("12", fig_report)]:
            if n in only:
                log(f"figure {n}")
                # Nothing left to write back from the figure before (figure 10 leaves gigabytes
                # dirty). What slowed figure 12 after figure 10 was not that but the shared
                # store: see fig_report.
                os.sync()
                fn(a, work, rows, s3)
    finally:
        for sng in list(RUNNING):
            sng.stop()
        if s3:
            s3.stop()
        if not a.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    rows.sort(key=lambda r: int(r[0]))
    print("| # | figure | fasttrack | baseline | baseline's figure | ratio | target | met | notes |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        met = "" if r[7] is None else ("yes" if r[7] else "**no**")
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]} | {r[6]} | {met} | {r[8]} |")
    print()
    print(f"{a.runs} runs each, medians; `python3 benches/bench.py {' '.join(sys.argv[1:])}`; "
          f"{os.cpu_count()} cores, Linux {os.uname().release}")
    return 0 if all(r[7] is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
