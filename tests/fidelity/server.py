"""Start and stop confluence-testserver processes for the fidelity suite."""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from harness import REPO

USER = "demo@example.com"
TOKEN = "demo-token"

_built = False
_build_lock = threading.Lock()


def binary() -> Path:
    """Path of the server binary: $TESTSERVER_BIN, or a fresh `cargo build`."""
    global _built
    env = os.environ.get("TESTSERVER_BIN")
    if env:
        p = Path(env)
        if not p.is_file():
            pytest.fail(f"TESTSERVER_BIN={env} does not exist", pytrace=False)
        return p
    p = REPO / "target" / "debug" / "confluence-testserver"
    with _build_lock:
        if not _built:
            cargo = shutil.which("cargo")
            if cargo:
                r = subprocess.run(
                    [cargo, "build", "-q", "-p", "confluence-testserver"],
                    cwd=REPO,
                    capture_output=True,
                    text=True,
                )
                if r.returncode != 0:
                    pytest.fail("cargo build -p confluence-testserver failed:\n" + r.stderr[-3000:], pytrace=False)
            _built = True
    if not p.is_file():
        pytest.fail(f"{p} not found; build it with `cargo build -p confluence-testserver` or set TESTSERVER_BIN", pytrace=False)
    return p


class Server:
    """One running confluence-testserver."""

    def __init__(self, flavor: str, args=(), context_path: str | None = None):
        self.flavor = flavor
        self.args = list(args)
        cmd = [str(binary()), "--listen", "127.0.0.1:0", "--flavor", "cloud" if flavor == "cloud" else "datacenter"]
        if context_path is not None:
            cmd += ["--context-path", context_path]
        cmd += self.args
        self.cmd = cmd
        self.stderr_file = tempfile.NamedTemporaryFile(prefix=f"testserver-{flavor}-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.stderr_file, stdin=subprocess.DEVNULL)
        q: queue.Queue = queue.Queue()

        def pump():
            first = True
            for line in iter(self.proc.stdout.readline, b""):
                if first:
                    q.put(line)
                    first = False
            if first:
                q.put(None)

        threading.Thread(target=pump, daemon=True).start()
        try:
            line = q.get(timeout=30)
        except queue.Empty:
            line = None
        if not line:
            self.stop()
            pytest.fail(f"server did not print its base URL: {' '.join(cmd)}\nstderr:\n{self.stderr()[-2000:]}", pytrace=False)
        self.base = line.decode().strip().rstrip("/")
        parts = urlsplit(self.base)
        assert parts.scheme == "http" and parts.hostname, f"first stdout line is not a URL: {self.base!r}"
        self.root = f"{parts.scheme}://{parts.netloc}"
        self.context = parts.path.rstrip("/")
        if flavor == "cloud":
            assert self.context == "/wiki", f"cloud base URL should end in /wiki: {self.base}"
        self.auth = (USER, TOKEN)
        self.session = requests.Session()
        self.session.auth = self.auth
        self.session.headers["Accept"] = "application/json"

    # -- URLs -----------------------------------------------------------------
    def v1(self, path: str) -> str:
        return self.base + "/rest/api" + path

    def v2(self, path: str) -> str:
        assert self.flavor == "cloud", "v2 is Cloud-only"
        return self.base + "/api/v2" + path

    def abs(self, link: str) -> str:
        """Resolve a context-relative v1 link (`/rest/api/...`) or a site-relative v2 one."""
        if link.startswith("http://") or link.startswith("https://"):
            return link
        if self.context and link.startswith(self.context + "/"):
            return self.root + link
        return self.base + link

    # -- requests -------------------------------------------------------------
    def request(self, method, url, **kw):
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", 20)
        r = self.session.request(method, url, **kw)
        r.fidelity_server = self
        return r

    def get(self, url, **kw):
        return self.request("GET", url, **kw)

    def post(self, url, **kw):
        return self.request("POST", url, **kw)

    def put(self, url, **kw):
        return self.request("PUT", url, **kw)

    def delete(self, url, **kw):
        return self.request("DELETE", url, **kw)

    # -- test hooks -----------------------------------------------------------
    def hook(self, method, name, **kw):
        return requests.request(method, f"{self.root}/__testserver/{name}", timeout=10, **kw)

    def stderr(self) -> str:
        try:
            return Path(self.stderr_file.name).read_text(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        try:
            self.session.close()
        except Exception:
            pass
        try:
            os.unlink(self.stderr_file.name)
        except OSError:
            pass

    def __repr__(self):
        return f"<Server {self.flavor} {self.base}>"
