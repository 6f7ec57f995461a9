"""Walk the whole --demo data set through the API and validate every body on the way.

This catches objects the seed tests do not produce (versions, properties, images,
PDFs, nested trees, blog posts as the demo author made them)."""

from __future__ import annotations

from harness import assert_attachment_id, check, parse_timestamp, validate_against
from util import fetch_attachment_bytes

MAX_DOWNLOADS = 40

MAX_CONTENT = 150


def _all_v1(srv, url, params=None):
    params = dict(params or {})
    params.setdefault("limit", 50)
    body = check(srv.get(url, params=params))
    out = list(body["results"])
    guard = 0
    while "next" in body["_links"]:
        guard += 1
        assert guard < 100
        body = check(srv.get(srv.abs(body["_links"]["next"])))
        out += body["results"]
    return out


def _versions(srv, cid):
    """Cloud: /rest/api/content/{id}/version; DC: the same model under /rest/experimental."""
    if srv.flavor == "cloud":
        body = check(srv.get(srv.v1(f"/content/{cid}/version")))
    else:
        r = srv.get(srv.base + f"/rest/experimental/content/{cid}/version")
        assert r.status_code == 200, r.status_code
        body = r.json()
        validate_against(body, "GET", "/wiki/rest/api/content/1/version")
    nums = [v["number"] for v in body["results"]]
    assert len(nums) == len(set(nums)) and nums, nums
    return body


def test_demo_crawl_v1(demo):
    spaces = _all_v1(demo, demo.v1("/space"))
    assert len(spaces) >= 2, "the demo has several spaces"
    seen = 0
    downloads = 0
    kinds = set()
    for sp in spaces:
        check(demo.get(demo.v1(f"/space/{sp['key']}"), params={"expand": "homepage,description.plain"}))
        content = check(demo.get(demo.v1(f"/space/{sp['key']}/content"), params={"limit": 100}))
        items = content["page"]["results"] + content["blogpost"]["results"]
        for c in items:
            if seen >= MAX_CONTENT:
                break
            seen += 1
            kinds.add(c["type"])
            full = check(demo.get(demo.v1(f"/content/{c['id']}"), params={"expand": "version,space,ancestors,history,body.storage"}))
            parse_timestamp(full["version"]["when"], demo, f"{c['id']} version.when")
            check(demo.get(demo.v1(f"/content/{c['id']}/child/page")))
            check(demo.get(demo.v1(f"/content/{c['id']}/property")))
            _versions(demo, c["id"])
            for a in _all_v1(demo, demo.v1(f"/content/{c['id']}/child/attachment"), {"expand": "version,container,metadata"}):
                kinds.add("attachment")
                assert_attachment_id(demo, a["id"])
                assert isinstance(a["extensions"]["fileSize"], int)
                check(demo.get(demo.v1(f"/content/{a['id']}"), params={"expand": "version,container"}))
                if downloads < MAX_DOWNLOADS:
                    downloads += 1
                    data = fetch_attachment_bytes(demo, c["id"], a)
                    assert len(data) == a["extensions"]["fileSize"], (a["title"], len(data), a["extensions"]["fileSize"])
                check(demo.get(demo.v1(f"/content/{a['id']}/property")))
                _versions(demo, a["id"])
    assert {"page", "blogpost", "attachment"} <= kinds, kinds


def test_demo_crawl_v2(cloud_demo):
    s = cloud_demo
    spaces = check(s.get(s.v2("/spaces"), params={"limit": 250}))["results"]
    n = 0
    for sp in spaces:
        check(s.get(s.v2(f"/spaces/{sp['id']}")))
        pages = check(s.get(s.v2(f"/spaces/{sp['id']}/pages"), params={"limit": 250}))["results"]
        for p in pages[:40]:
            n += 1
            check(s.get(s.v2(f"/pages/{p['id']}"), params={"body-format": "storage"}))
            check(s.get(s.v2(f"/pages/{p['id']}/children")))
            check(s.get(s.v2(f"/pages/{p['id']}/direct-children")))
            check(s.get(s.v2(f"/pages/{p['id']}/versions")))
            check(s.get(s.v2(f"/pages/{p['id']}/properties")))
            for a in check(s.get(s.v2(f"/pages/{p['id']}/attachments"), params={"limit": 250}))["results"]:
                check(s.get(s.v2(f"/attachments/{a['id']}")))
                check(s.get(s.v2(f"/attachments/{a['id']}/versions")))
                check(s.get(s.v2(f"/attachments/{a['id']}/properties")))
        for b in check(s.get(s.v2(f"/spaces/{sp['id']}/blogposts")))["results"]:
            check(s.get(s.v2(f"/blogposts/{b['id']}")))
            check(s.get(s.v2(f"/blogposts/{b['id']}/attachments")))
    assert n > 0
