#!/usr/bin/env python3
"""Client side of scripts/load.sh (Python standard library only).

Subcommands:
  ports N                 print N free loopback ports
  review OUT IMAGE...     write an AdmissionReview (Pod CREATE) with one container per image
  cold                    one single-image review per image, one after another, on ONE
                          keep-alive TLS connection: per-request latency of cold verification
  burst                   one review whose Pod has one container per image: time to verify
                          them all (trustgate verifies distinct images concurrently)
  concurrent              one single-image review per image, all at once, each on its own
                          TLS connection opened (handshake done) before the clock starts
  fill-push               push COUNT tiny images and sign each one in cosign's classic format
                          with a plain P-256 key through openssl (cosign would take ~0.3 s each)
  fill-review             send reviews of BATCH images each until every image was reviewed,
                          reading the server's VmRSS at checkpoints
  metrics                 print trustgate's admission and cache counters as key=value
  registry-latency        print the mean latency of trustgate's registry calls per operation
  server-latency          print trustgate's own time per review, from its histogram
  cpu-run -- CMD...       run CMD; report the share of all cores used by trustgate, CMD and
                          everything else meanwhile (percent of all cores)

Every review answer is checked: HTTP 200, an AdmissionReview whose response.uid is ours and
whose response.allowed is true. Anything else exits non-zero with the server's message.
Results go to stdout as one JSON object.
"""

import argparse
import base64
import hashlib
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


# Everything this script talks to is on 127.0.0.1: never through an http_proxy from the environment.
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def die(msg):
    print(f"loadclient: {msg}", file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------- admission reviews


def review_body(template_path, images):
    """The captured Pod CREATE fixture with its containers replaced: one per image."""
    with open(template_path, encoding="utf-8") as f:
        review = json.load(f)
    req = review["request"]
    req["uid"] = str(uuid.uuid4())
    spec = req["object"]["spec"]
    proto = spec["containers"][0]
    spec.pop("initContainers", None)
    containers = []
    for i, image in enumerate(images):
        c = json.loads(json.dumps(proto))
        c["name"] = f"c{i}"
        c["image"] = image
        containers.append(c)
    spec["containers"] = containers
    return review


def read_images(path):
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def tls_context(ca):
    ctx = ssl.create_default_context(cafile=ca)
    return ctx


def connect(url, ca):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPSConnection(u.hostname, u.port, context=tls_context(ca), timeout=60)
    conn.connect()  # TCP + TLS handshake, before any timing starts
    path = u.path + ("?" + u.query if u.query else "")
    return conn, path


def post_review(conn, path, review):
    """POSTs one review on an open connection; returns (seconds, parsed answer)."""
    body = json.dumps(review, separators=(",", ":")).encode()
    start = time.perf_counter()
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    elapsed = time.perf_counter() - start
    if resp.status != 200:
        die(f"HTTP {resp.status} from trustgate: {data[:500]!r}")
    answer = json.loads(data)
    return elapsed, answer


def check_allowed(review, answer, what):
    r = answer.get("response") or {}
    if r.get("uid") != review["request"]["uid"]:
        die(f"{what}: answer for another uid: {r.get('uid')!r}")
    if r.get("allowed") is not True:
        die(f"{what}: NOT allowed: {json.dumps(r.get('status'))[:2000]}")


def stats_ms(seconds):
    ms = sorted(s * 1e3 for s in seconds)
    n = len(ms)

    def pct(p):
        # nearest-rank percentile
        k = max(0, min(n - 1, int(-(-p * n // 100)) - 1))
        return ms[k]

    return {
        "n": n,
        "min_ms": round(ms[0], 3),
        "p50_ms": round(pct(50), 3),
        "p90_ms": round(pct(90), 3),
        "max_ms": round(ms[-1], 3),
        "mean_ms": round(sum(ms) / n, 3),
        "all_ms": [round(x, 3) for x in (s * 1e3 for s in seconds)],
    }


def cmd_review(a):
    images = list(a.image)
    if a.images_file:
        images += read_images(a.images_file)
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(review_body(a.template, images), f, separators=(",", ":"))


def cmd_cold(a):
    images = read_images(a.images_file)
    conn, path = connect(a.url, a.ca)
    times = []
    for image in images:
        review = review_body(a.template, [image])
        elapsed, answer = post_review(conn, path, review)
        check_allowed(review, answer, image)
        times.append(elapsed)
    conn.close()
    print(json.dumps(stats_ms(times)))


def cmd_burst(a):
    images = read_images(a.images_file)
    conn, path = connect(a.url, a.ca)
    review = review_body(a.template, images)
    elapsed, answer = post_review(conn, path, review)
    check_allowed(review, answer, f"Pod with {len(images)} containers")
    # The same review again: every decision is now cached.
    review2 = review_body(a.template, images)
    elapsed2, answer2 = post_review(conn, path, review2)
    check_allowed(review2, answer2, f"Pod with {len(images)} containers (cached)")
    conn.close()
    print(json.dumps({"images": len(images), "cold_ms": round(elapsed * 1e3, 3), "cached_ms": round(elapsed2 * 1e3, 3)}))


def cmd_concurrent(a):
    images = read_images(a.images_file)
    conns = [connect(a.url, a.ca) for _ in images]
    reviews = [review_body(a.template, [image]) for image in images]
    bodies = [json.dumps(r, separators=(",", ":")).encode() for r in reviews]
    barrier = threading.Barrier(len(images) + 1)
    starts, ends, answers, errors = [0.0] * len(images), [0.0] * len(images), [None] * len(images), []

    def one(i):
        conn, path = conns[i]
        barrier.wait()
        try:
            starts[i] = time.perf_counter()
            conn.request("POST", path, body=bodies[i], headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            ends[i] = time.perf_counter()
            if resp.status != 200:
                errors.append(f"HTTP {resp.status}: {data[:300]!r}")
            else:
                answers[i] = json.loads(data)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(images))]
    for t in threads:
        t.start()
    barrier.wait()
    for t in threads:
        t.join()
    for conn, _ in conns:
        conn.close()
    if errors:
        die(f"concurrent reviews failed: {errors[:5]}")
    for i, image in enumerate(images):
        check_allowed(reviews[i], answers[i], image)
    lat = [ends[i] - starts[i] for i in range(len(images))]
    wall = max(ends) - min(starts)
    s = stats_ms(lat)
    s.pop("all_ms")
    print(json.dumps({"reviews": len(images), "wall_ms": round(wall * 1e3, 3), "per_review": s}))


# ---------------------------------------------------------------- registry fill


class RegistryConn:
    """Keep-alive plain-HTTP connection to the loopback registry."""

    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.addr = addr
        self.conn = http.client.HTTPConnection(host, int(port), timeout=60)

    def call(self, method, path, body=None, headers=None, expect=(200, 201, 202)):
        self.conn.request(method, path, body=body, headers=headers or {})
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status not in expect:
            die(f"registry {method} {path}: HTTP {resp.status}: {data[:300]!r}")
        return resp, data

    def put_blob(self, repo, data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        resp, _ = self.call("POST", f"/v2/{repo}/blobs/uploads/", body=b"", expect=(202,))
        loc = resp.getheader("Location")
        u = urllib.parse.urlsplit(loc)
        path = u.path + "?" + (u.query + "&" if u.query else "") + "digest=" + urllib.parse.quote(digest)
        self.call("PUT", path, body=data, headers={"Content-Type": "application/octet-stream"}, expect=(201,))
        return digest

    def put_manifest(self, repo, reference, manifest):
        body = json.dumps(manifest, separators=(",", ":")).encode()
        self.call("PUT", f"/v2/{repo}/manifests/{reference}", body=body, headers={"Content-Type": OCI_MANIFEST}, expect=(201,))
        return "sha256:" + hashlib.sha256(body).hexdigest(), len(body)


def sign_p256(key_path, payload):
    """ECDSA P-256 / SHA-256, ASN.1 DER, base64: what cosign writes for a P-256 key."""
    out = subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", key_path],
        input=payload,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        check=False,
    )
    if out.returncode != 0:
        die(f"openssl dgst -sign failed: {out.stderr.decode()}")
    return base64.b64encode(out.stdout).decode()


def push_signed_image(reg, repo, token, layer, layer_digest, key_path):
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"trustgate.test": token}},
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        },
        separators=(",", ":"),
    ).encode()
    config_digest = reg.put_blob(repo, config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": len(layer)}],
    }
    digest, _ = reg.put_manifest(repo, token, manifest)
    # The simple-signing payload, byte for byte in cosign's layout.
    payload = json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": f"{reg.addr}/{repo}"},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        },
        separators=(",", ":"),
    ).encode()
    signature = sign_p256(key_path, payload)
    payload_digest = reg.put_blob(repo, payload)
    sig_config = json.dumps(
        {
            "architecture": "",
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"}],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": [payload_digest]},
            "config": {},
        },
        separators=(",", ":"),
    ).encode()
    sig_config_digest = reg.put_blob(repo, sig_config)
    sig_manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "size": len(sig_config), "digest": sig_config_digest},
        "layers": [
            {
                "mediaType": SIMPLE_SIGNING,
                "size": len(payload),
                "digest": payload_digest,
                "annotations": {SIGNATURE_ANNOTATION: signature},
            }
        ],
    }
    reg.put_manifest(repo, "sha256-" + digest.split(":", 1)[1] + ".sig", sig_manifest)
    return f"{reg.addr}/{repo}@{digest}"


def cmd_fill_push(a):
    repos = [f"{a.repo_prefix}-{i:03d}" for i in range(a.repos)]
    run = f"{os.getpid()}-{time.time_ns()}"
    layer = f"trustgate load fill layer {run}\n".encode()
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    results = [None] * a.count
    next_index = [0]
    lock = threading.Lock()
    failures = []

    def worker():
        reg = RegistryConn(a.registry)
        uploaded = set()
        try:
            while True:
                with lock:
                    i = next_index[0]
                    next_index[0] += 1
                if i >= a.count:
                    return
                repo = repos[i % len(repos)]
                if repo not in uploaded:
                    reg.put_blob(repo, layer)
                    uploaded.add(repo)
                results[i] = push_signed_image(reg, repo, f"f{i}-{run}", layer, layer_digest, a.key)
        except SystemExit as e:
            failures.append(str(e))
        except Exception as e:  # noqa: BLE001 - reported below
            failures.append(repr(e))

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(a.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures or any(r is None for r in results):
        die(f"fill-push failed: {failures[:3]}")
    with open(a.out, "w", encoding="utf-8") as f:
        f.write("\n".join(results) + "\n")
    print(json.dumps({"pushed": a.count, "seconds": round(time.perf_counter() - start, 1)}))


def vmrss_kib(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    die(f"no VmRSS for pid {pid}")


def cmd_fill_review(a):
    images = read_images(a.images_file)
    checkpoints = sorted(int(c) for c in a.checkpoints.split(",") if c)
    conn, path = connect(a.url, a.ca)
    done, rss, slowest = 0, [], 0.0
    start = time.perf_counter()
    for i in range(0, len(images), a.batch):
        chunk = images[i : i + a.batch]
        review = review_body(a.template, chunk)
        elapsed, answer = post_review(conn, path, review)
        check_allowed(review, answer, f"fill review of images {i}..{i + len(chunk) - 1}")
        slowest = max(slowest, elapsed)
        done += len(chunk)
        if checkpoints and done >= checkpoints[0]:
            while checkpoints and done >= checkpoints[0]:
                checkpoints.pop(0)
            rss.append({"decisions": done, "vmrss_kib": vmrss_kib(a.pid)})
    conn.close()
    print(
        json.dumps(
            {
                "reviewed": done,
                "batch": a.batch,
                "seconds": round(time.perf_counter() - start, 1),
                "slowest_review_ms": round(slowest * 1e3, 1),
                "rss": rss,
            }
        )
    )


# ---------------------------------------------------------------- misc


def cmd_ports(a):
    socks = []
    for _ in range(a.n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    print(" ".join(str(s.getsockname()[1]) for s in socks))
    for s in socks:
        s.close()


def cmd_metrics(a):
    with NO_PROXY.open(a.url, timeout=10) as r:
        text = r.read().decode()
    wanted = {
        'trustgate_admission_requests_total{decision="allowed"}': "allowed",
        'trustgate_admission_requests_total{decision="denied"}': "denied",
        'trustgate_admission_requests_total{decision="warned"}': "warned",
        'trustgate_admission_requests_total{decision="error"}': "error",
        'trustgate_cache_requests_total{result="hit"}': "cache_hit",
        'trustgate_cache_requests_total{result="miss"}': "cache_miss",
    }
    values = {v: 0 for v in wanted.values()}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        parts = line.rsplit(" ", 1)
        if len(parts) == 2 and parts[0] in wanted:
            values[wanted[parts[0]]] = int(float(parts[1]))
    print(" ".join(f"{k}={v}" for k, v in values.items()))


def registry_histograms(url):
    with NO_PROXY.open(url, timeout=10) as r:
        text = r.read().decode()
    sums, counts = {}, {}
    prefix = "trustgate_registry_request_duration_seconds_"
    for line in text.splitlines():
        if not line.startswith(prefix):
            continue
        name, value = line.rsplit(" ", 1)
        kind = name[len(prefix) :].split("{", 1)[0]
        op = name.split('operation="', 1)[1].split('"', 1)[0] if 'operation="' in name else "?"
        if kind == "sum":
            sums[op] = float(value)
        elif kind == "count":
            counts[op] = int(float(value))
    return {"sums": sums, "counts": counts}


def cmd_registry_latency(a):
    """Mean latency of trustgate's registry calls per operation, from its histogram; with
    --since, only the calls made after that snapshot."""
    now = registry_histograms(a.url)
    if a.save:
        with open(a.save, "w", encoding="utf-8") as f:
            json.dump(now, f)
        return
    before = {"sums": {}, "counts": {}}
    if a.since:
        with open(a.since, encoding="utf-8") as f:
            before = json.load(f)
    parts = []
    for op in sorted(now["counts"]):
        n = now["counts"][op] - before["counts"].get(op, 0)
        total = now["sums"].get(op, 0.0) - before["sums"].get(op, 0.0)
        if n:
            parts.append(f"{op} {n} calls, mean {total / n * 1e3:.2f} ms")
    print("; ".join(parts) or "none")


def admission_histogram(url):
    with NO_PROXY.open(url, timeout=10) as r:
        text = r.read().decode()
    buckets, total, count = {}, 0.0, 0
    prefix = "trustgate_admission_duration_seconds_"
    for line in text.splitlines():
        if not line.startswith(prefix):
            continue
        name, value = line.rsplit(" ", 1)
        if name.startswith(prefix + "bucket"):
            le = name.split('le="', 1)[1].split('"', 1)[0]
            buckets[le] = int(float(value))
        elif name.startswith(prefix + "sum"):
            total = float(value)
        elif name.startswith(prefix + "count"):
            count = int(float(value))
    return {"buckets": buckets, "sum": total, "count": count}


def cmd_server_latency(a):
    """trustgate's own time per review (JSON in to JSON out, without TLS and HTTP), from its
    histogram; with --since, only reviews answered after that snapshot."""
    now = admission_histogram(a.url)
    if a.save:
        with open(a.save, "w", encoding="utf-8") as f:
            json.dump(now, f)
        return
    before = {"buckets": {}, "sum": 0.0, "count": 0}
    if a.since:
        with open(a.since, encoding="utf-8") as f:
            before = json.load(f)
    n = now["count"] - before["count"]
    if n <= 0:
        print("none")
        return
    mean_us = (now["sum"] - before["sum"]) / n * 1e6
    cum = sorted(
        ((float(le) if le != "+Inf" else float("inf"), now["buckets"][le] - before["buckets"].get(le, 0)) for le in now["buckets"]),
    )
    def share(limit):
        return next((c for le, c in cum if le >= limit - 1e-12), n) / n * 100
    p99 = next((le for le, c in cum if c >= 0.99 * n), float("inf"))
    p99_text = "over 26 s" if p99 == float("inf") else f"≤ {p99 * 1e6:.0f} µs"
    print(
        f"{n} reviews, mean {mean_us:.0f} µs, {share(0.0001):.1f}% ≤ 100 µs, {share(0.0002):.1f}% ≤ 200 µs, "
        f"{share(0.0004):.1f}% ≤ 400 µs, p99 {p99_text}"
    )


def proc_cpu_ticks(pid):
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def context_switches(pid):
    """Voluntary + involuntary context switches of every thread of a process (so far)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status", encoding="ascii") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass  # a thread that just ended
    return total


def machine_ticks():
    with open("/proc/stat", encoding="ascii") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    busy = v[0] + v[1] + v[2] + v[5] + v[6]  # user nice system irq softirq
    return busy, busy + v[3] + v[4]  # + idle iowait


def cmd_cpu_run(a):
    """Runs a command (the load client) and reports where the machine's CPU went meanwhile:
    trustgate, the command, and everything else (other work on a shared machine)."""
    hz = os.sysconf("SC_CLK_TCK")
    busy0, total0 = machine_ticks()
    server0 = proc_cpu_ticks(a.pid)
    switches0 = context_switches(a.pid)
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not command:
        die("cpu-run: no command")
    child = subprocess.Popen(command)
    _, status, usage = os.wait4(child.pid, 0)
    busy1, total1 = machine_ticks()
    server1 = proc_cpu_ticks(a.pid)
    switches1 = context_switches(a.pid)
    total = max(1, total1 - total0)
    pct = lambda ticks: 100.0 * ticks / total  # noqa: E731 - share of all cores
    server = server1 - server0
    client = (usage.ru_utime + usage.ru_stime) * hz
    other = max(0.0, (busy1 - busy0) - server - client)
    with open(a.report, "w", encoding="utf-8") as f:
        f.write(f"cpu_busy={pct(busy1 - busy0):.0f} cpu_trustgate={pct(server):.0f} cpu_client={pct(client):.0f} cpu_other={pct(other):.0f} ctx_switches={switches1 - switches0} trustgate_cpu_us={server * 1_000_000 // hz}\n")
    sys.exit(os.waitstatus_to_exitcode(status))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("ports")
    s.add_argument("n", type=int)
    s.set_defaults(fn=cmd_ports)

    s = sub.add_parser("review")
    s.add_argument("--template", required=True)
    s.add_argument("--images-file")
    s.add_argument("out")
    s.add_argument("image", nargs="*")
    s.set_defaults(fn=cmd_review)

    for name, fn in (("cold", cmd_cold), ("burst", cmd_burst), ("concurrent", cmd_concurrent)):
        s = sub.add_parser(name)
        s.add_argument("--url", required=True)
        s.add_argument("--ca", required=True)
        s.add_argument("--template", required=True)
        s.add_argument("--images-file", required=True)
        s.set_defaults(fn=fn)

    s = sub.add_parser("fill-push")
    s.add_argument("--registry", required=True, help="127.0.0.1:PORT")
    s.add_argument("--key", required=True, help="plain PEM P-256 private key")
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--repos", type=int, default=100)
    s.add_argument("--repo-prefix", default="load/fill")
    s.add_argument("--threads", type=int, default=4)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_fill_push)

    s = sub.add_parser("fill-review")
    s.add_argument("--url", required=True)
    s.add_argument("--ca", required=True)
    s.add_argument("--template", required=True)
    s.add_argument("--images-file", required=True)
    s.add_argument("--batch", type=int, default=100)
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--checkpoints", default="")
    s.set_defaults(fn=cmd_fill_review)

    s = sub.add_parser("metrics")
    s.add_argument("url")
    s.set_defaults(fn=cmd_metrics)

    s = sub.add_parser("cpu-run")
    s.add_argument("--pid", type=int, required=True, help="trustgate's pid")
    s.add_argument("--report", required=True)
    s.add_argument("command", nargs=argparse.REMAINDER)
    s.set_defaults(fn=cmd_cpu_run)

    s = sub.add_parser("server-latency")
    s.add_argument("url")
    s.add_argument("--save", help="write a snapshot to this file instead of printing")
    s.add_argument("--since", help="print only what happened after this snapshot")
    s.set_defaults(fn=cmd_server_latency)

    s = sub.add_parser("registry-latency")
    s.add_argument("url")
    s.add_argument("--save", help="write a snapshot to this file instead of printing")
    s.add_argument("--since", help="print only what happened after this snapshot")
    s.set_defaults(fn=cmd_registry_latency)

    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
