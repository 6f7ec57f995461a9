"""Real captured responses (shared/confluence-api/examples) against ours: every key path that a
real server sent must also be in the test server's answer to the same request.

The schemas make almost nothing required; these captures say what is actually on the wire."""

from __future__ import annotations

import json

from harness import check, spec_dir
from util import XSRF, create_page, unique

# Paths that depend on the data, not on the shape: the capture had more rows than one page.
DATA_DEPENDENT = {"/results[]/metadata/labels/_links/next", "/_links/next"}


def key_paths(node, prefix=""):
    out = set()
    if isinstance(node, dict):
        for k, v in node.items():
            p = f"{prefix}/{k}"
            out.add(p)
            out |= key_paths(v, p)
    elif isinstance(node, list):
        for x in node:
            out |= key_paths(x, prefix + "[]")
    return out


def _capture(name):
    return json.loads((spec_dir() / "examples" / name).read_text())


def _missing(capture, ours):
    return sorted(key_paths(capture) - key_paths(ours) - DATA_DEPENDENT)


def _upload(srv):
    pid = create_page(srv, "ENG", unique("Shapes"))["id"]
    files = [("file", ("test.md", b"# hello\n", "application/octet-stream")), ("comment", (None, b"comment", "text/plain; charset=utf-8"))]
    r = srv.post(srv.v1(f"/content/{pid}/child/attachment"), files=files, data={"minorEdit": "false"}, headers=XSRF)
    return pid, check(r)


def test_cloud_v1_upload_response_shape(cloud):
    _, ours = _upload(cloud)
    missing = _missing(_capture("cloud-v1-attachment-upload-response.text2confl.json"), ours)
    assert not missing, f"key paths of the real Cloud upload response missing from ours: {missing}"


def test_cloud_v2_attachments_shape(cloud):
    pid, _ = _upload(cloud)
    ours = check(cloud.get(cloud.v2(f"/pages/{pid}/attachments")))
    missing = _missing(_capture("cloud-v2-page-attachments.text2confl.json"), ours)
    assert not missing, f"key paths of the real v2 attachment list missing from ours: {missing}"


def test_dc_v1_attachment_shape(dc):
    pid, _ = _upload(dc)
    body = check(dc.get(dc.v1(f"/content/{pid}/child/attachment"), params={"expand": "version,container", "filename": "test.md"}))
    (ours,) = body["results"]
    missing = _missing(_capture("dc-v1-attachment.docs.nomagic.com.json"), ours)
    assert not missing, f"key paths of the real DC attachment missing from ours: {missing}"
