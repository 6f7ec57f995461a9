"""atlassian-python-api (a real third-party client) against both flavors.

Client classes used (atlassian-python-api 5.0.x):
- DC: ``atlassian.Confluence(base, cloud=False)`` (the facade picks its v1 Server
  implementation), with basic auth and with a bearer token.
- Cloud v1: ``atlassian.ConfluenceServer(base, cloud=True)``.  In 5.0.x,
  ``Confluence(url, cloud=True)`` returns a hybrid class whose relative paths are
  neither v1 nor v2 (``/wiki/spaces``, ``/wiki/content``) and that has no
  attachment or property methods; ``ConfluenceServer`` with ``cloud=True`` is the
  library's classic v1 client with its Cloud switches on (REST ``/download``,
  ``rest/api/content/{id}/version/{n}`` for version deletes).
- Cloud v2: ``atlassian.ConfluenceV2(base)``.
The base URL is the one the server prints (it already contains /wiki on Cloud).
"""

from __future__ import annotations

import io
import warnings

import pytest
from atlassian import Confluence, ConfluenceServer, ConfluenceV2

from conftest import DATA_BIN, NOTES
from harness import assert_attachment_id, check
from server import TOKEN, USER
from util import page_id, unique

warnings.filterwarnings("ignore", category=DeprecationWarning)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def v1_client(srv, token=False, **kw):
    if srv.flavor == "dc":
        if token:
            return Confluence(srv.base, token=TOKEN, cloud=False, **kw)
        return Confluence(srv.base, username=USER, password=TOKEN, cloud=False, **kw)
    return ConfluenceServer(srv.base, username=USER, password=TOKEN, cloud=True, **kw)


@pytest.fixture(params=["basic", "token"])
def auth_mode(request):
    return request.param


def _client(srv, auth_mode):
    if auth_mode == "token" and srv.flavor == "cloud":
        pytest.skip("Cloud API tokens are sent as basic auth; bearer is a DC personal-access-token feature")
    return v1_client(srv, token=auth_mode == "token")


def test_apa_spaces(srv, auth_mode):
    c = _client(srv, auth_mode)
    body = c.get_all_spaces()
    keys = [s["key"] for s in body["results"]]
    assert {"DOCS", "ENG"} <= set(keys)


def test_apa_page_by_title_and_children(srv, auth_mode):
    c = _client(srv, auth_mode)
    body = c.get_page_by_title("DOCS", "Guide")
    (page,) = body["results"]
    assert page["title"] == "Guide"
    children = list(c.get_page_child_by_type(page["id"], type="page"))
    assert sorted(ch["title"] for ch in children) == ["Chapter One", "Chapter Three", "Chapter Two"]
    got = c.get_page_by_id(page["id"], expand="version,ancestors")
    assert got["id"] == page["id"] and got["ancestors"][0]["title"] == "DOCS Home"


def test_apa_follows_next_links_without_context_path(fresh):
    """APA 5.0.x joins a v1 `_links.next` (`/rest/api/...`, context-relative as on the real
    site, docs/CONFLUENCE.md §2.7) onto the bare host, dropping any context path (/wiki, /confluence).
    So its own paging works only on a DC server at the root context; there it must."""
    s = fresh("dc", context="")  # DC at the root context
    assert s.context == ""
    c = Confluence(s.base, username=USER, password=TOKEN, cloud=False)
    gid = c.get_page_by_title("DOCS", "Guide")["results"][0]["id"]
    one_by_one = list(c._get_paged(f"rest/api/content/{gid}/child/page", params={"limit": 1}))
    assert sorted(ch["title"] for ch in one_by_one) == ["Chapter One", "Chapter Three", "Chapter Two"]
    spaces = list(c._get_paged("rest/api/space", params={"limit": 1}))
    assert {"DOCS", "ENG"} <= {sp["key"] for sp in spaces}


def test_apa_create_page_and_remove(srv, auth_mode):
    c = _client(srv, auth_mode)
    parent = page_id(srv, "ENG", "Scratch")
    title = unique("APA page")
    created = c.create_page("ENG", title, "<p>from APA</p>", parent_id=parent)
    assert created["title"] == title and created["type"] == "page"
    assert c.get_page_by_title("ENG", title)["results"][0]["id"] == created["id"]
    assert [ch["id"] for ch in c.get_page_child_by_type(parent, type="page") if ch["title"] == title] == [created["id"]]
    status = c.remove_page(created["id"])
    assert status in (204, True) or getattr(status, "status_code", None) == 204, status
    assert c.get_page_by_title("ENG", title)["results"] == []


def test_apa_attachments_roundtrip(srv, auth_mode, tmp_path):
    c = _client(srv, auth_mode)
    pid = c.create_page("ENG", unique("APA attachments"), "<p>files</p>")["id"]

    f = tmp_path / "report.pdf"
    f.write_bytes(b"%PDF-1.4 apa\n")
    out = c.attach_file(str(f), page_id=pid, comment="via attach_file")
    att_pdf = out["results"][0]
    assert att_pdf["title"] == "report.pdf"
    assert_attachment_id(srv, att_pdf["id"])
    assert att_pdf["metadata"]["mediaType"] == "application/pdf"

    out = c.attach_content(DATA_BIN, "blob.bin", content_type="application/octet-stream", page_id=pid)
    att_bin = out["results"][0]
    assert att_bin["extensions"]["fileSize"] == len(DATA_BIN)

    listed = c.get_attachments_from_content(pid)
    assert sorted(a["title"] for a in listed["results"]) == ["blob.bin", "report.pdf"]
    only = c.get_attachments_from_content(pid, filename="blob.bin")
    assert [a["id"] for a in only["results"]] == [att_bin["id"]]

    files = c.download_attachments_from_page(pid, to_memory=True)
    assert set(files) == {"blob.bin", "report.pdf"}
    assert files["blob.bin"].getvalue() == DATA_BIN
    assert files["report.pdf"].getvalue() == b"%PDF-1.4 apa\n"

    one = c.download_attachments_from_page(pid, filename="report.pdf", to_memory=True)
    assert isinstance(one["report.pdf"], io.BytesIO)

    d = tmp_path / "dl"
    d.mkdir()
    summary = c.download_attachments_from_page(pid, path=str(d))
    assert summary["attachments_downloaded"] == 2
    assert (d / "blob.bin").read_bytes() == DATA_BIN


def test_apa_attachment_new_version(srv):
    """attach_content on an existing name: with api_version="1.0" the library posts to
    `/{attId}/data` (documented). Its default ("latest") sends a multipart PUT to
    `/rest/api/content/{attId}`, which no Atlassian document describes."""
    c = v1_client(srv, api_version="1.0") if srv.flavor == "cloud" else Confluence(srv.base, username=USER, password=TOKEN, cloud=False, api_version="1.0")
    plain = v1_client(srv)
    pid = plain.create_page("ENG", unique("APA versions"), "<p>v</p>")["id"]
    first = c.attach_content(b"one", "v.txt", content_type="text/plain", page_id=pid)["results"][0]
    second = c.attach_content(b"two!", "v.txt", content_type="text/plain", page_id=pid)
    second = second["results"][0] if "results" in second else second
    assert second["id"] == first["id"] and second["version"]["number"] == 2
    files = plain.download_attachments_from_page(pid, to_memory=True)
    assert files["v.txt"].getvalue() == b"two!"
    # get_attachment_history: Cloud rest/api/content/{id}/version, DC rest/experimental/...
    assert sorted(v["number"] for v in plain.get_attachment_history(first["id"])) == [1, 2]
    # delete_attachment_by_id drops one historical version (Cloud: rest/api/..., DC: rest/experimental/...)
    plain.delete_attachment_by_id(first["id"], 1)
    assert [v["number"] for v in plain.get_attachment_history(first["id"])] == [2]
    files = plain.download_attachments_from_page(pid, to_memory=True)
    assert files["v.txt"].getvalue() == b"two!"


def test_apa_default_reupload_is_refused(srv):
    """With its default api_version, APA 5.0.x re-uploads an existing name as a multipart PUT to
    /rest/api/content/{attId}: no Atlassian document describes that (PUT /content/{id} takes a JSON
    ContentUpdate), so the server must refuse it rather than silently accept it."""
    c = v1_client(srv)
    pid = c.create_page("ENG", unique("APA reupload"), "<p>r</p>")["id"]
    c.attach_content(b"one", "r.txt", content_type="text/plain", page_id=pid)
    with pytest.raises(Exception):
        c.attach_content(b"two", "r.txt", content_type="text/plain", page_id=pid)
    assert c.download_attachments_from_page(pid, to_memory=True)["r.txt"].getvalue() == b"one"


def test_apa_page_properties(srv, auth_mode):
    c = _client(srv, auth_mode)
    pid = c.create_page("ENG", unique("APA props"), "<p>p</p>")["id"]
    created = c.set_page_property(pid, {"key": "fs.sha", "value": {"sha": "abc"}})
    assert created["key"] == "fs.sha" and created["version"]["number"] == 1
    got = c.get_page_property(pid, "fs.sha")
    assert got["value"] == {"sha": "abc"}
    upd = c.update_page_property(pid, {"key": "fs.sha", "value": {"sha": "def"}, "version": {"number": 2, "minorEdit": True}})
    assert upd["value"] == {"sha": "def"} and upd["version"]["number"] == 2
    assert [p["key"] for p in c.get_page_properties(pid)] == ["fs.sha"]
    with pytest.raises(Exception) as e:
        c.update_page_property(pid, {"key": "fs.sha", "value": 1, "version": {"number": 2}})
    assert "409" in str(e.value) or "version" in str(e.value).lower() or type(e.value).__name__ == "ApiConflictError"
    c.delete_page_property(pid, "fs.sha")
    with pytest.raises(Exception):
        c.get_page_property(pid, "fs.sha")


def test_apa_cql(srv, auth_mode):
    c = _client(srv, auth_mode)
    res = c.cql('type=page AND space=DOCS AND title="Chapter One"')
    assert [r["content"]["title"] for r in res["results"]] == ["Chapter One"]
    res = c.cql("type=blogpost")
    assert [r["content"]["title"] for r in res["results"]] == ["Launch Notes"]


def test_apa_error_message_surfaces(srv):
    """APA's raise_for_status reads the v1 `message` field."""
    c = v1_client(srv)
    with pytest.raises(Exception) as e:
        c.get_page_by_id("999999999")
    assert "404" in str(e.value) or "not" in str(e.value).lower()
    pid = c.create_page("ENG", unique("APA dup"), "<p>d</p>")["id"]
    c.attach_content(NOTES, "n.txt", page_id=pid)
    r = srv.post(
        srv.v1(f"/content/{pid}/child/attachment"),
        files=[("file", ("n.txt", NOTES, "text/plain"))],
        data={"minorEdit": "true"},
        headers={"X-Atlassian-Token": "no-check"},
    )
    assert r.status_code == 400
    with pytest.raises(Exception) as e:
        c.raise_for_status(r)
    assert "Cannot add a new attachment with same file name" in str(e.value)


def test_apa_v2_cloud(cloud):
    c = ConfluenceV2(cloud.base, username=USER, password=TOKEN)
    spaces = c.get_spaces()
    spaces = spaces if isinstance(spaces, list) else list(spaces)
    assert {"DOCS", "ENG"} <= {s["key"] for s in spaces}
    docs = c.get_space_by_key("DOCS")
    assert docs["key"] == "DOCS"
    gid = page_id(cloud, "DOCS", "Guide")
    page = c.get_page_by_id(gid)
    assert page["title"] == "Guide"
    kids = c.get_child_pages(gid)
    kids = kids if isinstance(kids, list) else list(kids)
    assert sorted(k["title"] for k in kids) == ["Chapter One", "Chapter Three", "Chapter Two"]
    prop = c.create_page_property(gid, "apa.v2", {"x": 1})
    assert prop["key"] == "apa.v2" and prop["version"]["number"] == 1
    props = c.get_page_properties(gid)
    assert [(p["key"], p["value"]) for p in props] == [("apa.v2", {"x": 1})]
    # get/update/delete_page_property_by_key address v2 properties by *key*
    # (`api/v2/pages/{id}/properties/{key}`), but the v2 spec addresses them by
    # numeric property-id, so those library calls cannot work against Cloud.
    check(cloud.delete(cloud.v2(f"/pages/{gid}/properties/{prop['id']}")), 204)
