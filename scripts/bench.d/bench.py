#!/usr/bin/env python3
"""The driver behind scripts/bench: every workload against every system, in one run.

Systems: confluencefs and its peers — curl and the seed's Python functions against the same
confluence-testserver, `rclone mount --vfs-cache-mode full` of an `rclone serve webdav` of a
local directory holding the same bytes, and the local disk (warm read only). Every workload runs
twice: on bare loopback and through scripts/bench.d/latency_proxy.py (default 10 ms each way),
placed in front of both the test server and rclone's WebDAV server.

The test server runs the Data Center flavor: its downloads are same-origin, so one proxy in
front of its one port delays every request (Cloud redirects downloads to a second media port).

Writes target/bench/results.json and prints a table; nothing asserts a timing. Everything it
mounts is unmounted and every process it starts is stopped, also on failure or Ctrl-C.
"""

import argparse
import base64
import collections
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ["BIN_DIR"]) if os.environ.get("BIN_DIR") else REPO / "target" / "release"
OUT = REPO / "target" / "bench"
HERE = Path(__file__).resolve().parent
USER, TOKEN = "demo@example.com", "demo-token"
MIB = 1 << 20

SIZES = {
    # 1 GiB read; 2,000 pages x 10 = 20,000 attachments; 2,000 x 256 KiB backup;
    # 1,000 x 64 KiB bulk upload; 1 GiB upload.
    "full": dict(big_mib=1024, walk_sections=40, walk_children=49, walk_files=10,
                 backup_pages=20, backup_files=100, backup_kib=256,
                 bulk_files=1000, bulk_kib=64, upload_mib=1024,
                 sizes_mib=[1, 16, 64, 256], reread_mib=256, text_pages=2000),
    "quick": dict(big_mib=128, walk_sections=10, walk_children=19, walk_files=10,
                  backup_pages=4, backup_files=50, backup_kib=256,
                  bulk_files=200, bulk_kib=64, upload_mib=128,
                  sizes_mib=[1, 16, 64, 256], reread_mib=256, text_pages=500),
}
# walk_200k and ls_10k run against a server of their own (seeded once under data/scale-seed):
# pages of SCALE_FILES attachments, and one page of 10,000.
SCALE_FILES = 500
SCALE_WALK = {"full": 200_000, "quick": 20_000}
HUGE_PAGE = 10_000
WORKLOADS = ["cold_read", "warm_read", "cold_sizes", "reread", "metadata_walk", "backup",
             "grep_pages", "bulk_upload", "large_upload", "walk_200k", "ls_10k"]
# The word one page in NEEDLE_EVERY carries, for grep_pages.
NEEDLE = "budgetary"
NEEDLE_EVERY = 50
# `confluencefs_fuse` is the mount with `--no-passthrough` (every WRITE through the process),
# run beside the default for the uploads, and `confluencefs_ro` a read-only mount for the
# re-read, to show what FUSE passthrough changes.
SYSTEMS = ["confluencefs", "confluencefs_fuse", "confluencefs_ro", "curl", "rclone", "seed_script",
           "local_disk"]
MEMORY_CACHE = "256M"
MEMORY_CACHE_KIB = 256 * 1024

# Everything started or mounted, so that cleanup() can undo it in reverse order.
PROCS: list = []
MOUNTS: list = []


def log(msg):
    print(msg, flush=True)


def run(cmd, timeout, **kw):
    """`subprocess.run(cmd, check=True, timeout=timeout)`, but its end is seen at once.

    `Popen.wait` with a timeout polls, sleeping 0.5 ms, then twice as long each time, up to
    50 ms; every timed command was rounded up to the next of those steps (0.0325, 0.065,
    0.115, 0.165 s, …), which made the short workloads' figures steps, not measurements. Here
    the wait blocks in `waitpid`, and a timer kills the command at its timeout.
    """
    timed_out = threading.Event()

    def kill(proc):
        timed_out.set()
        proc.kill()

    with subprocess.Popen(cmd, **kw) as proc:
        timer = threading.Timer(timeout, kill, args=(proc,))
        timer.start()
        try:
            code = proc.wait()
        finally:
            timer.cancel()
    if timed_out.is_set():
        raise subprocess.TimeoutExpired(cmd, timeout)
    if code != 0:
        raise subprocess.CalledProcessError(code, cmd)
    return subprocess.CompletedProcess(cmd, code)


def loadavg():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def drop_caches():
    subprocess.run(["sync"], check=False, timeout=300)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError as e:
        log(f"   (cannot drop caches: {e}; cold figures are warm-ish)")


# --- data -----------------------------------------------------------------------------------

def generate(data: Path, size: dict) -> None:
    """Deterministic bytes (a seeded PRNG block, rotated per file); reused when the sizes match."""
    stamp = data / "sizes.json"
    if stamp.exists() and json.loads(stamp.read_text()) == size:
        log(f"== data: reusing {data}")
        return
    log(f"== data: generating {data}")
    shutil.rmtree(data, ignore_errors=True)
    seed = data / "seed"
    block = random.Random(20261127).randbytes(MIB)

    def piece(i, length):
        off = (i * 7919) % MIB
        out = (block[off:] + block[:off])
        while len(out) < length:
            out += out
        return out[:length]

    def big(path, mib, salt):
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            for i in range(mib):
                f.write(piece(i * 31 + salt, MIB))

    big(seed / "BIG" / "big.bin", size["big_mib"], 0)
    for mib in size["sizes_mib"]:
        big(seed / "SIZES" / f"size-{mib}m.bin", mib, 3 + mib)
    n = 0
    for s in range(size["walk_sections"]):
        sec = seed / "WALK" / f"section-{s:03d}"
        pages = [sec] + [sec / f"page-{s:03d}-{c:03d}" for c in range(size["walk_children"])]
        for p in pages:
            p.mkdir(parents=True, exist_ok=True)
            for a in range(size["walk_files"]):
                (p / f"note-{a:02d}.txt").write_bytes(piece(n, 512))
                n += 1
    for p in range(size["backup_pages"]):
        page = seed / "BKP" / f"archive-{p:03d}"
        page.mkdir(parents=True)
        for a in range(size["backup_files"]):
            (page / f"scan-{a:03d}.bin").write_bytes(piece(n, size["backup_kib"] << 10))
            n += 1
    # TEXT: pages with 2-6 KiB storage bodies of generated words (one in NEEDLE_EVERY holds
    # NEEDLE), for grep_pages; the pages hold no attachments.
    words = ["release", "storage", "cluster", "review", "meeting", "planning", "migration",
             "incident", "quarter", "roadmap", "latency", "capacity", "owner", "deadline"]
    rng = random.Random(20261202)
    for p in range(size.get("text_pages", 0)):
        page = seed / "TEXT" / f"note-{p:04d}"
        page.mkdir(parents=True)
        paras = []
        target = rng.randint(2048, 6144)
        total = 0
        while total < target:
            text = " ".join(rng.choice(words) for _ in range(rng.randint(8, 30)))
            para = f"<p>{text}.</p>" if rng.random() < 0.8 else f"<h2>{text[:40]}</h2>"
            paras.append(para)
            total += len(para)
        if p % NEEDLE_EVERY == 0:
            paras.insert(len(paras) // 2, f"<p>The {NEEDLE} review is due.</p>")
        (page / "@page.storage.xml").write_text("".join(paras))
    up = data / "upload"
    (up / "bulk").mkdir(parents=True)
    for a in range(size["bulk_files"]):
        (up / "bulk" / f"photo-{a:04d}.jpg").write_bytes(piece(n, size["bulk_kib"] << 10))
        n += 1
    big(up / "large.bin", size["upload_mib"], 17)
    for lat in LATENCIES:
        for w in ("bulk_upload", "large_upload"):
            for s in ("confluencefs", "confluencefs_fuse", "curl", "seed_script", "rclone"):
                (seed / "UP" / upload_page(lat, w, s)).mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(size))


def upload_page(lat, workload, system):
    return f"{int(lat)}ms-{workload}-{system}"


# --- processes ------------------------------------------------------------------------------

def start(cmd, first_line=True, **kw):
    """Starts a process; returns (Popen, its first stdout line or None)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE if first_line else subprocess.DEVNULL,
                         start_new_session=True, **kw)
    PROCS.append(p)
    line = None
    if first_line:
        line = p.stdout.readline().decode().strip()
        if not line:
            raise RuntimeError(f"{cmd[0]} ended before printing its address")
    return p, line


def stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
    if p in PROCS:
        PROCS.remove(p)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def proxy(target_port, delay_ms):
    p, addr = start([sys.executable, str(HERE / "latency_proxy.py"), "--listen", "127.0.0.1:0",
                     "--target", f"127.0.0.1:{target_port}", "--delay-ms", str(delay_ms)])
    return p, int(addr.rsplit(":", 1)[1])


def unmount(mnt: Path, proc=None):
    if os.path.ismount(mnt):
        r = subprocess.run(["umount", str(mnt)], capture_output=True, timeout=120)
        if r.returncode != 0:
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True, timeout=60)
    if proc is not None:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            stop(proc)
        if proc in PROCS:
            PROCS.remove(proc)
    if mnt in MOUNTS:
        MOUNTS.remove(mnt)


def cleanup():
    for mnt in reversed(list(MOUNTS)):
        try:
            unmount(mnt)
        except Exception as e:  # keep cleaning
            log(f"cleanup: {mnt}: {e}")
    for p in reversed(list(PROCS)):
        try:
            stop(p)
        except Exception as e:
            log(f"cleanup: {e}")
    MOUNTS.clear()
    PROCS.clear()


def rss_kib(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, TypeError):
        return None
    return None


def mount_status(mnt):
    out = subprocess.run([str(BIN / "confluencefs"), "status", str(mnt), "--json"],
                         capture_output=True, text=True)
    try:
        return json.loads(out.stdout)["mounts"][0]
    except (ValueError, KeyError, IndexError):
        return {}


def peak_rss_kib(pid):
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def mount_pid(mnt: Path):
    want = str(mnt).encode()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            args = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if want in args and args and args[0].endswith(b"confluencefs"):
            return int(d.name)
    return None


# --- the test server ------------------------------------------------------------------------

class Server:
    def __init__(self, seed: Path, work: Path):
        self.proc, self.url = start([str(BIN / "confluence-testserver"), "--flavor", "datacenter",
                                     "--listen", "127.0.0.1:0", "--seed", str(seed),
                                     "--data", str(work / "server-data")],
                                    stderr=open(work / "server.log", "wb"))
        self.port = int(urllib.parse.urlsplit(self.url).port)
        self.auth = "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()

    def get(self, path, **params):
        q = ("?" + urllib.parse.urlencode(params)) if params else ""
        req = urllib.request.Request(self.url + path + q, headers={"Authorization": self.auth})
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.load(r)

    def page_id(self, space, title):
        res = self.get("/rest/api/content", spaceKey=space, title=title, limit=1)["results"]
        return res[0]["id"]

    def attachment(self, page_id, name):
        res = self.get(f"/rest/api/content/{page_id}/child/attachment", filename=name)["results"]
        return res[0]

    def clear_log(self):
        req = urllib.request.Request(self.url + "/__testserver/requests", method="DELETE")
        urllib.request.urlopen(req, timeout=60).read()

    def log_entries(self):
        with urllib.request.urlopen(self.url + "/__testserver/requests", timeout=120) as r:
            return json.load(r)


def summarize(entries):
    """Request count, the largest response/request body, and counts by method + path shape."""
    shapes = collections.Counter()
    for e in entries:
        shape = re.sub(r"/\d+", "/N", e.get("path", ""))
        shape = re.sub(r"/download/attachments/N/.*", "/download/attachments/N/NAME", shape)
        shapes[f"{e.get('method')} {shape} {e.get('status')}"] += 1
    sizes = collections.Counter()
    for e in entries:  # file bytes: the size of each download answer, in MiB (rounded up)
        if "/download/" in e.get("path", "") and e.get("bytes"):
            sizes[-(-e["bytes"] // MIB)] += 1
    return {
        "requests": len(entries),
        "download_mib_histogram": {str(k): v for k, v in sorted(sizes.items())},
        "max_response_bytes": max((e.get("bytes") or 0 for e in entries), default=0),
        "max_request_bytes": max((e.get("request_bytes") or 0 for e in entries), default=0),
        "response_bytes": sum(e.get("bytes") or 0 for e in entries),
        "request_bytes": sum(e.get("request_bytes") or 0 for e in entries),
        "by_shape": dict(shapes.most_common(12)),
    }


# --- the bench ------------------------------------------------------------------------------

class Bench:
    def __init__(self, args, size, data, work):
        self.args, self.size, self.data, self.work = args, size, data, work
        self.seed = data / "seed"
        self.results = []
        self.server = Server(self.seed, work)
        self.webdav_port = free_port()
        self.webdav, _ = start(["rclone", "serve", "webdav", str(self.seed), "--addr",
                                f"127.0.0.1:{self.webdav_port}", "--config", str(work / "rclone.conf")],
                               first_line=False, stderr=open(work / "webdav.log", "wb"))
        wait_port(self.webdav_port)
        self.big_page = self.server.page_id("BIG", "BIG Home")
        self.big_att = self.server.attachment(self.big_page, "big.bin")
        self.n = 0

    # endpoints for one latency
    def endpoints(self, lat):
        if lat == 0:
            self.api = self.server.url
            self.dav = f"http://127.0.0.1:{self.webdav_port}"
            return []
        p1, port1 = proxy(self.server.port, lat)
        p2, port2 = proxy(self.webdav_port, lat)
        self.api = f"http://127.0.0.1:{port1}"
        self.dav = f"http://127.0.0.1:{port2}"
        return [p1, p2]

    def fresh_dir(self, name):
        self.n += 1
        d = self.work / f"{self.n:03d}-{name}"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        return d

    def mount_cfs(self, cache=None, extra=()):
        """A fresh mount, with a fresh cache directory unless `cache` names one to reuse."""
        mnt, cache = self.fresh_dir("cfs-mnt"), cache or self.fresh_dir("cfs-cache")
        env = dict(os.environ, CONFLUENCE_USER=USER, CONFLUENCE_TOKEN=TOKEN)
        run([str(BIN / "confluencefs"), "mount", self.api, str(mnt), "--flavor", "datacenter",
             "--cache-dir", str(cache), "--memory-cache-size", MEMORY_CACHE,
             "--max-file-size", "4G", *extra], timeout=120, env=env)
        MOUNTS.append(mnt)
        return mnt, None, mount_pid(mnt), cache

    def mount_rclone(self):
        mnt, cache = self.fresh_dir("rclone-mnt"), self.fresh_dir("rclone-cache")
        p, _ = start(["rclone", "mount", ":webdav:", str(mnt), "--webdav-url", self.dav,
                      "--vfs-cache-mode", "full", "--vfs-write-back", "0s",
                      "--cache-dir", str(cache), "--config", str(self.work / "rclone.conf")],
                     first_line=False, stderr=open(self.work / "rclone-mount.log", "ab"))
        deadline = time.monotonic() + 30
        while not os.path.ismount(mnt):
            if p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("rclone mount did not come up (see rclone-mount.log)")
            time.sleep(0.1)
        MOUNTS.append(mnt)
        return mnt, p, p.pid

    def record(self, workload, system, lat, seconds, nbytes, pid=None, server=True, extra=None):
        row = {"workload": workload, "system": system, "latency_ms": lat,
               "seconds": round(seconds, 4), "requests": None, "bytes": nbytes,
               "peak_rss_kib": peak_rss_kib(pid), "loadavg": loadavg()}
        if server:
            s = summarize(self.server.log_entries())
            row["requests"] = s.pop("requests")
            row["server"] = s
        if extra:
            row.update(extra)
        self.results.append(row)
        mbps = f"{nbytes / seconds / 1e6:8.1f} MB/s" if nbytes else ""
        log(f"   {workload:14s} {system:13s} {lat:>3}ms {seconds:9.3f}s {mbps}"
            f"  requests={row['requests']} rss_kib={row['peak_rss_kib']}")
        return row

    def profiled(self, name, pid):
        """With --perf: `perf stat` + `perf record` of the mount process around a step."""
        if not self.args.perf or pid is None:
            return []
        base = OUT / f"perf-{name}"
        stat = subprocess.Popen(["perf", "stat", "-e", "task-clock,context-switches,cpu-migrations,"
                                 "page-faults", "-p", str(pid), "-o", f"{base}.stat.txt"],
                                stderr=subprocess.DEVNULL)
        rec = subprocess.Popen(["perf", "record", "-q", "-F", "499", "-e", "cpu-clock", "-g",
                                "-p", str(pid), "-o", f"{base}.data"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        return [(stat, None), (rec, base)]

    def end_profile(self, profs):
        for p, base in profs:
            p.send_signal(signal.SIGINT)
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
            if base is not None:
                with open(f"{base}.report.txt", "w") as out:
                    subprocess.run(["perf", "report", "-i", f"{base}.data", "--stdio",
                                    "--no-children", "--percent-limit", "1.5"],
                                   stdout=out, stderr=subprocess.DEVNULL, timeout=300)

    def timed(self, cmd, timeout, shell=False, env=None):
        t = time.perf_counter()
        run(cmd, timeout=timeout, shell=shell, env=env, stdout=subprocess.DEVNULL)
        return time.perf_counter() - t

    def want(self, workload):
        return not self.args.only or workload in self.args.only

    # workloads 1 + 2 + 7: cold and warm read, peak RSS during the cold read
    def reads(self, lat):
        big = self.size["big_mib"] * MIB
        to = self.args.timeout
        # confluencefs: fresh mount, fresh cache dir, dropped caches
        mnt, proc, pid, _ = self.mount_cfs()
        path = mnt / "BIG" / "BIG Home" / "big.bin"
        os.stat(path)
        drop_caches()
        self.server.clear_log()
        profs = self.profiled(f"cold_read-{lat}ms", pid)
        secs = self.timed(["cat", str(path)], to)
        self.end_profile(profs)
        self.record("cold_read", "confluencefs", lat, secs, big, pid)
        self.server.clear_log()
        secs = self.timed(["cat", str(path)], to)
        self.record("warm_read", "confluencefs", lat, secs, big, pid)
        unmount(mnt, proc)
        # curl: the attachment's download link (same origin on Data Center; -L as users do)
        link = self.api + self.big_att["_links"]["download"]
        drop_caches()
        self.server.clear_log()
        secs = self.timed(["curl", "-sSfL", "-u", f"{USER}:{TOKEN}", "-o", "/dev/null", link], to)
        self.record("cold_read", "curl", lat, secs, big)
        # the seed's download_attachment
        drop_caches()
        self.server.clear_log()
        secs = self.timed(self.seed_cmd("download", self.big_att["id"], "/dev/null"), to,
                          env=self.seed_env())
        self.record("cold_read", "seed_script", lat, secs, big)
        # rclone: fresh mount and cache dir
        mnt, proc, pid = self.mount_rclone()
        path = mnt / "BIG" / "big.bin"
        os.stat(path)
        drop_caches()
        secs = self.timed(["cat", str(path)], to)
        self.record("cold_read", "rclone", lat, secs, big, pid, server=False)
        secs = self.timed(["cat", str(path)], to)
        self.record("warm_read", "rclone", lat, secs, big, pid, server=False)
        unmount(mnt, proc)
        # local disk, warm page cache: the limit for warm reads
        local = self.seed / "BIG" / "big.bin"
        self.timed(["cat", str(local)], to)
        secs = self.timed(["cat", str(local)], to)
        self.record("warm_read", "local_disk", lat, secs, big, server=False)

    # workload 8: cold reads of files of several sizes on a fresh mount each, against curl,
    # with the server's copy in its page cache for both (the path is measured, not the disk)
    def cold_sizes(self, lat):
        to = self.args.timeout
        page = self.server.page_id("SIZES", "SIZES Home")
        for mib in self.size["sizes_mib"]:
            name = f"size-{mib}m.bin"
            att = self.server.attachment(page, name)
            link = self.api + att["_links"]["download"]
            curl = ["curl", "-sSfL", "-u", f"{USER}:{TOKEN}", "-o", "/dev/null", link]
            run(curl, timeout=to, stdout=subprocess.DEVNULL)  # the server's page cache
            mnt, proc, pid, _ = self.mount_cfs()
            path = mnt / "SIZES" / "SIZES Home" / name
            os.stat(path)
            self.server.clear_log()
            secs = self.timed(["cat", str(path)], to)
            self.record(f"cold_{mib}m", "confluencefs", lat, secs, mib * MIB, pid)
            unmount(mnt, proc)
            self.server.clear_log()
            secs = self.timed(curl, to)
            self.record(f"cold_{mib}m", "curl", lat, secs, mib * MIB)

    # workload 9: a re-read after a remount (the disk cache), against a cold local read; the
    # page cache is dropped before both, so both read a disk
    def reread(self, lat):
        to = self.args.timeout
        mib = self.size["reread_mib"]
        name = f"size-{mib}m.bin"
        mnt, proc, pid, cache = self.mount_cfs()
        run(["cat", str(mnt / "SIZES" / "SIZES Home" / name)], timeout=to,
            stdout=subprocess.DEVNULL)
        unmount(mnt, proc)  # a clean unmount leaves the disk cache complete
        # The kernel reads a version wholly in the disk cache from the cache's file itself (FUSE
        # passthrough), read-only and writable alike (a writer takes the file over).
        for system, extra in (("confluencefs", []), ("confluencefs_ro", ["--read-only"])):
            mnt, proc, pid, _ = self.mount_cfs(cache, extra=extra)
            path = mnt / "SIZES" / "SIZES Home" / name
            os.stat(path)
            drop_caches()
            self.server.clear_log()
            secs = self.timed(["cat", str(path)], to)
            self.record("reread", system, lat, secs, mib * MIB, pid)
            unmount(mnt, proc)
        local = self.seed / "SIZES" / name
        drop_caches()
        secs = self.timed(["cat", str(local)], to)
        self.record("reread", "local_disk", lat, secs, mib * MIB, server=False)

    def seed_cmd(self, *args):
        return [self.args.python, str(HERE / "seed_script.py"), args[0], self.api, *args[1:]]

    def seed_env(self):
        return dict(os.environ, CONFLUENCE_USER=USER, CONFLUENCE_TOKEN=TOKEN)

    # workload 3 + 7: find + ls -lR over WALK, peak RSS
    def walk(self, lat):
        s = self.size
        files = s["walk_sections"] * (s["walk_children"] + 1) * s["walk_files"]
        for system in ("confluencefs", "rclone"):
            mnt, proc, pid = (self.mount_cfs()[:3] if system == "confluencefs"
                              else self.mount_rclone())
            drop_caches()
            self.server.clear_log()
            top = str(mnt / "WALK")
            profs = self.profiled(f"metadata_walk-{lat}ms", pid if system == "confluencefs" else None)
            t = time.perf_counter()
            found = subprocess.run(f"find '{top}' -type f | wc -l", shell=True, check=True,
                                   capture_output=True, timeout=self.args.timeout).stdout
            t_find = time.perf_counter() - t
            self.timed(["ls", "-lR", top], self.args.timeout)
            secs = time.perf_counter() - t
            self.end_profile(profs)
            if int(found) != files:
                log(f"   !! {system}: find saw {int(found)} files, expected {files}")
            self.record("metadata_walk", system, lat, secs, None, pid,
                        server=system == "confluencefs",
                        extra={"files": int(found), "find_seconds": round(t_find, 4),
                               "ls_seconds": round(secs - t_find, 4)})
            unmount(mnt, proc)

    # workloads walk_200k and ls_10k (bare loopback only): a server of their own
    def scale(self, lat):
        files = SCALE_WALK["quick" if self.args.quick else "full"]
        seed = self.data / f"scale-seed-{files}"
        if not (seed / "done").exists():
            shutil.rmtree(seed, ignore_errors=True)
            for p in range(files // SCALE_FILES):
                page = seed / "SCALE" / f"part-{p:04d}"
                page.mkdir(parents=True)
                for a in range(SCALE_FILES):
                    (page / f"n-{a:03d}.txt").write_bytes(b"x\n")
            huge = seed / "HUGE" / "Huge"
            huge.mkdir(parents=True)
            for a in range(HUGE_PAGE):
                (huge / f"f{a:05d}.txt").write_bytes(b"x\n")
            (seed / "done").write_text("")
        work = self.fresh_dir("scale-server")
        server, own = self.server, Server(seed, work)
        api, self.server, self.api = self.api, own, own.url
        try:
            if self.want("walk_200k"):
                mnt, _, pid, _ = self.mount_cfs()
                drop_caches()
                own.clear_log()
                t = time.perf_counter()
                found = subprocess.run(f"find '{mnt}/SCALE' -type f | wc -l; "
                                       f"find '{mnt}/SCALE' -exec stat -c %s {{}} + | wc -l",
                                       shell=True, check=True, capture_output=True,
                                       timeout=self.args.timeout).stdout.split()
                secs = time.perf_counter() - t
                time.sleep(1.5)  # `status` reads a file the mount rewrites every second
                status = mount_status(mnt)
                drop_caches()
                time.sleep(5)  # the kernel's FORGETs arrive at once ...
                after = mount_status(mnt)
                # ... but cached listings hold their entries until their TTL (60 s) is over
                waited, low = 5.0, after.get("inodes")
                while waited < 75:
                    time.sleep(5)
                    waited += 5
                    low = mount_status(mnt).get("inodes")
                    if low is not None and low < 1000:
                        break
                self.record("walk_200k", "confluencefs", lat, secs, None, pid,
                            extra={"files": int(found[0]), "inodes_after_walk": status.get("inodes"),
                                   "inodes_after_drop_caches": after.get("inodes"),
                                   "inodes_after_listing_ttl": low,
                                   "seconds_after_drop_caches": waited,
                                   "rss_kib_after_drop_caches": rss_kib(pid)})
                unmount(mnt, None)
                # rclone's WebDAV walk of 200,000 files takes many minutes: the local disk is
                # the peer (the same tree, page cache dropped).
                drop_caches()
                t = time.perf_counter()
                subprocess.run(f"find '{seed}/SCALE' -type f | wc -l; "
                               f"find '{seed}/SCALE' -exec stat -c %s {{}} + | wc -l",
                               shell=True, check=True, capture_output=True)
                self.record("walk_200k", "local_disk", lat, time.perf_counter() - t, None,
                            server=False)
            if self.want("ls_10k"):
                mnt, _, pid, _ = self.mount_cfs()
                os.stat(mnt / "HUGE" / "HUGE Home" / "Huge")
                own.clear_log()
                t = time.perf_counter()
                self.timed(["ls", "-l", str(mnt / "HUGE" / "HUGE Home" / "Huge")], self.args.timeout)
                self.record("ls_10k", "confluencefs", lat, time.perf_counter() - t, None, pid)
                unmount(mnt, None)
        finally:
            self.server, self.api = server, api
            stop(own.proc)

    # workload: grep -r over the page text of a space vs a script that fetches every body
    def grep_pages(self, lat):
        pages = self.size.get("text_pages", 0)
        want = (pages + NEEDLE_EVERY - 1) // NEEDLE_EVERY
        for system in ("confluencefs", "seed_script"):
            drop_caches()
            self.server.clear_log()
            pid = None
            if system == "confluencefs":
                mnt, proc, pid = self.mount_cfs()[:3]
                self.server.clear_log()
                t = time.perf_counter()
                out = subprocess.run(["grep", "-rlw", NEEDLE, str(mnt / "TEXT")],
                                     capture_output=True, timeout=self.args.timeout).stdout
                secs = time.perf_counter() - t
                found = len(out.splitlines())
            else:
                t = time.perf_counter()
                found = fetch_every_body(self.api, self.server.auth, "TEXT", NEEDLE)
                secs = time.perf_counter() - t
            if found != want:
                log(f"   !! {system}: found {found} pages, expected {want}")
            self.record("grep_pages", system, lat, secs, None, pid,
                        extra={"pages": pages, "found": found})
            if system == "confluencefs":
                unmount(mnt, proc)

    # workload 4: rsync of BKP vs the seed's backup loop
    def backup(self, lat):
        s = self.size
        files = s["backup_pages"] * s["backup_files"]
        nbytes = files * (s["backup_kib"] << 10)
        for system in ("confluencefs", "rclone", "seed_script"):
            dest = self.fresh_dir(f"backup-{system}")
            drop_caches()
            self.server.clear_log()
            if system == "seed_script":
                secs = self.timed(self.seed_cmd("backup", "BKP", str(dest)), self.args.timeout,
                                  env=self.seed_env())
                pid = None
            else:
                mnt, proc, pid = (self.mount_cfs()[:3] if system == "confluencefs"
                                  else self.mount_rclone())
                self.server.clear_log()
                secs = self.timed(["rsync", "-a", f"{mnt}/BKP/", f"{dest}/"], self.args.timeout)
            got = sum(1 for _ in dest.rglob("*.bin"))
            if got != files:
                log(f"   !! {system}: backup holds {got} files, expected {files}")
            self.record("backup", system, lat, secs, nbytes, pid,
                        server=system != "rclone", extra={"files": got})
            if system != "seed_script":
                unmount(mnt, proc)
            shutil.rmtree(dest, ignore_errors=True)

    # workloads 5 + 6: uploads into a page
    def uploads(self, lat):
        s = self.size
        bulk = sorted((self.data / "upload" / "bulk").iterdir())
        large = self.data / "upload" / "large.bin"
        jobs = []
        if self.want("bulk_upload"):
            jobs.append(("bulk_upload", bulk, len(bulk) * (s["bulk_kib"] << 10)))
        if self.want("large_upload"):
            jobs.append(("large_upload", [large], s["upload_mib"] * MIB))
        for workload, files, nbytes in jobs:
            for system in ("confluencefs", "confluencefs_fuse", "curl", "seed_script", "rclone"):
                title = upload_page(lat, workload, system)
                for f in files:  # the source is read from the page cache by everyone
                    f.read_bytes() if workload == "large_upload" else None
                page = self.server.page_id("UP", title)  # setup, not counted
                self.server.clear_log()
                pid = None
                if system.startswith("confluencefs"):
                    extra = ["--no-passthrough"] if system == "confluencefs_fuse" else []
                    mnt, proc, pid, _ = self.mount_cfs(extra=extra)
                    target = mnt / "UP" / "UP Home" / title
                    os.stat(target)
                    self.server.clear_log()
                    if workload == "bulk_upload":
                        cmd = ["cp", "-r", f"{self.data}/upload/bulk/.", f"{target}/"]
                    else:
                        cmd = ["cp", str(large), f"{target}/"]
                    secs = self.timed(cmd, self.args.timeout)
                    secs += self.wait_server_uploads(len(files))
                elif system == "curl":
                    url = f"{self.api}/rest/api/content/{page}/child/attachment"
                    script = ('for f in "$@"; do curl -sSf -u "$AUTH" -H "X-Atlassian-Token: no-check" '
                              '-F "file=@$f" "$URL" >/dev/null || exit 1; done')
                    env = dict(os.environ, AUTH=f"{USER}:{TOKEN}", URL=url)
                    secs = self.timed(["bash", "-c", script, "bench", *map(str, files)],
                                      self.args.timeout, env=env)
                elif system == "seed_script":
                    cmd = (self.seed_cmd("bulk", page, *map(str, files)) if workload == "bulk_upload"
                           else self.seed_cmd("upload", page, str(large)))
                    secs = self.timed(cmd, self.args.timeout, env=self.seed_env())
                else:
                    mnt, proc, pid = self.mount_rclone()
                    served = self.seed / "UP" / title
                    target = mnt / "UP" / title
                    os.stat(target)
                    if workload == "bulk_upload":
                        cmd = ["cp", "-r", f"{self.data}/upload/bulk/.", f"{target}/"]
                    else:
                        cmd = ["cp", str(large), f"{target}/"]
                    t = time.perf_counter()
                    run(cmd, timeout=self.args.timeout)
                    self.wait_files(served, files)
                    secs = time.perf_counter() - t
                # whether the kernel took passthrough (opened > 0) or why it is off; `status`
                # reads a file the mount rewrites every second (after the timing)
                extra = None
                if system.startswith("confluencefs"):
                    time.sleep(1.5)
                    extra = {"passthrough": mount_status(mnt).get("passthrough")}
                row = self.record(workload, system, lat, secs, nbytes, pid,
                                  server=system != "rclone", extra=extra)
                if system in ("confluencefs", "confluencefs_fuse", "rclone"):
                    unmount(mnt, proc)
                if system != "rclone" and row["server"]["by_shape"]:
                    posts = sum(v for k, v in row["server"]["by_shape"].items()
                                if k.startswith("POST") and k.endswith(" 200"))
                    if posts < len(files):
                        log(f"   !! {system}: {posts} successful uploads, expected {len(files)}")

    def wait_server_uploads(self, n):
        """Seconds spent waiting for uploads still in flight after `cp` returned (normally 0)."""
        t = time.perf_counter()
        deadline = t + self.args.timeout
        while time.perf_counter() < deadline:
            done = sum(1 for e in self.server.log_entries()
                       if e.get("method") in ("POST", "PUT") and "/child/attachment" in e.get("path", "")
                       and e.get("status") == 200)
            if done >= n:
                return time.perf_counter() - t
            time.sleep(0.05)
        raise RuntimeError(f"only {done} of {n} uploads reached the server")

    def wait_files(self, served: Path, files):
        deadline = time.monotonic() + self.args.timeout
        want = {f.name: f.stat().st_size for f in files}
        while time.monotonic() < deadline:
            have = 0
            for name, size in want.items():
                try:
                    have += (served / name).stat().st_size == size
                except OSError:
                    pass
            if have == len(want):
                return
            time.sleep(0.05)
        raise RuntimeError(f"rclone: only {have} of {len(want)} files reached the WebDAV server")

    def pass_(self, lat):
        started = self.endpoints(lat)
        log(f"== latency {lat} ms each way ({'direct' if lat == 0 else 'through latency_proxy.py'}); "
            f"load average {loadavg()}")
        try:
            if self.want("cold_read") or self.want("warm_read"):
                self.reads(lat)
            if self.want("cold_sizes"):
                self.cold_sizes(lat)
            if self.want("reread"):
                self.reread(lat)
            if self.want("metadata_walk"):
                self.walk(lat)
            if self.want("backup"):
                self.backup(lat)
            if self.want("grep_pages"):
                self.grep_pages(lat)
            if lat == 0 and (self.want("walk_200k") or self.want("ls_10k")):
                self.scale(lat)
            self.uploads(lat)
        finally:
            for p in started:
                stop(p)


def table(results, size_name):
    lines = []
    groups = collections.OrderedDict()
    for r in results:
        groups.setdefault((r["latency_ms"], r["workload"]), []).append(r)
    head = (f"{'workload':14s} {'lat':>5s} {'system':13s} {'seconds':>9s} {'MB/s':>8s} "
            f"{'requests':>8s} {'rss MiB':>7s} {'vs best peer':>12s}")
    lines += [head, "-" * len(head)]
    for (lat, workload), rows in groups.items():
        peers = [r for r in rows if not r["system"].startswith("confluencefs")]
        best = min(peers, key=lambda r: r["seconds"]) if peers else None
        for r in rows:
            mbps = f"{r['bytes'] / r['seconds'] / 1e6:8.1f}" if r["bytes"] else f"{'-':>8s}"
            rss = f"{r['peak_rss_kib'] / 1024:7.0f}" if r["peak_rss_kib"] else f"{'-':>7s}"
            req = f"{r['requests']:8d}" if r["requests"] is not None else f"{'-':>8s}"
            ratio = (f"{best['seconds'] / r['seconds']:8.2f}x {best['system'][:3]}"
                     if best else "")
            lines.append(f"{workload:14s} {lat:>3d}ms {r['system']:13s} {r['seconds']:9.3f} "
                         f"{mbps} {req} {rss} {ratio}")
        lines.append("")
    lines.append("vs best peer = best peer's seconds / this system's seconds (>1: faster than "
                 "the best peer; peers = every system but confluencefs (either path) in that workload).")
    return "\n".join(lines)


def targets(results):
    """The issue's targets, each as (met?, text)."""
    get = {(r["latency_ms"], r["workload"], r["system"]): r for r in results}
    out = []

    def ratio(lat, w, peer):
        a, b = get.get((lat, w, "confluencefs")), get.get((lat, w, peer))
        if not a or not b:
            return None
        return b["seconds"] / a["seconds"]

    lats = sorted({r["latency_ms"] for r in results})
    for lat in lats:
        checks = [
            ("cold_read", "curl", 0.9, "cold read >= 0.9x curl"),
            ("cold_read", "rclone", 1.0, "cold read ahead of rclone"),
            ("warm_read", "rclone", 1.0, "warm read ahead of rclone"),
            ("warm_read", "local_disk", 0.5, "warm read >= 0.5x local disk"),
            ("metadata_walk", "rclone", 1.0, "metadata walk no slower than rclone"),
            ("grep_pages", "seed_script", 1.0,
             "grep -r of a space's page text no slower than fetching every body"),
            ("bulk_upload", "curl", 1.0, "bulk upload >= curl loop"),
            ("large_upload", "curl", 0.8, "large upload >= 0.8x curl"),
        ]
        if lat > 0:
            checks += [
                ("backup", "seed_script", 1.0, "backup faster than the seed's loop"),
                ("backup", "rclone", 1.0, "backup faster than rclone"),
                ("bulk_upload", "seed_script", 1.0, "bulk upload faster than the seed's loop"),
                ("bulk_upload", "rclone", 1.0, "bulk upload faster than rclone"),
            ]
        for mib in sorted({int(r["workload"][5:-1]) for r in results
                           if re.fullmatch(r"cold_\d+m", r["workload"])}):
            need = 0.8 if mib <= 64 else 0.9
            checks.append((f"cold_{mib}m", "curl", need,
                           f"cold read of {mib} MiB, fresh mount, >= {need}x curl"))
        checks.append(("reread", "local_disk", 0.8,
                       "re-read after a remount >= 0.8x a cold local read"))
        for w, peer, need, text in checks:
            r = ratio(lat, w, peer)
            if r is not None:
                out.append((r >= need, f"{lat:>3d}ms  {text}: {r:.2f}x"))
        for w in ("cold_read", "metadata_walk"):
            r = get.get((lat, w, "confluencefs"))
            if r and r["peak_rss_kib"]:
                limit = 64 * 1024 + MEMORY_CACHE_KIB
                out.append((r["peak_rss_kib"] < limit,
                            f"{lat:>3d}ms  peak RSS during {w} < 64 MiB + {MEMORY_CACHE}: "
                            f"{r['peak_rss_kib'] / 1024:.0f} MiB"))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--latency-ms", type=int, default=10,
                    help="delay each way of the second pass (default 10)")
    ap.add_argument("--only", type=lambda s: s.split(","), default=None,
                    help="comma-separated workloads (default: all)")
    ap.add_argument("--timeout", type=float, default=1800.0,
                    help="seconds any one step may take")
    ap.add_argument("--perf", action="store_true",
                    help="profile the mount process during cold_read and metadata_walk "
                         "(perf stat + perf record into target/bench/perf-*; slows those runs)")
    ap.add_argument("--python", default=sys.executable, help="Python with requests")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run everything N times and report each system's median run")
    args = ap.parse_args()
    global LATENCIES
    LATENCIES = [0, args.latency_ms]
    size_name = "quick" if args.quick else "full"
    size = SIZES[size_name]
    data = OUT / f"data-{size_name}"
    work = OUT / "work"
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(130))
    started = time.time()
    uname = os.uname()
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    tree = os.environ.get("BENCH_TREE") or (
        f"binaries from {BIN}" if os.environ.get("BIN_DIR") else
        subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                       capture_output=True, text=True).stdout.strip())
    machine = (f"nproc {os.cpu_count()}, RAM {mem_kib / 1048576:.1f} GiB, "
               f"kernel {uname.release}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
               f"tree {tree}")
    log(f"== {size_name} run; {machine}; load average {loadavg()}")
    log("== test server flavor: datacenter (same-origin downloads: one proxy delays them all)")
    runs = []
    for run in range(max(args.repeat, 1)):
        if args.repeat > 1:
            log(f"== run {run + 1} of {args.repeat}")
        try:
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            generate(data, size)
            reset_rclone_uploads(data)  # uploads of a previous run into rclone's served pages
            bench = Bench(args, size, data, work)
            for lat in LATENCIES:
                bench.pass_(lat)
            runs.extend(dict(r, run=run) for r in bench.results)
        finally:
            cleanup()
            reset_rclone_uploads(data)
    results = medians(runs)
    core = ["workload", "system", "latency_ms", "seconds", "requests", "bytes", "peak_rss_kib"]
    (OUT / "results.json").write_text(json.dumps(
        [{k: r.get(k) for k in core} for r in results], indent=1) + "\n")
    (OUT / "results-detail.json").write_text(json.dumps(
        {"machine": machine, "size": size_name, "sizes": size, "repeat": args.repeat,
         "results": results, "all_runs": runs}, indent=1) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    log("")
    log(f"== {size_name} run, {time.time() - started:.0f} s; {machine}; load average {loadavg()} after")
    log(f"== sizes: {json.dumps(size)}")
    if args.repeat > 1:
        log(f"== each row is that system's median of {args.repeat} runs (all runs in "
            "results-detail.json)")
    log(table(results, size_name))
    log("")
    log("== targets")
    for met, text in targets(results):
        log(f"   {'met   ' if met else 'MISSED'} {text}")
    log(f"\nwrote {OUT / 'results.json'} (and results-detail.json: request shapes, loads)")


def reset_rclone_uploads(data: Path) -> None:
    """Empties the directories rclone's upload workloads write into."""
    for lat in LATENCIES:
        for w in ("bulk_upload", "large_upload"):
            d = data / "seed" / "UP" / upload_page(lat, w, "rclone")
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)


def fetch_every_body(api, auth, space, word):
    """What a script does without the mount: list the space's pages, then fetch each page's
    body and look for the word (one request per page, as scripts written against the REST
    reference do)."""
    def get(path, **params):
        q = "?" + urllib.parse.urlencode(params)
        req = urllib.request.Request(api + path + q, headers={"Authorization": auth})
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.load(r)

    ids, start = [], 0
    while True:
        page = get("/rest/api/content", spaceKey=space, type="page", limit=100, start=start)
        ids += [r["id"] for r in page["results"]]
        if not page.get("_links", {}).get("next"):
            break
        start += len(page["results"])
    found = 0
    pattern = re.compile(rf"\b{re.escape(word)}\b")
    for cid in ids:
        body = get(f"/rest/api/content/{cid}", expand="body.storage")["body"]["storage"]["value"]
        found += bool(pattern.search(body))
    return found


def medians(runs):
    """One row per (workload, system, latency): the run with the median seconds (the lower
    one of the middle two for an even count), with every run's seconds beside it."""
    groups = collections.OrderedDict()
    for r in runs:
        groups.setdefault((r["workload"], r["system"], r["latency_ms"]), []).append(r)
    out = []
    for rows in groups.values():
        ranked = sorted(rows, key=lambda r: r["seconds"])
        row = dict(ranked[(len(ranked) - 1) // 2])
        row["seconds_all_runs"] = [r["seconds"] for r in rows]
        out.append(row)
    return out


LATENCIES = [0, 10]

if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
