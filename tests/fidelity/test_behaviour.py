"""Behaviour a schema cannot express: XSRF, charsets, auth failures, limits, faults (docs/CONFLUENCE.md §1.2, 2.8, 3, 5)."""

from __future__ import annotations

import requests

from harness import check, check_v1_error, check_v2_error
from util import attachments, create_page, unique, upload


def _page(srv):
    return create_page(srv, "ENG", unique("Behaviour"))["id"]


# -- XSRF (docs/CONFLUENCE.md §5.5) -------------------------------------------------------------


def _assert_xsrf_403(r):
    assert r.status_code == 403, f"expected 403 without X-Atlassian-Token, got {r.status_code}: {r.text[:200]}"
    assert "XSRF check failed" in r.text, r.text[:200]
    assert "json" not in r.headers.get("Content-Type", ""), "the XSRF page is text/HTML, not the JSON error shape"


def test_xsrf_post_without_header(srv):
    pid = _page(srv)
    r = upload(srv, pid, "x.txt", b"x", headers={}, expect=None)
    _assert_xsrf_403(r)
    assert attachments(srv, pid)["results"] == [], "a refused upload must not create anything"


def test_xsrf_put_without_header(cloud):
    pid = _page(cloud)
    _assert_xsrf_403(upload(cloud, pid, "x.txt", b"x", method="PUT", headers={}, expect=None))


def test_xsrf_data_without_header(srv):
    pid = _page(srv)
    att = upload(srv, pid, "x.txt", b"x")["results"][0]
    r = srv.post(
        srv.v1(f"/content/{pid}/child/attachment/{att['id']}/data"),
        files=[("file", ("x.txt", b"y", "text/plain"))],
        data={"minorEdit": "true"},
    )
    _assert_xsrf_403(r)


def test_xsrf_nocheck_spelling_accepted(srv):
    """The spec's own curl examples send `nocheck`; docs/CONFLUENCE.md §5.5 says accept both."""
    pid = _page(srv)
    upload(srv, pid, "n.txt", b"n", headers={"X-Atlassian-Token": "nocheck"})


def test_json_writes_need_no_xsrf_header(srv):
    """XSRF protection applies to form posts; JSON API calls (APA's create_page) pass without it."""
    page = create_page(srv, "ENG", unique("NoXsrf"))
    r = srv.post(srv.v1(f"/content/{page['id']}/property"), json={"key": "k", "value": "1"})
    check(r)


# -- multipart details (docs/CONFLUENCE.md §1.2, 5.7) --------------------------------------------


def test_comment_charset_utf8_label(srv):
    pid = _page(srv)
    att = upload(srv, pid, "c.txt", b"c", comment="Grüße ✓")["results"][0]
    assert att["metadata"]["comment"] == "Grüße ✓"


def test_comment_unlabeled_part_is_latin1(srv):
    """An unlabeled text part is decoded as ISO-8859-1 (docs/CONFLUENCE.md §1.2, verified live)."""
    pid = _page(srv)
    r = srv.post(
        srv.v1(f"/content/{pid}/child/attachment"),
        files=[("file", ("l.txt", b"l", "text/plain")), ("comment", (None, "Grüße".encode("utf-8")))],
        data={"minorEdit": "true"},
        headers={"X-Atlassian-Token": "no-check"},
    )
    att = check(r)["results"][0]
    assert att["metadata"]["comment"] == "Grüße".encode("utf-8").decode("latin-1")


def test_unicode_filename_roundtrip(srv):
    pid = _page(srv)
    name = "résumé 2026 – ü.txt"
    att = upload(srv, pid, name, b"u")["results"][0]
    assert att["title"] == name
    assert [a["title"] for a in attachments(srv, pid)["results"]] == [name]


def test_path_in_filename_collapses_to_basename(srv):
    pid = _page(srv)
    att = upload(srv, pid, "my/path/to/file.png", b"p")["results"][0]
    assert att["title"] == "file.png"
    r = upload(srv, pid, "file.png", b"q", expect=None)
    assert r.status_code == 400, "the basename collides with the existing file (docs/CONFLUENCE.md §5.7)"


def test_percent_2f_in_filename_is_literal(srv):
    """`%2F` in a name is kept literally (docs/CONFLUENCE.md §5.7, verified live)."""
    pid = _page(srv)
    att = upload(srv, pid, "a%2Fb.txt", b"p")["results"][0]
    assert att["title"] == "a%2Fb.txt"


def test_unknown_form_fields_ignored(srv):
    """APA sends type, fileName, contentType as extra form fields."""
    pid = _page(srv)
    extra = {"type": "attachment", "fileName": "a.txt", "contentType": "text/plain", "comment": "Uploaded a.txt."}
    att = upload(srv, pid, "a.txt", b"a", extra=extra)["results"][0]
    assert att["title"] == "a.txt"


def test_oversize_upload(fresh):
    for flavor in ("cloud", "dc"):
        s = fresh(flavor, "--max-attachment-size", "10")
        pid = create_page(s, "ENG", unique("Big"))["id"]
        upload(s, pid, "small.bin", b"0123456789")
        r = upload(s, pid, "big.bin", b"0123456789A", expect=None)
        # Spec: 404 "the attachment exceeds the maximum configured attachment size"; 413 tolerated (docs/CONFLUENCE.md §5.3).
        assert r.status_code in (404, 413), r.status_code
        if r.status_code == 404:
            check(r, 404)
        else:
            check_v1_error(r)
        assert [a["title"] for a in attachments(s, pid)["results"]] == ["small.bin"]


def test_dc_has_no_v2(dc):
    """There is no v2 API on Data Center (docs/CONFLUENCE.md §0)."""
    assert dc.get(dc.base + "/api/v2/spaces").status_code == 404


def test_dc_has_no_rest_download(dc):
    """DC has no REST download endpoint; clients use the servlet path (docs/CONFLUENCE.md §1.6)."""
    from util import attachment_by_name, page_id

    gid = page_id(dc, "DOCS", "Guide")
    att = attachment_by_name(dc, gid, "notes.txt")
    r = dc.get(dc.v1(f"/content/{gid}/child/attachment/{att['id']}/download"))
    assert r.status_code in (404, 405), r.status_code


# -- authentication (docs/CONFLUENCE.md §2.8, 3) ----------------------------------------------------


def test_dc_bearer_token(dc):
    r = requests.get(dc.v1("/user/current"), headers={"Authorization": "Bearer demo-token"}, timeout=20)
    r.fidelity_server = dc
    check(r)
    r = requests.get(dc.v1("/space"), headers={"Authorization": "Bearer wrong"}, timeout=20)
    assert r.status_code == 401


def test_dc_bad_basic_auth(dc):
    r = requests.get(dc.v1("/space"), auth=("demo@example.com", "wrong"), timeout=20)
    assert r.status_code == 401
    r = requests.get(dc.v1("/space"), timeout=20)
    assert r.status_code == 401, "anonymous REST access is refused"


def test_cloud_refuses_bearer_api_token(cloud):
    """A Cloud API token works as basic auth only; as a bearer token the site refuses it
    (v1: 403 shape of docs/CONFLUENCE.md §2.8; v2: the bare 404 of docs/CONFLUENCE.md §3)."""
    h = {"Authorization": "Bearer demo-token"}
    r = requests.get(cloud.v1("/user/current"), headers=h, timeout=20)
    r.fidelity_server = cloud
    check(r, 403)
    r = requests.get(cloud.v2("/spaces"), headers=h, timeout=20)
    assert r.status_code == 404
    check_v2_error(r)


def test_cloud_v1_bad_credentials_403(cloud):
    """Cloud v1 answers bad credentials with 403 `caller cannot access Confluence` (docs/CONFLUENCE.md §2.8)."""
    r = requests.get(cloud.v1("/user/current"), auth=("demo@example.com", "wrong"), timeout=20)
    r.fidelity_server = cloud
    body = check(r, 403)
    assert "caller cannot access Confluence" in body["message"], body
    r = requests.get(cloud.v1("/search"), params={"cql": "type=page"}, timeout=20)
    r.fidelity_server = cloud
    body = check(r, 403)
    assert "Current user not permitted to use Confluence" in body["message"], body


def test_cloud_v2_bad_credentials_404(cloud):
    """A bad credential on v2 gives 404 with the bare title "Not Found" (docs/CONFLUENCE.md §3)."""
    r = requests.get(cloud.v2("/spaces"), auth=("demo@example.com", "wrong"), timeout=20)
    assert r.status_code == 404, r.status_code
    body = check_v2_error(r)
    assert body["errors"][0]["title"] == "Not Found"


# -- rate limiting and faults (docs/CONFLUENCE.md §5.2) -----------------------------------------------


def test_injected_429_carries_retry_after(fresh):
    s = fresh("cloud", seed=True)
    assert s.hook("POST", "faults", json={"fail_next": [429], "retry_after": 2}).status_code < 300
    r = s.get(s.v1("/space"))
    assert r.status_code == 429
    assert r.headers.get("Retry-After") == "2"
    check(s.get(s.v1("/space")))
    s.hook("POST", "faults", json={})


def test_injected_503_carries_retry_after(fresh):
    s = fresh("dc", seed=True)
    s.hook("POST", "faults", json={"fail_next": [503], "retry_after": 1})
    r = s.get(s.v1("/space"))
    assert r.status_code == 503 and r.headers.get("Retry-After") == "1"
    check(s.get(s.v1("/space")))


def test_request_log_hook(fresh):
    s = fresh("dc", seed=True)
    s.hook("DELETE", "requests")
    s.get(s.v1("/space"))
    log = s.hook("GET", "requests").json()
    entries = log if isinstance(log, list) else log.get("requests", log.get("results", []))
    assert any(e.get("method") == "GET" and e.get("path", "").endswith("/rest/api/space") for e in entries), log


# -- concurrency ----------------------------------------------------------------------------


def test_parallel_uploads(srv):
    """Distinct names uploaded at once all land; the same name at once lands exactly once."""
    from concurrent.futures import ThreadPoolExecutor

    import requests as rq

    pid = _page(srv)

    def post(name):
        return rq.post(
            srv.v1(f"/content/{pid}/child/attachment"),
            files=[("file", (name, name.encode(), "text/plain"))],
            data={"minorEdit": "true"},
            headers={"X-Atlassian-Token": "no-check", "Accept": "application/json"},
            auth=srv.auth,
            timeout=20,
        )

    with ThreadPoolExecutor(8) as ex:
        rs = list(ex.map(post, [f"par-{i}.txt" for i in range(8)]))
    assert [r.status_code for r in rs] == [200] * 8
    ids = [r.json()["results"][0]["id"] for r in rs]
    assert len(set(ids)) == 8
    with ThreadPoolExecutor(6) as ex:
        rs = list(ex.map(post, ["same.txt"] * 6))
    assert sorted(r.status_code for r in rs) == [200] + [400] * 5, [r.status_code for r in rs]
    names = [a["title"] for a in attachments(srv, pid, limit=50)["results"]]
    assert names.count("same.txt") == 1 and len(names) == 9


# -- server options that switch between documented real-world behaviours ---------------------


def test_strict_xsrf_option(fresh):
    """--strict-xsrf: only `no-check` passes (one DC report: `nocheck` gave 403, docs/CONFLUENCE.md §5.5)."""
    s = fresh("dc", "--strict-xsrf")
    pid = create_page(s, "ENG", unique("Strict"))["id"]
    _assert_xsrf_403(upload(s, pid, "n.txt", b"n", headers={"X-Atlassian-Token": "nocheck"}, expect=None))
    upload(s, pid, "n.txt", b"n", headers={"X-Atlassian-Token": "no-check"})


def test_legacy_download_links_option(fresh):
    """--legacy-download-links: Cloud v1 `_links.download` in the pre-2026 servlet form
    (`/download/attachments/{page}/{name}?version&modificationDate&cacheVersion=1&api=v2`, docs/CONFLUENCE.md §1.6),
    which answers 401 to API-token auth; the REST /download route still works."""
    import re
    from urllib.parse import parse_qs

    from util import attachment_by_name, fetch_attachment_bytes, page_id

    s = fresh("cloud", "--legacy-download-links")
    gid = page_id(s, "DOCS", "Guide")
    att = attachment_by_name(s, gid, "notes.txt", expand="version")
    m = re.match(rf"^/download/attachments/{gid}/notes\.txt\?(.*)$", att["_links"]["download"])
    assert m, att["_links"]["download"]
    q = parse_qs(m.group(1))
    assert q["version"] == ["1"] and q["api"] == ["v2"] and q["cacheVersion"] == ["1"] and "modificationDate" in q
    assert s.get(s.abs(att["_links"]["download"])).status_code == 401
    assert fetch_attachment_bytes(s, gid, att) == b"hello notes\n"


def test_media_token_expires(fresh):
    """The media URL's token is short-lived (docs/CONFLUENCE.md §1.6: do not cache the Location for long)."""
    import time

    from util import attachment_by_name, page_id

    s = fresh("cloud", "--media-token-ttl", "1")
    gid = page_id(s, "DOCS", "Guide")
    att = attachment_by_name(s, gid, "notes.txt")
    r = s.get(s.v1(f"/content/{gid}/child/attachment/{att['id']}/download"))
    loc = r.headers["Location"]
    assert requests.get(loc, timeout=20).status_code == 200
    time.sleep(2.2)
    assert requests.get(loc, timeout=20).status_code in (401, 403)


def test_v1_limit_is_clamped_and_echoed(srv):
    """An over-large v1 `limit` is clamped and the effective limit echoed (docs/CONFLUENCE.md §5.4)."""
    body = check(srv.get(srv.v1("/space"), params={"limit": 1000}))
    assert body["limit"] == 200


def test_dc_browser_user_agent_trips_xsrf(dc):
    """DC: a browser-like User-Agent gets the XSRF page on POST even with the token header
    (docs/CONFLUENCE.md §5.5, measured on DC 7.19.6; Atlassian KB 802591455)."""
    pid = _page(dc)
    h = {"X-Atlassian-Token": "no-check", "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"}
    _assert_xsrf_403(upload(dc, pid, "ua.txt", b"u", headers=h, expect=None))
    upload(dc, pid, "ua.txt", b"u", headers={"X-Atlassian-Token": "no-check", "User-Agent": "confluencefs/0.1"})


def test_oversize_status_404_option(fresh):
    """--oversize-status 404: the status the v1 spec documents for an over-size attachment."""
    s = fresh("cloud", "--max-attachment-size", "4", "--oversize-status", "404")
    pid = create_page(s, "ENG", unique("Big404"))["id"]
    body = check(upload(s, pid, "big.bin", b"12345", expect=None), 404)
    assert body["statusCode"] == 404
