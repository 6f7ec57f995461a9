"""Helpers shared by the fidelity tests. All lookups go through the public API."""

from __future__ import annotations

import re
import uuid

from harness import check

XSRF = {"X-Atlassian-Token": "no-check"}


def unique(prefix="T"):
    return f"{prefix} {uuid.uuid4().hex[:10]}"


def find_page(srv, space, title, type_="page", validate=True):
    r = srv.get(srv.v1("/content"), params={"spaceKey": space, "title": title, "type": type_})
    body = check(r) if validate else r.json()
    assert body["size"] == len(body["results"])
    assert len(body["results"]) == 1, f"{type_} {title!r} in {space}: {len(body['results'])} results"
    return body["results"][0]


def page_id(srv, space, title, type_="page"):
    return find_page(srv, space, title, type_)["id"]


def blog_id(srv, space="DOCS"):
    r = srv.get(srv.v1(f"/space/{space}/content/blogpost"))
    body = check(r)
    assert body["results"], f"no blog post in {space}"
    return body["results"][0]["id"]


def create_page(srv, space, title, parent=None, body="<p>hello</p>", expect=200):
    data = {"type": "page", "title": title, "space": {"key": space}, "body": {"storage": {"value": body, "representation": "storage"}}}
    if parent:
        data["ancestors"] = [{"id": str(parent)}]
    r = srv.post(srv.v1("/content"), json=data)
    return check(r, expect)


def files_payload(name, data, ctype="application/octet-stream"):
    return [("file", (name, data, ctype))]


def upload(srv, page, name, data, method="POST", comment=None, headers=XSRF, expect=200, extra=None, params=None):
    files = files_payload(name, data)
    form = {"minorEdit": "true"}
    if comment is not None:
        files.append(("comment", (None, comment.encode("utf-8"), "text/plain; charset=utf-8")))
    if extra:
        form.update(extra)
    r = srv.request(method, srv.v1(f"/content/{page}/child/attachment"), files=files, data=form, headers=headers, params=params)
    return r if expect is None else check(r, expect)


def attachments(srv, page, **params):
    r = srv.get(srv.v1(f"/content/{page}/child/attachment"), params=params)
    return check(r)


def attachment_by_name(srv, page, name, **params):
    body = attachments(srv, page, filename=name, **params)
    assert len(body["results"]) == 1, f"attachment {name!r} on {page}: {body['results']}"
    return body["results"][0]


def follow_v1(srv, first_url, params=None, max_pages=50):
    """Follow v1 `_links.next` to the end; return all results and the pages' bodies."""
    r = srv.get(first_url, params=params)
    body = check(r)
    pages = [body]
    results = list(body["results"])
    while "next" in body.get("_links", {}):
        assert len(pages) < max_pages, "too many pages"
        nxt = body["_links"]["next"]
        assert nxt.startswith("/rest/api/"), f"v1 next link should be context-relative /rest/api/...: {nxt}"
        r = srv.get(srv.abs(nxt))
        body = check(r)
        pages.append(body)
        results.extend(body["results"])
    return results, pages


LINK_NEXT = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?')


def link_header_next(resp):
    m = LINK_NEXT.search(resp.headers.get("Link", ""))
    return m.group(1) if m else None


def follow_v2(srv, first_url, params=None, max_pages=50):
    r = srv.get(first_url, params=params)
    body = check(r)
    pages = [(r, body)]
    results = list(body["results"])
    while True:
        nxt = body.get("_links", {}).get("next")
        hdr = link_header_next(r)
        assert nxt == hdr or (nxt and hdr and srv.abs(hdr) == srv.abs(nxt)), f"Link header next {hdr!r} != _links.next {nxt!r}"
        if not nxt:
            break
        assert nxt.startswith("/wiki/api/v2/"), f"v2 next should be site-relative with /wiki: {nxt}"
        assert len(pages) < max_pages
        r = srv.get(srv.root + nxt)
        body = check(r)
        pages.append((r, body))
        results.extend(body["results"])
    return results, pages


def space_id(srv, key):
    r = srv.get(srv.v1(f"/space/{key}"))
    return check(r)["id"]


def fetch_attachment_bytes(srv, page, att):
    """Download an attachment the way a client must on this flavor.

    Cloud: the REST `/download` route answers 302 to another origin; follow it
    without Authorization.  DC: `_links.download` (servlet path) with auth.
    """
    import requests

    if srv.flavor == "cloud":
        r = srv.get(srv.v1(f"/content/{page}/child/attachment/{att['id']}/download"))
        assert r.status_code == 302, f"cloud download: expected 302, got {r.status_code}: {r.text[:200]}"
        r2 = requests.get(r.headers["Location"], timeout=20, allow_redirects=False)
        assert r2.status_code == 200, f"media GET: {r2.status_code}: {r2.text[:200]}"
        return r2.content
    r = srv.get(srv.abs(att["_links"]["download"]))
    assert r.status_code == 200, f"DC servlet download {att['_links']['download']}: {r.status_code}: {r.text[:200]}"
    return r.content
