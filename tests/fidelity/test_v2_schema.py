"""v2 REST routes (Cloud only): bodies validated against the v2 OpenAPI document, plus
pagination (`Link` header == `_links.next`, absent at the end) and the v2 error shape."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import DATA_BIN
from harness import CLOUD_ATT_ID, check, check_v2_error, parse_timestamp
from util import XSRF, attachment_by_name, create_page, follow_v2, link_header_next, page_id, unique, upload


@pytest.fixture(scope="module")
def ids(cloud):
    body = check(cloud.get(cloud.v2("/spaces"), params={"keys": "DOCS"}))
    assert [s["key"] for s in body["results"]] == ["DOCS"]
    docs = body["results"][0]["id"]
    guide = page_id(cloud, "DOCS", "Guide")
    blog = check(cloud.get(cloud.v1("/space/DOCS/content/blogpost")))["results"][0]["id"]
    return {"space": docs, "guide": guide, "blog": blog}


def _no_next(r, body):
    assert "next" not in body.get("_links", {}), body.get("_links")
    assert link_header_next(r) is None, r.headers.get("Link")


# -- spaces ---------------------------------------------------------------------------


def test_spaces(cloud):
    r = cloud.get(cloud.v2("/spaces"))
    body = check(r)
    keys = {s["key"] for s in body["results"]}
    assert {"DOCS", "ENG"} <= keys
    _no_next(r, body)
    for s in body["results"]:
        assert isinstance(s["id"], str) and s["id"].isdigit()
        if s.get("createdAt"):
            parse_timestamp(s["createdAt"], cloud, "createdAt")
    assert body["_links"].get("base") in (None, cloud.base)


def test_spaces_paging(cloud):
    results, pages = follow_v2(cloud, cloud.v2("/spaces"), params={"limit": 1})
    assert len(pages) >= 2 and len({s["id"] for s in results}) == len(results)


def test_space_get(cloud, ids):
    body = check(cloud.get(cloud.v2(f"/spaces/{ids['space']}")))
    assert body["key"] == "DOCS" and body["id"] == ids["space"]
    home = body.get("homepageId")
    assert home == page_id(cloud, "DOCS", "DOCS Home")


def test_space_get_missing(cloud):
    r = cloud.get(cloud.v2("/spaces/999999999"))
    check(r, 404)


def test_space_pages(cloud, ids):
    r = cloud.get(cloud.v2(f"/spaces/{ids['space']}/pages"))
    body = check(r)
    titles = {p["title"] for p in body["results"]}
    assert titles == {"DOCS Home", "Guide", "Chapter One", "Chapter Two", "Chapter Three", "Reference"}
    body = check(cloud.get(cloud.v2(f"/spaces/{ids['space']}/pages"), params={"depth": "root"}))
    assert [p["title"] for p in body["results"]] == ["DOCS Home"]


def test_space_pages_paging(cloud, ids):
    results, pages = follow_v2(cloud, cloud.v2(f"/spaces/{ids['space']}/pages"), params={"limit": 2})
    assert len(pages) == 3 and len(results) == 6 and len({p["id"] for p in results}) == 6


def test_space_blogposts(cloud, ids):
    body = check(cloud.get(cloud.v2(f"/spaces/{ids['space']}/blogposts")))
    assert [b["title"] for b in body["results"]] == ["Launch Notes"]


# -- pages ------------------------------------------------------------------------------


def test_pages_by_title(cloud, ids):
    body = check(cloud.get(cloud.v2("/pages"), params={"space-id": ids["space"], "title": "guide"}))
    # title= is exact but case-insensitive (docs/CONFLUENCE.md §3)
    assert [p["id"] for p in body["results"]] == [ids["guide"]]


def test_pages_paging(cloud, ids):
    results, pages = follow_v2(cloud, cloud.v2("/pages"), params={"space-id": ids["space"], "limit": 4})
    assert len(results) == 6 and len(pages) == 2


def test_page_get(cloud, ids):
    body = check(cloud.get(cloud.v2(f"/pages/{ids['guide']}"), params={"body-format": "storage"}))
    assert body["id"] == ids["guide"] and body["title"] == "Guide" and body["spaceId"] == ids["space"]
    assert body["parentId"] == page_id(cloud, "DOCS", "DOCS Home")
    parse_timestamp(body["createdAt"], cloud, "createdAt")
    parse_timestamp(body["version"]["createdAt"], cloud, "version.createdAt")
    assert body["body"]["storage"]["representation"] == "storage"


def test_pages_status_draft_rejected(cloud, ids):
    """`status=draft` on GET /pages -> 400 (docs/CONFLUENCE.md §3, verified live)."""
    check(cloud.get(cloud.v2("/pages"), params={"space-id": ids["space"], "status": "draft"}), 400)


def test_blogpost_versions(cloud, ids):
    r = cloud.get(cloud.v2(f"/blogposts/{ids['blog']}/versions"))
    body = check(r)
    assert [v["number"] for v in body["results"]] == [1]


def test_page_get_missing(cloud):
    body = check(cloud.get(cloud.v2("/pages/999999999")), 404)
    assert body["errors"][0]["code"] == "NOT_FOUND"
    # Genuine 404s name the object (docs/CONFLUENCE.md §3)
    assert "999999999" in body["errors"][0]["title"], body


def test_page_route_refuses_blogpost(cloud, ids):
    check(cloud.get(cloud.v2(f"/pages/{ids['blog']}")), 404)
    check(cloud.get(cloud.v2(f"/blogposts/{ids['guide']}")), 404)


def test_page_children(cloud, ids):
    r = cloud.get(cloud.v2(f"/pages/{ids['guide']}/children"))
    body = check(r)
    assert {c["title"] for c in body["results"]} == {"Chapter One", "Chapter Two", "Chapter Three"}
    _no_next(r, body)
    results, pages = follow_v2(cloud, cloud.v2(f"/pages/{ids['guide']}/children"), params={"limit": 1})
    assert len(pages) == 3


def test_page_direct_children(cloud, ids):
    body = check(cloud.get(cloud.v2(f"/pages/{ids['guide']}/direct-children")))
    assert {c["title"] for c in body["results"]} == {"Chapter One", "Chapter Two", "Chapter Three"}
    assert {c["type"] for c in body["results"]} == {"page"}


def test_page_create_update_delete(cloud, ids):
    eng = check(cloud.get(cloud.v2("/spaces"), params={"keys": "ENG"}))["results"][0]["id"]
    title = unique("V2 page")
    data = {"spaceId": eng, "status": "current", "title": title, "body": {"representation": "storage", "value": "<p>v2</p>"}}
    page = check(cloud.post(cloud.v2("/pages"), json=data))
    assert page["title"] == title and page["spaceId"] == eng and page["version"]["number"] == 1
    upd = {"id": page["id"], "status": "current", "title": title + "!", "body": {"representation": "storage", "value": "<p>2</p>"}, "version": {"number": 2, "message": "m"}}
    out = check(cloud.put(cloud.v2(f"/pages/{page['id']}"), json=upd))
    assert out["version"]["number"] == 2 and out["title"] == title + "!"
    check(cloud.delete(cloud.v2(f"/pages/{page['id']}")), 204)
    body = check(cloud.get(cloud.v2("/pages"), params={"space-id": eng, "title": title + "!"}))
    assert body["results"] == []


def test_page_trash_and_purge(cloud):
    """DELETE trashes; `status=` repeats and accepts trashed (docs/CONFLUENCE.md §3); purge=true on a trashed page removes it."""
    eng = check(cloud.get(cloud.v2("/spaces"), params={"keys": "ENG"}))["results"][0]["id"]
    pid = create_page(cloud, "ENG", unique("Trash me"))["id"]
    check(cloud.delete(cloud.v2(f"/pages/{pid}")), 204)
    check(cloud.get(cloud.v2(f"/pages/{pid}")), 404)
    r = cloud.get(cloud.v2("/pages"), params=[("space-id", eng), ("status", "current"), ("status", "trashed"), ("limit", 250)])
    by_id = {p["id"]: p for p in check(r)["results"]}
    assert by_id[pid]["status"] == "trashed"
    check(cloud.delete(cloud.v2(f"/pages/{pid}"), params={"purge": "true"}), 204)
    r = cloud.get(cloud.v2("/pages"), params=[("space-id", eng), ("status", "trashed"), ("limit", 250)])
    assert pid not in {p["id"] for p in check(r)["results"]}


def test_attachment_trash_and_purge(cloud):
    pid = create_page(cloud, "ENG", unique("Att purge"))["id"]
    att = upload(cloud, pid, "purge.txt", b"p")["results"][0]
    check(cloud.delete(cloud.v2(f"/attachments/{att['id']}")), 204)
    body = check(cloud.get(cloud.v2(f"/pages/{pid}/attachments"), params={"status": "trashed"}))
    assert [a["id"] for a in body["results"]] == [att["id"]] and body["results"][0]["status"] == "trashed"
    check(cloud.delete(cloud.v2(f"/attachments/{att['id']}"), params={"purge": "true"}), 204)
    body = check(cloud.get(cloud.v2(f"/pages/{pid}/attachments"), params={"status": "trashed"}))
    assert body["results"] == []


def test_page_versions(cloud):
    pid = create_page(cloud, "ENG", unique("V2 versions"))["id"]
    upd = {"type": "page", "title": unique("V2 versions renamed"), "version": {"number": 2}, "body": {"storage": {"value": "<p>x</p>", "representation": "storage"}}}
    check(cloud.put(cloud.v1(f"/content/{pid}"), json=upd))
    r = cloud.get(cloud.v2(f"/pages/{pid}/versions"))
    body = check(r)
    assert sorted(v["number"] for v in body["results"]) == [1, 2]
    _no_next(r, body)


# -- blog posts ---------------------------------------------------------------------------


def test_blogposts(cloud, ids):
    body = check(cloud.get(cloud.v2("/blogposts")))
    assert ids["blog"] in [b["id"] for b in body["results"]]
    one = check(cloud.get(cloud.v2(f"/blogposts/{ids['blog']}")))
    assert one["title"] == "Launch Notes" and one["spaceId"] == ids["space"]


def test_blogpost_attachments(cloud, ids):
    body = check(cloud.get(cloud.v2(f"/blogposts/{ids['blog']}/attachments")))
    assert [a["title"] for a in body["results"]] == ["launch.txt"]
    assert body["results"][0]["blogPostId"] == ids["blog"]


# -- attachments ---------------------------------------------------------------------------


def test_page_attachments(cloud, ids):
    r = cloud.get(cloud.v2(f"/pages/{ids['guide']}/attachments"))
    body = check(r)
    _no_next(r, body)
    by = {a["title"]: a for a in body["results"]}
    assert set(by) == {"notes.txt", "data.bin", "diagram.png"}
    a = by["data.bin"]
    assert CLOUD_ATT_ID.match(a["id"]) and a["pageId"] == ids["guide"]
    assert a["fileSize"] == len(DATA_BIN)
    parse_timestamp(a["createdAt"], cloud, "createdAt")
    parse_timestamp(a["version"]["createdAt"], cloud, "version.createdAt")
    assert a["downloadLink"].startswith("/download/attachments/"), a["downloadLink"]
    v1 = attachment_by_name(cloud, ids["guide"], "data.bin")
    assert v1["id"] == a["id"], "v1 and v2 agree on attachment ids"
    assert v1["extensions"]["fileId"] == a["fileId"], "v1 extensions.fileId == v2 fileId"
    assert v1["extensions"]["collectionName"] == f"contentId-{ids['guide']}"
    # downloadLink's modificationDate is the current version's time in epoch ms (docs/CONFLUENCE.md §4.1)
    q = parse_qs(urlsplit(a["downloadLink"]).query)
    created = parse_timestamp(a["version"]["createdAt"], cloud, "version.createdAt")
    assert q["modificationDate"] == [str(round(created.timestamp() * 1000))], (q, a["version"]["createdAt"])
    assert q["version"] == [str(a["version"]["number"])]


def test_page_attachments_filters_and_paging(cloud, ids):
    body = check(cloud.get(cloud.v2(f"/pages/{ids['guide']}/attachments"), params={"filename": "notes.txt"}))
    assert [a["title"] for a in body["results"]] == ["notes.txt"]
    body = check(cloud.get(cloud.v2(f"/pages/{ids['guide']}/attachments"), params={"mediaType": "image/png"}))
    assert [a["title"] for a in body["results"]] == ["diagram.png"]
    results, pages = follow_v2(cloud, cloud.v2(f"/pages/{ids['guide']}/attachments"), params={"limit": 1})
    assert len(pages) == 3 and sorted(a["title"] for a in results) == ["data.bin", "diagram.png", "notes.txt"]


def test_attachment_default_limits(cloud):
    """Defaults: v2 attachments 50 (docs/CONFLUENCE.md §3, 5.4), v1 child/attachment 25."""
    pid = create_page(cloud, "ENG", unique("Many attachments"))["id"]
    files = [("file", (f"f{i:02}.txt", b"x", "text/plain")) for i in range(55)]
    r = cloud.post(cloud.v1(f"/content/{pid}/child/attachment"), files=files, data={"minorEdit": "true"}, headers=XSRF)
    assert len(check(r)["results"]) == 55
    r = cloud.get(cloud.v2(f"/pages/{pid}/attachments"))
    body = check(r)
    assert len(body["results"]) == 50 and "next" in body["_links"]
    results, pages = follow_v2(cloud, cloud.v2(f"/pages/{pid}/attachments"))
    assert len(results) == 55 and len({a["id"] for a in results}) == 55
    v1 = check(cloud.get(cloud.v1(f"/content/{pid}/child/attachment")))
    assert len(v1["results"]) == 25 and v1["limit"] == 25 and "next" in v1["_links"]


def test_page_attachments_missing_page(cloud):
    check(cloud.get(cloud.v2("/pages/999999999/attachments")), 404)


def test_attachment_get(cloud, ids):
    att = attachment_by_name(cloud, ids["guide"], "notes.txt")
    body = check(cloud.get(cloud.v2(f"/attachments/{att['id']}")))
    assert body["id"] == att["id"] and body["title"] == "notes.txt" and body["fileSize"] == att["extensions"]["fileSize"]
    # The path pattern accepts the bare number too: (att)?[0-9]+ (docs/CONFLUENCE.md §0)
    bare = check(cloud.get(cloud.v2(f"/attachments/{att['id'][3:]}")))
    assert bare["id"] == att["id"]
    check(cloud.get(cloud.v2("/attachments/att999999999")), 404)


def test_attachment_versions(cloud):
    pid = create_page(cloud, "ENG", unique("Att versions"))["id"]
    att = upload(cloud, pid, "av.txt", b"1")["results"][0]
    files = [("file", ("av.txt", b"22", "text/plain"))]
    check(cloud.post(cloud.v1(f"/content/{pid}/child/attachment/{att['id']}/data"), files=files, data={"minorEdit": "true"}, headers=XSRF))
    r = cloud.get(cloud.v2(f"/attachments/{att['id']}/versions"))
    body = check(r)
    assert sorted(v["number"] for v in body["results"]) == [1, 2]
    one = check(cloud.get(cloud.v2(f"/attachments/{att['id']}/versions/1")))
    assert one["number"] == 1
    cur = check(cloud.get(cloud.v2(f"/attachments/{att['id']}")))
    assert cur["version"]["number"] == 2 and cur["fileSize"] == 2
    # v2 createdAt of an attachment is its current version's time (docs/CONFLUENCE.md §4.2)
    assert cur["createdAt"] == cur["version"]["createdAt"]


def test_attachment_delete(cloud):
    pid = create_page(cloud, "ENG", unique("Att delete"))["id"]
    att = upload(cloud, pid, "d.txt", b"d")["results"][0]
    check(cloud.delete(cloud.v2(f"/attachments/{att['id']}")), 204)
    body = check(cloud.get(cloud.v2(f"/pages/{pid}/attachments")))
    assert body["results"] == []


# -- properties -------------------------------------------------------------------------------


def _property_crud(cloud, base):
    body = check(cloud.get(base))
    assert body["results"] == []
    created = check(cloud.post(base, json={"key": "fs.meta", "value": {"n": 1}}))
    assert created["key"] == "fs.meta" and created["value"] == {"n": 1} and created["version"]["number"] == 1
    pid = created["id"]
    assert re.match(r"^\d+$", pid), f"v2 property ids are numeric strings: {pid!r}"
    got = check(cloud.get(f"{base}/{pid}"))
    assert got["value"] == {"n": 1}
    filtered = check(cloud.get(base, params={"key": "fs.meta"}))
    assert [p["id"] for p in filtered["results"]] == [pid]
    upd = check(cloud.put(f"{base}/{pid}", json={"key": "fs.meta", "value": [1, 2], "version": {"number": 2, "message": ""}}))
    assert upd["value"] == [1, 2] and upd["version"]["number"] == 2
    # Not incremented by one: the spec documents no 409 for v2, the real site rejects it.
    r = cloud.put(f"{base}/{pid}", json={"key": "fs.meta", "value": "stale", "version": {"number": 2}})
    assert r.status_code in (400, 409), r.status_code
    check_v2_error(r)
    r = cloud.post(base, json={"key": "fs.meta", "value": "dup"})
    assert r.status_code in (400, 409), f"duplicate key: {r.status_code}"
    check_v2_error(r)
    check(cloud.delete(f"{base}/{pid}"), 204)
    check(cloud.get(f"{base}/{pid}"), 404)


def test_page_properties(cloud):
    pid = create_page(cloud, "ENG", unique("V2 props"))["id"]
    _property_crud(cloud, cloud.v2(f"/pages/{pid}/properties"))


def test_attachment_properties(cloud):
    pid = create_page(cloud, "ENG", unique("V2 att props"))["id"]
    att = upload(cloud, pid, "p.txt", b"p")["results"][0]
    _property_crud(cloud, cloud.v2(f"/attachments/{att['id']}/properties"))


def test_blogpost_properties(cloud, ids):
    base = cloud.v2(f"/blogposts/{ids['blog']}/properties")
    created = check(cloud.post(base, json={"key": "blog.meta", "value": 1}))
    assert "blog.meta" in [p["key"] for p in check(cloud.get(base))["results"]]
    check(cloud.get(f"{base}/{created['id']}"))
    check(cloud.delete(f"{base}/{created['id']}"), 204)


def test_blogpost_property_update(cloud, ids):
    base = cloud.v2(f"/blogposts/{ids['blog']}/properties")
    created = check(cloud.post(base, json={"key": "blog.upd", "value": "a"}))
    upd = check(cloud.put(f"{base}/{created['id']}", json={"key": "blog.upd", "value": "b", "version": {"number": 2}}))
    assert upd["value"] == "b" and upd["version"]["number"] == 2
    check(cloud.delete(f"{base}/{created['id']}"), 204)


def test_blogpost_delete(cloud):
    """Make a blog post through v1, delete it through v2."""
    data = {"type": "blogpost", "title": unique("Blog"), "space": {"key": "ENG"}, "body": {"storage": {"value": "<p>b</p>", "representation": "storage"}}}
    post = check(cloud.post(cloud.v1("/content"), json=data))
    assert post["type"] == "blogpost"
    check(cloud.get(cloud.v2(f"/blogposts/{post['id']}")))
    check(cloud.delete(cloud.v2(f"/blogposts/{post['id']}")), 204)
    check(cloud.get(cloud.v2(f"/blogposts/{post['id']}")), 404)


def test_v1_v2_property_same_store(cloud):
    """A property written through v1 is the same object v2 lists (one content-property store)."""
    pid = create_page(cloud, "ENG", unique("Prop store"))["id"]
    check(cloud.post(cloud.v1(f"/content/{pid}/property"), json={"key": "shared", "value": "x"}))
    body = check(cloud.get(cloud.v2(f"/pages/{pid}/properties")))
    assert [(p["key"], p["value"]) for p in body["results"]] == [("shared", "x")]
