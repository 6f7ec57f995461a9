"""CQL filters on /rest/api/search and /rest/api/content/search, both flavors (docs/CONFLUENCE.md §2.6)."""

from __future__ import annotations

import re

import pytest

from harness import check, parse_timestamp
from util import page_id

DOCS_PAGES = {"DOCS Home", "Guide", "Chapter One", "Chapter Two", "Chapter Three", "Reference"}


def search_titles(srv, cql, route="/search", **params):
    r = srv.get(srv.v1(route), params={"cql": cql, "limit": 100, **params})
    body = check(r)
    if route == "/search":
        return [x["title"] for x in body["results"]], body
    return [x["title"] for x in body["results"]], body


@pytest.mark.parametrize("route", ["/search", "/content/search"])
def test_cql_type_and_space(srv, route):
    titles, _ = search_titles(srv, "type=page AND space=DOCS", route)
    assert set(titles) == DOCS_PAGES, titles


@pytest.mark.parametrize("route", ["/search", "/content/search"])
def test_cql_title_exact(srv, route):
    titles, _ = search_titles(srv, 'title="Chapter Two"', route)
    assert titles == ["Chapter Two"]


@pytest.mark.parametrize("route", ["/search", "/content/search"])
def test_cql_blogpost(srv, route):
    titles, _ = search_titles(srv, "type=blogpost", route)
    assert titles == ["Launch Notes"]


def test_cql_space_quoted_and_in(srv):
    titles, _ = search_titles(srv, 'type=page AND space="ENG"')
    assert "Runbook" in titles and not (set(titles) & DOCS_PAGES)
    titles, _ = search_titles(srv, "type=page AND space in (DOCS, ENG)")
    assert DOCS_PAGES <= set(titles) and "Runbook" in titles


def test_cql_parent(srv):
    gid = page_id(srv, "DOCS", "Guide")
    titles, _ = search_titles(srv, f"parent={gid}")
    assert set(titles) == {"Chapter One", "Chapter Two", "Chapter Three"}


def test_cql_ancestor(srv):
    hid = page_id(srv, "DOCS", "DOCS Home")
    titles, _ = search_titles(srv, f"type=page AND ancestor={hid}")
    assert set(titles) == DOCS_PAGES - {"DOCS Home"}


def test_cql_title_contains(srv):
    titles, _ = search_titles(srv, 'type=page AND title~"Chapter"')
    assert set(titles) == {"Chapter One", "Chapter Two", "Chapter Three"}


def test_cql_attachments(srv):
    gid = page_id(srv, "DOCS", "Guide")
    titles, _ = search_titles(srv, f"type=attachment AND container={gid}")
    assert set(titles) == {"notes.txt", "data.bin", "diagram.png"}


def test_search_result_fields(srv):
    _, body = search_titles(srv, 'type=page AND title="Guide"')
    (res,) = body["results"]
    assert res["content"]["id"] == page_id(srv, "DOCS", "Guide")
    assert res["entityType"] == "content"
    assert res["url"]
    assert body["cqlQuery"] == 'type=page AND title="Guide"'
    parse_timestamp(res["lastModified"], srv, "lastModified")
    # friendly* fields are human text ("just a moment ago", "Nov 23, 2021"; docs/CONFLUENCE.md §4.2: localised),
    # never a machine timestamp a client could come to rely on.
    assert not re.match(r"^\d{4}-\d\d-\d\dT", res["friendlyLastModified"]), res["friendlyLastModified"]


def test_cloud_search_next_is_cursor(cloud):
    """Cloud /search pages by cursor: `next` is `/rest/api/search?next=true&cursor=...` (docs/CONFLUENCE.md §2.6)."""
    body = check(cloud.get(cloud.v1("/search"), params={"cql": "type=page AND space=DOCS", "limit": 2}))
    assert "cursor=" in body["_links"]["next"], body["_links"]["next"]
    body = check(cloud.get(cloud.v1("/content/search"), params={"cql": "type=page AND space=DOCS", "limit": 2}))
    assert "cursor=" in body["_links"]["next"], body["_links"]["next"]


def test_cloud_search_ignores_start(cloud):
    """Cloud /search silently ignores `start`; only the cursor pages (docs/CONFLUENCE.md §2.6, verified live)."""
    cql = "type=page AND space=DOCS"
    a = check(cloud.get(cloud.v1("/search"), params={"cql": cql, "limit": 2, "start": 0}))
    b = check(cloud.get(cloud.v1("/search"), params={"cql": cql, "limit": 2, "start": 2}))
    assert [x["title"] for x in a["results"]] == [x["title"] for x in b["results"]]


def test_cloud_search_unknown_field(cloud):
    """An invalid CQL field -> 400 `No field exists with the name: 'status'` (docs/CONFLUENCE.md §2.6)."""
    body = check(cloud.get(cloud.v1("/search"), params={"cql": "status=current"}), 400)
    assert "No field exists with the name: 'status'" in body["message"], body


@pytest.mark.parametrize("route", ["/search", "/content/search"])
def test_cql_paging_follows_next(srv, route):
    """Follow `_links.next` to the end: same rows as one big page, no duplicates (docs/CONFLUENCE.md §2.6)."""
    cql = "type=page AND space=DOCS"
    first = srv.get(srv.v1(route), params={"cql": cql, "limit": 2})
    body = check(first)
    seen = [x["title"] for x in body["results"]]
    pages = 1
    while "next" in body["_links"]:
        nxt = body["_links"]["next"]
        assert nxt.startswith(f"/rest/api{route}?") or nxt.startswith("/rest/api/"), nxt
        body = check(srv.get(srv.abs(nxt)))
        seen += [x["title"] for x in body["results"]]
        pages += 1
        assert pages < 20
    assert pages >= 3
    assert sorted(seen) == sorted(DOCS_PAGES), seen


def test_cql_keywords_any_case(srv):
    """CQL keywords are case-insensitive (the client's own example: `type=attachment and title="report.pdf"`)."""
    titles, _ = search_titles(srv, 'type=attachment and title="notes.txt"', "/content/search")
    assert titles == ["notes.txt"]


@pytest.mark.parametrize(
    "cql,expected",
    [
        ('type=page AND (title="Guide" OR title="Reference")', {"Guide", "Reference"}),
        ('type=page and space=DOCS and not title="Guide"', DOCS_PAGES - {"Guide"}),
    ],
)
def test_cql_beyond_the_subset_is_right_or_refused(srv, cql, expected):
    """Real CQL has OR, NOT and parentheses. The server may implement a subset, but a query it does
    not understand must be refused with 400, never answered with the wrong rows."""
    r = srv.get(srv.v1("/search"), params={"cql": cql, "limit": 100})
    if r.status_code == 400:
        check(r, 400)
        return
    body = check(r)
    assert {x["title"] for x in body["results"]} == expected
