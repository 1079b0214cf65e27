#!/usr/bin/env python3
"""Core figures of fasttrack, each against its baseline in the same run (medians of RUNS).

1. stdin drain rate of `fasttrack watch` (200-byte lines, no rotation) and its peak RSS,
   against `cat | wc -l` on the same pipe input;
2. wall time of `fasttrack rotate --reopen none` of a 100 MB docker.log to a file:// dir
   (rename + gzip -6 + fsync + ship + record), against `gzip -6` of the same file.

Usage: python3 benches/core.py [--lines N] [--log-mb MB] [--runs R]
Prints one Markdown table. Needs a release build (built here).
"""
import argparse, os, random, resource, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "fasttrack")


def timed(cmd, **kw):
    """Runs a shell pipeline; returns (seconds, peak RSS of the largest child in KiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    subprocess.run(cmd, shell=True, check=True, **kw)
    return time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


def peak_rss(cmd):
    out = subprocess.run(["/usr/bin/time", "-f", "%M", "sh", "-c", cmd],
                         check=True, stderr=subprocess.PIPE, text=True).stderr
    return int(out.strip().splitlines()[-1])


def docker_line(rng, i):
    status = rng.choices([200, 201, 304, 404, 500, 502, 503], [70, 5, 10, 13, 1, .5, .5])[0]
    host = f"web{rng.randint(1, 8)}"
    ctr = rng.choice(["shop-web", "api", "auth", "search", "worker"])
    path = rng.choice(["/products/", "/cart/", "/api/v2/orders/", "/static/app.", "/login?next=/"])
    return (f"Nov 21 12:{i // 60000 % 60:02d}:{i // 1000 % 60:02d} {host} docker/{ctr}[{rng.randint(100, 999)}]: "
            f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)} - - "
            f"\"GET {path}{rng.randint(1, 99999)} HTTP/1.1\" {status} {rng.randint(100, 90000)} "
            f"rt={rng.random():.3f} req={rng.getrandbits(64):016x}\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=5_000_000)
    ap.add_argument("--log-mb", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    if not shutil.which("time") and not os.path.exists("/usr/bin/time"):
        subprocess.run("apt-get install -y -qq time >/dev/null", shell=True, check=True)
    work = tempfile.mkdtemp(prefix="fasttrack-bench-")
    rows = []
    try:
        # 1. drain rate
        lines = os.path.join(work, "lines")
        with open(lines, "wb") as f:
            line = (b"x" * 199) + b"\n"
            f.write(line * a.lines)
        common = (f"-c /dev/null --log {work}/none/docker.log --dest file://{work} --state-dir {work}/st "
                  f"--log-file {work}/ft.log --reopen none --quiet 1h")
        os.makedirs(f"{work}/none")
        base, ours, rss = [], [], []
        for _ in range(a.runs):
            base.append(timed(f"cat {lines} | wc -l >/dev/null")[0])
            ours.append(timed(f"cat {lines} | {BIN} watch {common}")[0])
        rss.append(peak_rss(f"cat {lines} | {BIN} watch {common}"))
        b, o = statistics.median(base), statistics.median(ours)
        rows.append(("stdin drain, lines/s (200-byte lines)", f"{a.lines / o:,.0f}", "`cat \\| wc -l`",
                     f"{a.lines / b:,.0f}", f"{b / o:.2f}x", f"peak RSS {rss[0] / 1024:.1f} MiB"))

        # 2. rotation of a 100 MB log
        rng = random.Random(42)
        src = os.path.join(work, "source.log")
        with open(src, "w") as f:
            size, i = 0, 0
            while size < a.log_mb * 1024 * 1024:
                l = docker_line(rng, i)
                f.write(l)
                size += len(l)
                i += 1
        logdir = os.path.join(work, "rot")
        base, ours = [], []
        gz_size = plain_size = 0
        for r in range(a.runs):
            shutil.rmtree(logdir, ignore_errors=True)
            shutil.rmtree(f"{work}/out", ignore_errors=True)
            shutil.rmtree(f"{work}/st2", ignore_errors=True)
            os.makedirs(logdir)
            os.makedirs(f"{work}/out")
            shutil.copy(src, f"{logdir}/docker.log")
            base.append(timed(f"gzip -6 -c {src} > {work}/baseline.gz")[0])
            ours.append(timed(f"{BIN} rotate -c /dev/null --log {logdir}/docker.log --dest file://{work}/out "
                              f"--state-dir {work}/st2 --log-file {work}/ft2.log --reopen none --host bench "
                              f">/dev/null 2>&1")[0])
            gz_size = sum(os.path.getsize(os.path.join(dp, n)) for dp, _, ns in os.walk(f"{work}/out") for n in ns)
            plain_size = os.path.getsize(src)
        b, o = statistics.median(base), statistics.median(ours)
        rows.append((f"rotate {a.log_mb} MB log to file:// (s)", f"{o:.2f}", "`gzip -6`", f"{b:.2f}",
                     f"{b / o:.2f}x faster" if o < b else f"{o / b:.2f}x slower",
                     f"size {gz_size / os.path.getsize(f'{work}/baseline.gz'):.3f}x of gzip -6 "
                     f"({plain_size / gz_size:.1f}:1)"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{a.runs} runs each, medians, `nproc`={os.cpu_count()}\n")
    print("| figure | fasttrack | baseline | baseline value | ratio | notes |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    sys.exit(main())
