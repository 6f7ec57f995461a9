"""Fixtures: one seeded server per flavor for the session, demo servers, fresh servers on demand."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from server import Server  # noqa: E402

FLAVORS = ("cloud", "dc")
DC_CONTEXT = "/confluence"

# Deterministic attachment bytes for the seed tree.
NOTES = b"hello notes\n"
DATA_BIN = bytes((i * 7 + 3) % 256 for i in range(65536))
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf00000301010018dd8db00000000049454e44ae426082"
)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def build_seed(root: Path):
    """Spaces DOCS and ENG: nested pages, attachments, a blog post."""
    files = {
        "DOCS/welcome.txt": b"welcome to docs\n",
        "DOCS/Guide/notes.txt": NOTES,
        "DOCS/Guide/data.bin": DATA_BIN,
        "DOCS/Guide/diagram.png": PNG,
        "DOCS/Guide/Chapter One/ch1.txt": b"chapter one\n",
        "DOCS/Guide/Chapter Two/ch2.txt": b"chapter two\n",
        "DOCS/Guide/Chapter Three/ch3.txt": b"chapter three\n",
        "DOCS/Reference/spec.pdf": PDF,
        "DOCS/@blog/2026-01-15 Launch Notes/launch.txt": b"we launched\n",
        "ENG/Runbook/run.sh": b"#!/bin/sh\necho run\n",
    }
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    (root / "ENG" / "Scratch").mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture(scope="session", autouse=True)
def _specs_present():
    harness.require_specs()
    harness.specs()


@pytest.fixture(scope="session")
def seed_dir(tmp_path_factory):
    return build_seed(tmp_path_factory.mktemp("seed"))


def _start(flavor, args, context=None):
    if context is None and flavor == "dc":
        context = DC_CONTEXT
    return Server(flavor, args, context_path=context)


@pytest.fixture(scope="session")
def cloud(seed_dir, tmp_path_factory):
    s = _start("cloud", ["--seed", str(seed_dir), "--data", str(tmp_path_factory.mktemp("data-cloud"))])
    yield s
    s.stop()


@pytest.fixture(scope="session")
def dc(seed_dir, tmp_path_factory):
    s = _start("dc", ["--seed", str(seed_dir), "--data", str(tmp_path_factory.mktemp("data-dc"))])
    yield s
    s.stop()


@pytest.fixture(params=FLAVORS)
def srv(request):
    """The session's seeded server, once per flavor."""
    return request.getfixturevalue("cloud" if request.param == "cloud" else "dc")


@pytest.fixture(scope="session")
def cloud_demo():
    s = _start("cloud", ["--demo"])
    yield s
    s.stop()


@pytest.fixture(scope="session")
def dc_demo():
    s = _start("dc", ["--demo"])
    yield s
    s.stop()


@pytest.fixture(params=FLAVORS)
def demo(request):
    return request.getfixturevalue("cloud_demo" if request.param == "cloud" else "dc_demo")


@pytest.fixture
def fresh(tmp_path):
    """Factory for a private server: fresh(flavor, *extra_args, seed=True, context=None)."""
    started = []

    def make(flavor, *args, seed=True, context=None):
        extra = list(args)
        if seed:
            extra = ["--seed", str(build_seed(tmp_path / f"seed-{len(started)}"))] + extra
        s = _start(flavor, extra, context=context)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


def pytest_terminal_summary(terminalreporter):
    """Print the route x flavor matrix (statuses validated) at the end of a run."""
    if not harness.COVERED or not getattr(harness, "FULL_RUN", False):
        return
    from test_zz_route_table import coverage_matrix

    tr = terminalreporter
    tr.section("fidelity: routes validated against the spec (statuses seen)")
    for api, method, tpl, c, d in coverage_matrix():
        tr.write_line(f"{api:3} {method:6} {tpl:70} cloud={c:12} dc={d}")
    extra = sorted(k for k in harness.COVERED if (k[1], k[2], k[3]) not in {(a, m, t) for a, m, t, _ in __import__('routes').ROUTES})
    for fl, api, method, tpl in extra:
        tr.write_line(f"{api:3} {method:6} {tpl:70} ({fl}, not in the table) {sorted(harness.COVERED[(fl, api, method, tpl)])}")
