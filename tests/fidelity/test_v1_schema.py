"""v1 REST routes on both flavors: every body validated against the v1 OpenAPI document."""

from __future__ import annotations

import pytest

from conftest import DATA_BIN, NOTES
from harness import assert_attachment_id, check, parse_timestamp, validate_against
from util import (
    XSRF,
    attachment_by_name,
    attachments,
    blog_id,
    create_page,
    fetch_attachment_bytes,
    find_page,
    follow_v1,
    page_id,
    unique,
    upload,
)


# -- spaces -------------------------------------------------------------------


def test_space_list(srv):
    body = check(srv.get(srv.v1("/space")))
    keys = [s["key"] for s in body["results"]]
    assert {"DOCS", "ENG"} <= set(keys), keys
    assert keys == sorted(keys), f"spaces are sorted by key ascending (docs/CONFLUENCE.md §2.3): {keys}"
    assert body["start"] == 0 and body["size"] == len(body["results"])
    assert "next" not in body["_links"], "no next when everything fits"
    for s in body["results"]:
        assert isinstance(s["id"], int), f"v1 space.id is a number (docs/CONFLUENCE.md §0): {s['id']!r}"


def test_space_list_paging(srv):
    results, pages = follow_v1(srv, srv.v1("/space"), params={"limit": 1})
    assert len(pages) >= 2
    assert all(len(p["results"]) == 1 for p in pages)
    assert "next" not in pages[-1]["_links"]
    full = check(srv.get(srv.v1("/space")))
    assert [s["key"] for s in results] == [s["key"] for s in full["results"]]


def test_space_get(srv):
    body = check(srv.get(srv.v1("/space/DOCS")))
    assert body["key"] == "DOCS"


def test_space_get_missing(srv):
    check(srv.get(srv.v1("/space/NOSUCHSPACE")), 404)


def test_space_content(srv):
    body = check(srv.get(srv.v1("/space/DOCS/content")))
    assert set(body) >= {"page", "blogpost"}
    titles = [c["title"] for c in body["page"]["results"]]
    assert "DOCS Home" in titles and "Guide" in titles, titles
    assert all(c["type"] == "page" for c in body["page"]["results"])
    assert [c["type"] for c in body["blogpost"]["results"]] == ["blogpost"]
    ids = [int(c["id"]) for c in body["page"]["results"]]
    assert ids == sorted(ids), "space content is ordered by content id (docs/CONFLUENCE.md §2.4)"


@pytest.mark.parametrize("type_", ["page", "blogpost"])
def test_space_content_by_type(srv, type_):
    body = check(srv.get(srv.v1(f"/space/DOCS/content/{type_}")))
    assert body["results"] and all(c["type"] == type_ for c in body["results"])


def test_space_content_depth_root(srv):
    body = check(srv.get(srv.v1("/space/DOCS/content/page"), params={"depth": "root"}))
    assert [c["title"] for c in body["results"]] == ["DOCS Home"]


# -- content ------------------------------------------------------------------


def test_content_lookup_by_title(srv):
    page = find_page(srv, "DOCS", "Guide")
    assert page["type"] == "page" and page["title"] == "Guide"
    assert page["id"].isdigit()


def test_content_lookup_no_match(srv):
    body = check(srv.get(srv.v1("/content"), params={"spaceKey": "DOCS", "title": "No such page", "type": "page"}))
    assert body["results"] == [] and body["size"] == 0


def test_content_lookup_blogpost(srv):
    body = check(srv.get(srv.v1("/content"), params={"spaceKey": "DOCS", "type": "blogpost"}))
    assert [c["title"] for c in body["results"]] == ["Launch Notes"]


def test_content_get_page_expanded(srv):
    pid = page_id(srv, "DOCS", "Chapter One")
    body = check(srv.get(srv.v1(f"/content/{pid}"), params={"expand": "version,space,ancestors,body.storage,history,container"}))
    assert body["id"] == pid and body["type"] == "page" and body["status"] == "current"
    assert [a["title"] for a in body["ancestors"]] == ["DOCS Home", "Guide"]
    assert body["space"]["key"] == "DOCS"
    parse_timestamp(body["version"]["when"], srv, "version.when")
    assert body["version"]["number"] >= 1


def test_content_get_blogpost(srv):
    bid = blog_id(srv)
    body = check(srv.get(srv.v1(f"/content/{bid}"), params={"expand": "version,space"}))
    assert body["type"] == "blogpost"


def test_content_get_attachment(srv):
    pid = page_id(srv, "DOCS", "Guide")
    att = attachment_by_name(srv, pid, "notes.txt")
    body = check(srv.get(srv.v1(f"/content/{att['id']}"), params={"expand": "version,container"}))
    assert body["type"] == "attachment" and body["id"] == att["id"]


def test_content_get_missing(srv):
    body = check(srv.get(srv.v1("/content/999999999")), 404)
    assert body["statusCode"] == 404


def test_content_create_update_delete(srv):
    parent = page_id(srv, "ENG", "Scratch")
    title = unique("Created")
    page = create_page(srv, "ENG", title, parent=parent)
    assert page["title"] == title and page["type"] == "page" and page["id"].isdigit()
    assert page["version"]["number"] == 1
    got = check(srv.get(srv.v1(f"/content/{page['id']}"), params={"expand": "ancestors"}))
    assert got["ancestors"][-1]["id"] == parent

    upd = {
        "type": "page",
        "title": title + " v2",
        "version": {"number": 2},
        "body": {"storage": {"value": "<p>v2</p>", "representation": "storage"}},
    }
    body = check(srv.put(srv.v1(f"/content/{page['id']}"), json=upd))
    assert body["title"] == title + " v2" and body["version"]["number"] == 2

    # Stale version -> 409 (spec: "Returned if ... version ... does not match")
    upd["version"]["number"] = 2
    check(srv.put(srv.v1(f"/content/{page['id']}"), json=upd), 409)

    # ?version=1 returns the historical version (spec: `version` query parameter)
    old = check(srv.get(srv.v1(f"/content/{page['id']}"), params={"version": 1, "expand": "version"}))
    assert old["version"]["number"] == 1 and old["title"] == title
    body = check(srv.get(srv.v1(f"/content/{page['id']}"), params={"expand": "body.storage,version"}))
    assert body["body"]["storage"]["value"] == "<p>v2</p>" and body["body"]["storage"]["representation"] == "storage"

    r = srv.delete(srv.v1(f"/content/{page['id']}"))
    check(r, 204)
    # Trashed: the default status filter is `current`, so a plain GET is 404 (spec)
    check(srv.get(srv.v1(f"/content/{page['id']}")), 404)
    trashed = check(srv.get(srv.v1(f"/content/{page['id']}"), params={"status": "trashed"}))
    assert trashed["status"] == "trashed"
    # A trashed page can be purged with status=trashed.
    r = srv.delete(srv.v1(f"/content/{page['id']}"), params={"status": "trashed"})
    check(r, 204)
    check(srv.get(srv.v1(f"/content/{page['id']}")), 404)


def test_content_title_with_slash(srv):
    """Page titles may contain '/' (docs/CONFLUENCE.md §5.7); lookups by title find them."""
    title = unique("Strategy & Insights [2018/04]")
    made = create_page(srv, "ENG", title)
    assert find_page(srv, "ENG", title)["id"] == made["id"]


def test_content_move_via_ancestors(srv):
    """PUT /content/{id} with `ancestors` moves a page (ContentUpdate.ancestors)."""
    a = create_page(srv, "ENG", unique("Move A"))
    b = create_page(srv, "ENG", unique("Move B"))
    child = create_page(srv, "ENG", unique("Move child"), parent=a["id"])
    upd = {"type": "page", "title": child["title"], "version": {"number": 2}, "ancestors": [{"id": b["id"]}]}
    moved = check(srv.put(srv.v1(f"/content/{child['id']}"), json=upd))
    assert moved["version"]["number"] == 2
    got = check(srv.get(srv.v1(f"/content/{child['id']}"), params={"expand": "ancestors"}))
    assert got["ancestors"][-1]["id"] == b["id"]
    assert [c["id"] for c in check(srv.get(srv.v1(f"/content/{b['id']}/child/page")))["results"]] == [child["id"]]
    assert check(srv.get(srv.v1(f"/content/{a['id']}/child/page")))["results"] == []
    if srv.flavor == "cloud":
        assert check(srv.get(srv.v2(f"/pages/{child['id']}")))["parentId"] == b["id"]
    # Under itself: refused
    upd = {"type": "page", "title": b["title"], "version": {"number": 2}, "ancestors": [{"id": child["id"]}]}
    check(srv.put(srv.v1(f"/content/{b['id']}"), json=upd), 400)


def test_content_create_duplicate_title(srv):
    title = unique("Dup")
    create_page(srv, "ENG", title)
    body = create_page(srv, "ENG", title, expect=400)
    assert "title" in body["message"].lower()


def test_content_delete_missing(srv):
    check(srv.delete(srv.v1("/content/999999999")), 404)


# -- children -----------------------------------------------------------------


def test_child_pages(srv):
    gid = page_id(srv, "DOCS", "Guide")
    body = check(srv.get(srv.v1(f"/content/{gid}/child/page")))
    titles = [c["title"] for c in body["results"]]
    assert sorted(titles) == ["Chapter One", "Chapter Three", "Chapter Two"], titles
    assert "next" not in body["_links"]


def test_child_pages_paging(srv):
    gid = page_id(srv, "DOCS", "Guide")
    results, pages = follow_v1(srv, srv.v1(f"/content/{gid}/child/page"), params={"limit": 1})
    assert len(pages) == 3 and len(results) == 3
    assert len({c["id"] for c in results}) == 3
    for p in pages[:-1]:
        assert "next" in p["_links"]
    assert "next" not in pages[-1]["_links"]


def test_no_next_on_exact_fit(srv):
    """`next` only when more remain: a page that ends exactly at the last row has none."""
    gid = page_id(srv, "DOCS", "Guide")
    body = check(srv.get(srv.v1(f"/content/{gid}/child/page"), params={"limit": 3}))
    assert len(body["results"]) == 3 and "next" not in body["_links"]
    body = check(srv.get(srv.v1(f"/content/{gid}/child/attachment"), params={"limit": 2, "start": 1}))
    assert len(body["results"]) == 2 and "next" not in body["_links"]
    body = check(srv.get(srv.v1(f"/content/{gid}/child/page"), params={"limit": 2}))
    assert "next" in body["_links"]
    if srv.flavor == "cloud":
        from util import link_header_next

        r = srv.get(srv.v2(f"/pages/{gid}/children"), params={"limit": 3})
        body = check(r)
        assert len(body["results"]) == 3 and "next" not in body["_links"] and link_header_next(r) is None
        r = srv.get(srv.v2(f"/pages/{gid}/attachments"), params={"limit": 3})
        body = check(r)
        assert len(body["results"]) == 3 and "next" not in body["_links"] and link_header_next(r) is None


def test_child_pages_missing_parent(srv):
    check(srv.get(srv.v1("/content/999999999/child/page")), 404)


def test_child_attachments(srv):
    gid = page_id(srv, "DOCS", "Guide")
    body = attachments(srv, gid)
    names = sorted(a["title"] for a in body["results"])
    assert names == ["data.bin", "diagram.png", "notes.txt"], names
    for a in body["results"]:
        assert a["type"] == "attachment"
        assert_attachment_id(srv, a["id"])
        assert isinstance(a["extensions"]["fileSize"], int)
        assert "mediaType" in a["extensions"]
        assert "download" in a["_links"]
        if "version" in a:
            parse_timestamp(a["version"]["when"], srv, "version.when")
    assert body["_links"].get("context") == srv.context
    assert body["_links"].get("base") == srv.base


def test_child_attachments_filters(srv):
    gid = page_id(srv, "DOCS", "Guide")
    body = attachments(srv, gid, filename="notes.txt")
    assert [a["title"] for a in body["results"]] == ["notes.txt"]
    body = attachments(srv, gid, filename="nope.txt")
    assert body["results"] == [] and body["size"] == 0
    body = attachments(srv, gid, mediaType="image/png")
    assert [a["title"] for a in body["results"]] == ["diagram.png"]


@pytest.mark.parametrize(
    "route,default",
    [("/space", 25), ("/content/{guide}/child/attachment", 25), ("/content/{guide}/child/page", 25), ("/content/{guide}/property", 10)],
)
def test_default_limits(srv, route, default):
    """v1 defaults: 25 for attachments, children, spaces; 10 for properties (docs/CONFLUENCE.md §5.4, 2.2)."""
    gid = page_id(srv, "DOCS", "Guide")
    body = check(srv.get(srv.v1(route.format(guide=gid))))
    assert body["limit"] == default and body["start"] == 0


def test_child_attachments_paging(srv):
    gid = page_id(srv, "DOCS", "Guide")
    first = check(srv.get(srv.v1(f"/content/{gid}/child/attachment"), params={"limit": 2, "start": 1}))
    assert first["limit"] == 2 and first["start"] == 1 and first["size"] == 2, "start/limit echo the request"
    assert "next" not in first["_links"], "start=1 limit=2 of 3 reaches the end"
    results, pages = follow_v1(srv, srv.v1(f"/content/{gid}/child/attachment"), params={"limit": 1})
    assert len(results) == 3 and len(pages) == 3
    assert "next" in pages[0]["_links"] and "next" not in pages[-1]["_links"]
    assert sorted(a["title"] for a in results) == ["data.bin", "diagram.png", "notes.txt"]


def test_next_links_keep_filters(srv):
    """Following `next` keeps the query's filters and expansions (v1 offsets; v2 cursors on Cloud)."""
    pid = _fresh_page(srv)
    files = [("file", (f"t{i}.txt", b"t", "text/plain")) for i in range(3)]
    files += [("file", (f"p{i}.png", b"p", "image/png")) for i in range(3)]
    check(srv.post(srv.v1(f"/content/{pid}/child/attachment"), files=files, data={"minorEdit": "true"}, headers=XSRF))
    results, pages = follow_v1(srv, srv.v1(f"/content/{pid}/child/attachment"), params={"mediaType": "image/png", "limit": 1, "expand": "version"})
    assert sorted(a["title"] for a in results) == ["p0.png", "p1.png", "p2.png"] and len(pages) == 3
    assert all("version" in a for a in results), "expand survives next links"
    if srv.flavor == "cloud":
        from util import follow_v2

        results, pages = follow_v2(srv, srv.v2(f"/pages/{pid}/attachments"), params={"mediaType": "image/png", "limit": 1})
        assert sorted(a["title"] for a in results) == ["p0.png", "p1.png", "p2.png"] and len(pages) == 3


def test_child_attachments_missing_parent(srv):
    check(srv.get(srv.v1("/content/999999999/child/attachment")), 404)


def test_file_size_matches_download(srv):
    gid = page_id(srv, "DOCS", "Guide")
    att = attachment_by_name(srv, gid, "data.bin")
    assert att["extensions"]["fileSize"] == len(DATA_BIN)
    assert fetch_attachment_bytes(srv, gid, att) == DATA_BIN


# -- uploads ------------------------------------------------------------------


def _fresh_page(srv):
    return create_page(srv, "ENG", unique("Uploads"))["id"]


def test_upload_post(srv):
    pid = _fresh_page(srv)
    body = upload(srv, pid, "hello.txt", b"hello", comment="first")
    assert body["size"] == 1 and len(body["results"]) == 1
    att = body["results"][0]
    assert_attachment_id(srv, att["id"])
    assert att["title"] == "hello.txt" and att["type"] == "attachment"
    assert att["extensions"]["fileSize"] == 5
    assert att["version"]["number"] == 1
    assert "base" in body["_links"] and "context" in body["_links"]
    if srv.flavor == "cloud":
        # The real upload response carries no start/limit (docs/CONFLUENCE.md §1.2, T2C capture).
        assert "start" not in body and "limit" not in body, sorted(body)


def test_upload_large_file(srv):
    pid = _fresh_page(srv)
    data = bytes(range(256)) * (3 * 4096)  # 3 MiB
    att = upload(srv, pid, "large.bin", data)["results"][0]
    assert att["extensions"]["fileSize"] == len(data)
    listed = attachment_by_name(srv, pid, "large.bin", expand="version")
    assert fetch_attachment_bytes(srv, pid, listed) == data


def test_upload_post_several_files(srv):
    pid = _fresh_page(srv)
    files = [("file", ("a.txt", b"a", "text/plain")), ("file", ("b.txt", b"bb", "text/plain"))]
    files += [("comment", (None, b"ca", "text/plain; charset=utf-8")), ("comment", (None, b"cb", "text/plain; charset=utf-8"))]
    r = srv.post(srv.v1(f"/content/{pid}/child/attachment"), files=files, data={"minorEdit": "true"}, headers=XSRF)
    body = check(r)
    assert [a["title"] for a in body["results"]] == ["a.txt", "b.txt"]
    assert [a["metadata"]["comment"] for a in body["results"]] == ["ca", "cb"]


def test_upload_post_duplicate_400(srv):
    pid = _fresh_page(srv)
    upload(srv, pid, "dup.png", b"one")
    r = upload(srv, pid, "dup.png", b"two", expect=None)
    body = check(r, 400)
    prefix = (
        "com.atlassian.confluence.api.service.exceptions.BadRequestException: "
        "Cannot add a new attachment with same file name as an existing attachment: dup.png"
    )
    msg = body["message"]
    assert msg == prefix or (srv.flavor == "cloud" and msg.startswith(prefix + ". Log referral number is ")), msg


def test_upload_put_upsert(srv):
    pid = _fresh_page(srv)
    if srv.flavor == "dc":
        upload(srv, pid, "u.txt", b"one")
        r = upload(srv, pid, "u.txt", b"two", method="PUT", expect=None)
        assert r.status_code == 405, f"DC: PUT on child/attachment is 405 (docs/CONFLUENCE.md §1.3), got {r.status_code}"
        return
    first = upload(srv, pid, "u.txt", b"one", method="PUT")["results"][0]
    assert first["version"]["number"] == 1
    second = upload(srv, pid, "u.txt", b"two!", method="PUT")["results"][0]
    assert second["id"] == first["id"]
    assert second["version"]["number"] == 2
    assert second["extensions"]["fileSize"] == 4
    assert len(attachments(srv, pid)["results"]) == 1


def test_upload_new_version_data(srv):
    pid = _fresh_page(srv)
    att = upload(srv, pid, "v.txt", b"v1")["results"][0]
    files = [("file", ("v.txt", b"version two", "text/plain"))]
    r = srv.post(srv.v1(f"/content/{pid}/child/attachment/{att['id']}/data"), files=files, data={"minorEdit": "true"}, headers=XSRF)
    body = check(r)
    assert "results" not in body, "/data returns a single Content, not an array (docs/CONFLUENCE.md §1.4)"
    assert body["id"] == att["id"] and body["version"]["number"] == 2
    assert body["extensions"]["fileSize"] == len(b"version two")


def test_upload_data_unknown_attachment(srv):
    pid = _fresh_page(srv)
    bogus = "att999999999" if srv.flavor == "cloud" else "999999999"
    files = [("file", ("x.txt", b"x", "text/plain"))]
    r = srv.post(srv.v1(f"/content/{pid}/child/attachment/{bogus}/data"), files=files, data={"minorEdit": "true"}, headers=XSRF)
    check(r, (400, 404))


def test_upload_missing_page(srv):
    r = upload(srv, "999999999", "x.txt", b"x", expect=None)
    check(r, 404)


def test_attachment_properties_update(srv):
    pid = _fresh_page(srv)
    att = upload(srv, pid, "old-name.txt", b"data")["results"][0]
    body = {"id": att["id"], "type": "attachment", "version": {"number": att["version"]["number"]}, "title": "new-name.txt"}
    out = check(srv.put(srv.v1(f"/content/{pid}/child/attachment/{att['id']}"), json=body))
    assert out["title"] == "new-name.txt" and out["id"] == att["id"]
    names = [a["title"] for a in attachments(srv, pid)["results"]]
    assert names == ["new-name.txt"]
    # A version that does not match the stored one -> 409 (docs/CONFLUENCE.md §1.5)
    body["version"]["number"] = out["version"]["number"] + 5
    check(srv.put(srv.v1(f"/content/{pid}/child/attachment/{att['id']}"), json=body), 409)


def test_attachment_move_to_other_page(srv):
    """`container` in the properties update moves the attachment (docs/CONFLUENCE.md §1.5)."""
    src = _fresh_page(srv)
    dst = _fresh_page(srv)
    att = upload(srv, src, "move-me.txt", b"moving")["results"][0]
    body = {
        "id": att["id"],
        "type": "attachment",
        "version": {"number": att["version"]["number"]},
        "title": "moved.txt",
        "container": {"id": dst, "type": "page"},
    }
    out = check(srv.put(srv.v1(f"/content/{src}/child/attachment/{att['id']}"), json=body))
    assert out["id"] == att["id"] and out["title"] == "moved.txt"
    assert attachments(srv, src)["results"] == []
    moved = attachment_by_name(srv, dst, "moved.txt", expand="version,container")
    assert moved["id"] == att["id"] and moved["container"]["id"] == dst
    assert fetch_attachment_bytes(srv, dst, moved) == b"moving"


def test_attachment_properties_update_media_type(srv):
    pid = _fresh_page(srv)
    att = upload(srv, pid, "m.bin", b"data")["results"][0]
    body = {
        "id": att["id"],
        "type": "attachment",
        "version": {"number": att["version"]["number"]},
        "metadata": {"mediaType": "text/csv"},
    }
    out = check(srv.put(srv.v1(f"/content/{pid}/child/attachment/{att['id']}"), json=body))
    assert out["metadata"]["mediaType"] == "text/csv" or out["extensions"]["mediaType"] == "text/csv"


def test_attachment_version_author(srv):
    gid = page_id(srv, "DOCS", "Guide")
    att = attachment_by_name(srv, gid, "notes.txt", expand="version")
    by = att["version"]["by"]
    if srv.flavor == "cloud":
        assert by.get("accountId") and by.get("type") == "known", by
    else:
        assert by.get("username") and by.get("userKey"), f"DC version.by carries username and userKey (docs/CONFLUENCE.md §4.1): {by}"


def test_attachment_delete(srv):
    pid = _fresh_page(srv)
    att = upload(srv, pid, "gone.txt", b"bye")["results"][0]
    check(srv.delete(srv.v1(f"/content/{att['id']}")), 204)
    assert attachments(srv, pid)["results"] == []


# -- content properties ---------------------------------------------------------


def test_content_properties_crud(srv):
    pid = _fresh_page(srv)
    base = srv.v1(f"/content/{pid}/property")
    body = check(srv.get(base))
    assert body["results"] == []
    created = check(srv.post(base, json={"key": "fs.meta", "value": {"a": 1}}))
    assert created["key"] == "fs.meta" and created["value"] == {"a": 1}
    assert created["version"]["number"] == 1
    # duplicate key -> 400
    check(srv.post(base, json={"key": "fs.meta", "value": 2}), 400)
    got = check(srv.get(base + "/fs.meta"))
    assert got["value"] == {"a": 1}
    listed = check(srv.get(base))
    assert [p["key"] for p in listed["results"]] == ["fs.meta"]
    # PUT: version must be current+1
    upd = check(srv.put(base + "/fs.meta", json={"value": ["x", "y"], "version": {"number": 2}}))
    assert upd["value"] == ["x", "y"] and upd["version"]["number"] == 2
    check(srv.put(base + "/fs.meta", json={"value": "stale", "version": {"number": 2}}), 409)
    check(srv.put(base + "/fs.meta", json={"value": "skip", "version": {"number": 9}}), 409)
    # PUT creates a missing key only with version 1; otherwise 404
    check(srv.put(base + "/fresh.key", json={"value": True, "version": {"number": 2}}), 404)
    made = check(srv.put(base + "/fresh.key", json={"value": True, "version": {"number": 1}}))
    assert made["key"] == "fresh.key" and made["value"] is True
    check(srv.delete(base + "/fs.meta"), 204)
    check(srv.get(base + "/fs.meta"), 404)
    check(srv.delete(base + "/fs.meta"), 404)


def test_content_property_empty_key(srv):
    pid = _fresh_page(srv)
    check(srv.post(srv.v1(f"/content/{pid}/property"), json={"key": "", "value": "x"}), 400)


def test_content_properties_paging(srv):
    pid = _fresh_page(srv)
    base = srv.v1(f"/content/{pid}/property")
    for i in range(3):
        check(srv.post(base, json={"key": f"k{i}", "value": str(i)}))
    results, pages = follow_v1(srv, base, params={"limit": 2})
    assert sorted(p["key"] for p in results) == ["k0", "k1", "k2"]
    assert len(pages) == 2 and "next" in pages[0]["_links"] and "next" not in pages[1]["_links"]


def test_content_properties_missing_page(srv):
    check(srv.get(srv.v1("/content/999999999/property")), 404)


# -- versions -------------------------------------------------------------------


def test_version_list_page(cloud):
    srv = cloud
    pid = _fresh_page(srv)
    r = srv.get(srv.v1(f"/content/{pid}"), params={"expand": "version"})
    cur = check(r)
    upd = {"type": "page", "title": cur["title"], "version": {"number": 2}, "body": {"storage": {"value": "<p>2</p>", "representation": "storage"}}}
    check(srv.put(srv.v1(f"/content/{pid}"), json=upd))
    body = check(srv.get(srv.v1(f"/content/{pid}/version")))
    nums = sorted(v["number"] for v in body["results"])
    assert nums == [1, 2]
    for v in body["results"]:
        parse_timestamp(v["when"], srv, "version.when")
    one = check(srv.get(srv.v1(f"/content/{pid}/version/1")))
    assert one["number"] == 1


def test_dc_versions_are_experimental(dc):
    """DC serves content versions under /rest/experimental (docs/CONFLUENCE.md §4.1, 6), not /rest/api."""
    pid = _fresh_page(dc)
    upd = {"type": "page", "title": unique("Exp"), "version": {"number": 2}, "body": {"storage": {"value": "<p>2</p>", "representation": "storage"}}}
    check(dc.put(dc.v1(f"/content/{pid}"), json=upd))
    r = dc.get(dc.base + f"/rest/experimental/content/{pid}/version")
    assert r.status_code == 200, r.status_code
    # Same data model as Cloud's documented /rest/api/content/{id}/version
    validate_against(r.json(), "GET", "/wiki/rest/api/content/1/version")
    assert sorted(v["number"] for v in r.json()["results"]) == [1, 2]
    r = dc.get(dc.base + f"/rest/experimental/content/{pid}/version/1")
    assert r.status_code == 200
    validate_against(r.json(), "GET", "/wiki/rest/api/content/1/version/1")
    assert dc.get(dc.v1(f"/content/{pid}/version")).status_code == 404


def test_content_children_map(srv):
    gid = page_id(srv, "DOCS", "Guide")
    body = check(srv.get(srv.v1(f"/content/{gid}/child"), params={"expand": "page,attachment"}))
    assert sorted(c["title"] for c in body["page"]["results"]) == ["Chapter One", "Chapter Three", "Chapter Two"]
    assert sorted(c["title"] for c in body["attachment"]["results"]) == ["data.bin", "diagram.png", "notes.txt"]


def test_content_history(srv):
    gid = page_id(srv, "DOCS", "Guide")
    body = check(srv.get(srv.v1(f"/content/{gid}/history")))
    assert body["latest"] is True
    parse_timestamp(body["createdDate"], srv, "createdDate")


def test_property_create_with_key_in_path(srv):
    pid = _fresh_page(srv)
    made = check(srv.post(srv.v1(f"/content/{pid}/property/path.key"), json={"value": {"k": "v"}}))
    assert made["key"] == "path.key" and made["value"] == {"k": "v"}
    check(srv.post(srv.v1(f"/content/{pid}/property/path.key"), json={"value": "again"}), 400)


def test_version_list_attachment(cloud):
    srv = cloud
    pid = _fresh_page(srv)
    att = upload(srv, pid, "hist.txt", b"1")["results"][0]
    files = [("file", ("hist.txt", b"22", "text/plain"))]
    check(srv.post(srv.v1(f"/content/{pid}/child/attachment/{att['id']}/data"), files=files, data={"minorEdit": "true"}, headers=XSRF))
    body = check(srv.get(srv.v1(f"/content/{att['id']}/version")))
    assert sorted(v["number"] for v in body["results"]) == [1, 2]


def test_version_delete(cloud):
    """Cloud: DELETE /content/{id}/version/{n} removes one historical version (APA delete_attachment_by_id)."""
    pid = _fresh_page(cloud)
    att = upload(cloud, pid, "vd.txt", b"1")["results"][0]
    files = [("file", ("vd.txt", b"22", "text/plain"))]
    check(cloud.post(cloud.v1(f"/content/{pid}/child/attachment/{att['id']}/data"), files=files, data={"minorEdit": "true"}, headers=XSRF))
    check(cloud.delete(cloud.v1(f"/content/{att['id']}/version/1")), 204)
    body = check(cloud.get(cloud.v1(f"/content/{att['id']}/version")))
    assert [v["number"] for v in body["results"]] == [2]


# -- search ---------------------------------------------------------------------


def test_content_search(srv):
    body = check(srv.get(srv.v1("/content/search"), params={"cql": 'type=page AND space=DOCS AND title="Guide"'}))
    assert [c["title"] for c in body["results"]] == ["Guide"]


def test_search(srv):
    body = check(srv.get(srv.v1("/search"), params={"cql": 'type=page AND space="DOCS"'}))
    titles = {r["title"] for r in body["results"]}
    assert {"DOCS Home", "Guide", "Chapter One", "Reference"} <= titles, titles
    for r in body["results"]:
        assert r["content"]["type"] == "page"
    assert body["totalSize"] >= len(body["results"])


def test_search_invalid_cql(srv):
    check(srv.get(srv.v1("/search"), params={"cql": "type = = ("}), 400)


# -- user -----------------------------------------------------------------------


def test_user_current(srv):
    body = check(srv.get(srv.v1("/user/current")))
    if srv.flavor == "cloud":
        assert body.get("accountId"), body
    else:
        assert body.get("username") or body.get("userKey"), body


def test_notes_size(srv):
    gid = page_id(srv, "DOCS", "Guide")
    att = attachment_by_name(srv, gid, "notes.txt")
    assert att["extensions"]["fileSize"] == len(NOTES)
    assert fetch_attachment_bytes(srv, gid, att) == NOTES
