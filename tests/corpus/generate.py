#!/usr/bin/env python3
"""Writes tests/corpus/http-status.jsonl: realistic log lines of every format fasttrack reads a
status from, each with the classification it must get. Deterministic (seeded); run it again
after changing it and commit both: python3 tests/corpus/generate.py

Each record: {"format": ..., "expect": "5xx" | "other" | "none", "status": N or null,
"line": the message as the container wrote it (no syslog header)}.
Addresses are from the documentation ranges (192.0.2.0/24, 198.51.100.0/24, 2001:db8::/32).
"""
import json
import os
import random

rng = random.Random(20261202)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "http-status.jsonl")

FIVE = [500, 502, 503, 504, 500, 502, 599, 501, 507]
OTHER = [200, 200, 201, 204, 301, 302, 304, 400, 401, 403, 404, 404, 409, 429, 499, 101]
PATHS = ["/", "/api/orders/{n}", "/v1/500/items", "/api/users/{n}/profile", "/search?q=502&page={n}",
         "/static/app.{n}.js", "/healthz", "/api/v2/carts/{n}/items/503", "/login?next=/500",
         "/status/504", "/api/status=502"]
METHODS = ["GET", "GET", "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
AGENTS = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36", "curl/8.5.0", "python-requests/2.31.0",
          "kube-probe/1.29", "Go-http-client/2.0", "HTTP/1.1 502 checker"]
VERSIONS = ["1.1", "1.1", "1.0", "2.0", "2"]

records = []


def client():
    if rng.random() < 0.3:
        return f"2001:db8:{rng.randrange(65536):x}::{rng.randrange(1, 65536):x}"
    return f"{rng.choice(['192.0.2', '198.51.100', '203.0.113'])}.{rng.randrange(1, 255)}"


def path():
    return rng.choice(PATHS).format(n=rng.randrange(1, 99999))


def size(status):
    # the trap: non-5xx responses with a 500..599-byte body, half of the time
    if status < 500 and rng.random() < 0.5:
        return rng.randrange(500, 600)
    return rng.randrange(0, 90000)


def pick(five):
    return rng.choice(FIVE) if five else rng.choice(OTHER)


def add(fmt, status, line):
    expect = "none" if status is None else ("5xx" if 500 <= status <= 599 else "other")
    records.append({"format": fmt, "expect": expect, "status": status, "line": line})


def date_clf():
    return f"[22/Nov/2026:04:{rng.randrange(60):02d}:{rng.randrange(60):02d} +0000]"


def iso():
    return f"2026-11-22T04:{rng.randrange(60):02d}:{rng.randrange(60):02d}.{rng.randrange(1000):03d}Z"


def each(n, fn):
    for i in range(n):
        fn(i % 3 == 0)


def nginx_combined(five):
    s = pick(five)
    add("nginx-combined", s,
        f'{client()} - - {date_clf()} "{rng.choice(METHODS)} {path()} HTTP/{rng.choice(VERSIONS)}" '
        f'{s} {size(s)} "{rng.choice(["-", "https://shop.example/cart"])}" "{rng.choice(AGENTS)}"')


def nginx_timed(five):
    s = pick(five)
    up = rng.choice([s, 502, 504, "-"]) if s < 500 else s
    add("nginx-timed", s,
        f'{client()} - - {date_clf()} "{rng.choice(METHODS)} {path()} HTTP/1.1" {s} {size(s)} "-" '
        f'"{rng.choice(AGENTS)}" rt=0.{rng.choice([512, 503, 500, 57])} uct="0.001" '
        f'upstream_status={up} upstream_response_time=0.5{rng.randrange(10, 99)}')


def apache_common(five):
    s = pick(five)
    add("apache-common", s,
        f'{client()} - {rng.choice(["-", "frank"])} {date_clf()} "{rng.choice(METHODS)} {path()} '
        f'HTTP/1.0" {s} {rng.choice([size(s), "-"])}')


def traefik(five):
    s = pick(five)
    add("traefik-clf", s,
        f'{client()} - - {date_clf()} "{rng.choice(METHODS)} {path()} HTTP/2.0" {s} {size(s)} "-" '
        f'"{rng.choice(AGENTS)}" {rng.randrange(1, 9999)} "shop@docker" "http://192.0.2.{rng.randrange(2, 250)}:80" '
        f'{rng.randrange(1, 600)}ms')


def envoy(five):
    s = pick(five)
    flags = rng.choice(["-", "UF", "UH", "URX"]) if s >= 500 else "-"
    add("envoy", s,
        f'[{iso()}] "{rng.choice(METHODS)} {path()} HTTP/{rng.choice(["1.1", "2"])}" {s} {flags} '
        f'{rng.randrange(0, 999)} {size(s)} {rng.randrange(1, 600)} {rng.choice(["-", "502", "5"])} '
        f'"{client()}" "{rng.choice(AGENTS)}" "{rng.getrandbits(64):016x}" "shop.example" '
        f'"192.0.2.{rng.randrange(2, 250)}:8080"')


def haproxy(five):
    s = pick(five)
    timers = "/".join(str(rng.choice([-1, 0, rng.randrange(0, 600)])) for _ in range(4))
    total = rng.choice(["", "+"]) + str(rng.randrange(0, 9000))
    add("haproxy-http", s,
        f'{client() if rng.random() < 0.7 else "198.51.100.4"}:{rng.randrange(1024, 65535)} '
        f'[22/Nov/2026:04:26:{rng.randrange(60):02d}.{rng.randrange(1000):03d}] http-in '
        f'shop/srv{rng.randrange(1, 9)} {timers}/{total} {s} {size(s)} - - '
        f'{rng.choice(["----", "SH--", "cD--"])} 1/1/0/0/0 0/0 "{rng.choice(METHODS)} {path()} HTTP/1.1"')


def caddy_json(five):
    s = pick(five)
    add("caddy-json", s, json.dumps({
        "level": "error" if s >= 500 else "info", "ts": 1795000000 + rng.random(),
        "logger": "http.log.access.log0", "msg": "handled request",
        "request": {"remote_ip": client(), "proto": f"HTTP/{rng.choice(['1.1', '2.0'])}",
                    "method": rng.choice(METHODS), "host": "shop.example", "uri": path()},
        "bytes_read": 0, "duration": rng.random(), "size": size(s), "status": s}, separators=(",", ":")))


def app_json(five):
    s = pick(five)
    form = rng.randrange(6)
    msg = rng.choice(["payment gateway timeout after 3000ms", "upstream said HTTP/1.1 502 ",
                      "retrying: status=503 from inventory", "ok", "user 17 not found"])
    if form == 0:
        obj = {"level": "error", "status": s, "message": msg, "requestId": f"req-{rng.getrandbits(32):08x}"}
    elif form == 1:
        obj = {"level": "warn", "statusCode": str(s), "route": path(), "msg": msg}
    elif form == 2:
        obj = {"ts": iso(), "http": {"method": rng.choice(METHODS), "status_code": s, "path": path()},
               "msg": msg}
    elif form == 3:
        obj = {"time": iso(), "response": {"status": s, "size": size(s)}, "upstream_status": 502,
               "msg": msg}
    elif form == 4:
        obj = {"severity": "ERROR", "status_code": s, "error": msg, "latency_ms": 512}
    else:
        obj = {"lvl": "info", "http_status": s, "event": msg, "bytes": size(s)}
    add("app-json", s, json.dumps(obj, separators=rng.choice([(",", ":"), (", ", ": ")])))


def key_value(five):
    s = pick(five)
    key = rng.choice(["status", "status", "http_status", "status_code", "statusCode"])
    value = rng.choice([str(s), f'"{s}"'])
    add("key-value", s,
        f'time={iso()} level={"error" if s >= 500 else "info"} method={rng.choice(METHODS)} '
        f'path={path()} {key}={value} duration=0.{rng.choice([512, 503, 5])} '
        f'upstream_status={rng.choice([502, 503, 200])} bytes={size(s)}')


def plain_request(five):
    s = pick(five)
    add("plain-request", s, f"{rng.choice(METHODS)} {path()} HTTP/1.1 {s} {size(s)}")


def no_status(_five):
    form = rng.randrange(5)
    if form == 0:
        line = (f'2026/11/22 04:26:{rng.randrange(60):02d} [error] 31#31: *{rng.randrange(99999)} upstream '
                f'timed out (110: Connection timed out) while reading response header from upstream, '
                f'client: {client()}, server: _, request: "GET {path()} HTTP/1.1", upstream: '
                f'"http://192.0.2.10:8080/api", host: "shop.example"')
    elif form == 1:
        line = "Traceback (most recent call last):"
    elif form == 2:
        line = json.dumps({"level": "error", "msg": "GET /api HTTP/1.1 502 upstream", "err": "EOF"})
    elif form == 3:
        line = f"worker {rng.randrange(1, 64)} exited with code 512 after 0.503s"
    else:
        line = f"upstream_status=502 bytes={rng.randrange(500, 600)} rt=0.512"
    add("no-status", None, line)


for fn, n in [(nginx_combined, 60), (nginx_timed, 40), (apache_common, 30), (traefik, 30), (envoy, 30),
              (haproxy, 30), (caddy_json, 30), (app_json, 60), (key_value, 40), (plain_request, 20),
              (no_status, 30)]:
    each(n, fn)

with open(OUT + ".tmp", "w") as f:
    for r in records:
        f.write(json.dumps(r, separators=(",", ":")) + "\n")
os.replace(OUT + ".tmp", OUT)
print(f"{len(records)} lines written to {OUT}")
