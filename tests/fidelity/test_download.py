"""Downloads: Cloud 302 to a media origin, DC servlet path, ranges (docs/CONFLUENCE.md §1.6, 1.7, 5.1)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from conftest import DATA_BIN, NOTES
from harness import check, parse_timestamp
from util import XSRF, attachment_by_name, create_page, fetch_attachment_bytes, page_id, unique, upload

N = len(DATA_BIN)


def _media_url(cloud, page, att_id, **params):
    r = cloud.get(cloud.v1(f"/content/{page}/child/attachment/{att_id}/download"), params=params)
    check(r, 302)
    loc = r.headers.get("Location")
    assert loc, "302 without Location"
    return r, loc


def test_cloud_download_redirects_to_other_origin(cloud):
    gid = page_id(cloud, "DOCS", "Guide")
    att = attachment_by_name(cloud, gid, "data.bin")
    r, loc = _media_url(cloud, gid, att["id"])
    parts = urlsplit(loc)
    assert parts.scheme in ("http", "https") and parts.netloc, f"Location must be absolute: {loc}"
    assert f"{parts.scheme}://{parts.netloc}" != cloud.root, f"media must be another origin than the site: {loc}"
    assert parts.query, "the media URL carries its token in the query (docs/CONFLUENCE.md §1.6)"
    # https://api.media.atlassian.com/file/{fileId}/binary?token=<JWT>&client=<uuid>  (docs/CONFLUENCE.md §1.6)
    assert parts.path == f"/file/{att['extensions']['fileId']}/binary", (parts.path, att["extensions"].get("fileId"))
    assert "token" in parse_qs(parts.query), parts.query
    # Without Authorization: the bytes.
    m = requests.get(loc, timeout=20, allow_redirects=False)
    assert m.status_code == 200, m.text[:200]
    assert m.content == DATA_BIN
    assert int(m.headers.get("Content-Length", len(m.content))) == N
    # With Authorization: refused.
    m = requests.get(loc, timeout=20, auth=cloud.auth, allow_redirects=False)
    assert m.status_code == 401, f"media route must answer 401 when Authorization is sent, got {m.status_code}"
    m = requests.get(loc, timeout=20, headers={"Authorization": "Bearer demo-token"}, allow_redirects=False)
    assert m.status_code == 401


def test_cloud_download_followed_by_requests(cloud):
    """requests drops Authorization on a cross-origin redirect, as Go's client does."""
    gid = page_id(cloud, "DOCS", "Guide")
    att = attachment_by_name(cloud, gid, "notes.txt")
    r = cloud.session.get(cloud.v1(f"/content/{gid}/child/attachment/{att['id']}/download"), timeout=20)
    assert r.status_code == 200 and r.content == NOTES
    assert [h.status_code for h in r.history] == [302]


def test_cloud_media_ranges(cloud):
    gid = page_id(cloud, "DOCS", "Guide")
    att = attachment_by_name(cloud, gid, "data.bin")
    _, loc = _media_url(cloud, gid, att["id"])
    m = requests.get(loc, headers={"Range": "bytes=10-19"}, timeout=20)
    assert m.status_code == 206, m.status_code
    assert m.content == DATA_BIN[10:20]
    assert m.headers.get("Content-Range") == f"bytes 10-19/{N}"
    m = requests.get(loc, headers={"Range": "bytes=-5"}, timeout=20)
    assert m.status_code == 206 and m.content == DATA_BIN[-5:]
    m = requests.get(loc, headers={"Range": f"bytes={N - 3}-"}, timeout=20)
    assert m.status_code == 206 and m.content == DATA_BIN[-3:]
    m = requests.get(loc, headers={"Range": f"bytes={N}-"}, timeout=20)
    assert m.status_code == 416, m.status_code
    assert m.headers.get("Content-Range") == f"bytes */{N}"


def test_cloud_media_range_past_end_is_clamped(cloud):
    gid = page_id(cloud, "DOCS", "Guide")
    att = attachment_by_name(cloud, gid, "data.bin")
    _, loc = _media_url(cloud, gid, att["id"])
    m = requests.get(loc, headers={"Range": f"bytes={N - 10}-{N + 500}"}, timeout=20)
    assert m.status_code == 206 and m.content == DATA_BIN[-10:]
    assert m.headers.get("Content-Range") == f"bytes {N - 10}-{N - 1}/{N}"


def test_download_content_type(srv):
    gid = page_id(srv, "DOCS", "Guide")
    att = attachment_by_name(srv, gid, "diagram.png")
    if srv.flavor == "cloud":
        _, loc = _media_url(srv, gid, att["id"])
        r = requests.get(loc, timeout=20)
    else:
        r = srv.get(srv.abs(att["_links"]["download"]))
    assert r.headers.get("Content-Type", "").split(";")[0] == att["metadata"]["mediaType"] == "image/png"


@pytest.mark.parametrize("name", ["a+b #1?.txt", "100% sure & done.txt", "résumé – ü.txt", "semi;colon=eq.txt"])
def test_awkward_names_download(srv, name):
    pid = create_page(srv, "ENG", unique("Names"))["id"]
    upload(srv, pid, name, name.encode("utf-8"))
    att = attachment_by_name(srv, pid, name, expand="version")
    assert att["title"] == name
    assert fetch_attachment_bytes(srv, pid, att) == name.encode("utf-8")


def test_cloud_download_version(cloud):
    pid = create_page(cloud, "ENG", unique("Versions"))["id"]
    att = upload(cloud, pid, "ver.txt", b"first")["results"][0]
    files = [("file", ("ver.txt", b"second!", "text/plain"))]
    check(cloud.post(cloud.v1(f"/content/{pid}/child/attachment/{att['id']}/data"), files=files, data={"minorEdit": "true"}, headers=XSRF))
    _, loc = _media_url(cloud, pid, att["id"], version=1)
    assert requests.get(loc, timeout=20).content == b"first"
    _, loc = _media_url(cloud, pid, att["id"])
    assert requests.get(loc, timeout=20).content == b"second!"
    check(cloud.get(cloud.v1(f"/content/{pid}/child/attachment/{att['id']}/download"), params={"version": 9}), 400)


def test_cloud_download_missing(cloud):
    gid = page_id(cloud, "DOCS", "Guide")
    check(cloud.get(cloud.v1(f"/content/{gid}/child/attachment/att999999999/download")), 404)


def test_cloud_download_link_shape(cloud):
    gid = page_id(cloud, "DOCS", "Guide")
    att = attachment_by_name(cloud, gid, "notes.txt")
    link = att["_links"]["download"]
    num = att["id"][3:]
    api_form = f"/rest/api/content/{gid}/child/attachment/{att['id']}/download"
    servlet = re.match(rf"^/download/attachments/{gid}/notes\.txt\?(.*)$", link)
    assert link == api_form or servlet, f"cloud _links.download has neither documented form: {link}"
    assert num.isdigit()


def test_cloud_legacy_servlet_rejects_api_token(cloud):
    """docs/CONFLUENCE.md §1.6 / 5.1: /wiki/download/attachments/... answers 401 to API-token auth on Cloud (2026)."""
    gid = page_id(cloud, "DOCS", "Guide")
    r = cloud.get(cloud.base + f"/download/attachments/{gid}/notes.txt", params={"version": 1, "api": "v2"})
    assert r.status_code == 401, f"expected 401 for the deprecated servlet on Cloud, got {r.status_code}"


def test_dc_servlet_download(dc):
    gid = page_id(dc, "DOCS", "Guide")
    att = attachment_by_name(dc, gid, "data.bin", expand="version")
    link = att["_links"]["download"]
    m = re.match(rf"^/download/attachments/{gid}/data\.bin\?(.*)$", link)
    assert m, f"DC _links.download should be /download/attachments/{{pageId}}/{{name}}?...: {link}"
    q = parse_qs(m.group(1))
    assert q.get("version") == [str(att["version"]["number"])], q
    assert q.get("api") == ["v2"], q
    when = parse_timestamp(att["version"]["when"], dc, "version.when")
    assert q.get("modificationDate") == [str(round(when.timestamp() * 1000))], (q, att["version"]["when"])
    r = dc.get(dc.abs(link))
    assert r.status_code == 200 and r.content == DATA_BIN
    assert att["extensions"]["fileSize"] == len(r.content)


def test_dc_servlet_version_param(dc):
    pid = create_page(dc, "ENG", unique("DC versions"))["id"]
    att = upload(dc, pid, "dv.txt", b"first")["results"][0]
    files = [("file", ("dv.txt", b"second!", "text/plain"))]
    check(dc.post(dc.v1(f"/content/{pid}/child/attachment/{att['id']}/data"), files=files, data={"minorEdit": "true"}, headers=XSRF))
    cur = attachment_by_name(dc, pid, "dv.txt", expand="version")
    assert "version=2" in cur["_links"]["download"]
    assert dc.get(dc.abs(cur["_links"]["download"])).content == b"second!"
    old = dc.abs(cur["_links"]["download"]).replace("version=2", "version=1")
    assert dc.get(old).content == b"first"


def test_dc_servlet_ranges(dc):
    gid = page_id(dc, "DOCS", "Guide")
    att = attachment_by_name(dc, gid, "data.bin")
    url = dc.abs(att["_links"]["download"])
    r = dc.get(url, headers={"Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == DATA_BIN[100:200]
    assert r.headers.get("Content-Range") == f"bytes 100-199/{N}"
    r = dc.get(url, headers={"Range": "bytes=-7"})
    assert r.status_code == 206 and r.content == DATA_BIN[-7:]
    r = dc.get(url, headers={"Range": f"bytes={N + 10}-"})
    assert r.status_code == 416
    assert r.headers.get("Content-Range") == f"bytes */{N}"


def test_dc_servlet_needs_auth(dc):
    gid = page_id(dc, "DOCS", "Guide")
    att = attachment_by_name(dc, gid, "notes.txt")
    r = requests.get(dc.abs(att["_links"]["download"]), timeout=20, allow_redirects=False)
    assert r.status_code != 200, "anonymous servlet download must not return the bytes"
    r = requests.get(dc.abs(att["_links"]["download"]), timeout=20, headers={"Authorization": "Bearer demo-token"})
    assert r.status_code == 200 and r.content == NOTES


@pytest.mark.parametrize("name", ["notes.txt", "diagram.png", "data.bin"])
def test_file_sizes_match_downloads(srv, name):
    gid = page_id(srv, "DOCS", "Guide")
    att = attachment_by_name(srv, gid, name)
    assert att["extensions"]["fileSize"] == len(fetch_attachment_bytes(srv, gid, att))
