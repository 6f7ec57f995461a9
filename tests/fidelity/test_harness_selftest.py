"""The harness itself: real captured responses (shared/confluence-api/examples) validate,
and broken bodies do not. No server needed."""

from __future__ import annotations

import json

import pytest

import harness


def _schema(api, method, path, status=200):
    ops = harness.find_operations(api, method, path)
    assert ops, (api, method, path)
    key, schema = ops[0].json_schema(status)
    assert schema is not None
    return ops[0], schema


def _example(name):
    return json.loads((harness.spec_dir() / "examples" / name).read_text())


def test_path_matching_prefers_literals():
    (op,) = harness.find_operations("v1", "GET", "/wiki/rest/api/content/123/child/attachment")[:1]
    assert op.template == "/wiki/rest/api/content/{id}/child/attachment"
    op = harness.find_operations("v1", "GET", "/wiki/rest/api/content/123/child/page")[0]
    assert op.template == "/wiki/rest/api/content/{id}/child/{type}"
    op = harness.find_operations("v1", "GET", "/wiki/rest/api/content/search")[0]
    assert op.template == "/wiki/rest/api/content/search"
    op = harness.find_operations("v2", "GET", "/pages/5/direct-children")[0]
    assert op.template == "/pages/{id}/direct-children"
    assert harness.find_operations("v1", "GET", "/wiki/rest/api/nope/1") == []


def test_cloud_upload_capture_validates():
    _, schema = _schema("v1", "POST", "/wiki/rest/api/content/1/child/attachment")
    harness.validate_schema(_example("cloud-v1-attachment-upload-response.text2confl.json"), schema, "capture")


def test_dc_attachment_capture_validates():
    _, schema = _schema("v1", "GET", "/wiki/rest/api/content/1")
    body = _example("dc-v1-attachment.docs.nomagic.com.json")
    body = body["results"][0] if "results" in body else body
    harness.validate_schema(body, schema, "capture")


def test_v2_attachments_capture_validates():
    _, schema = _schema("v2", "GET", "/pages/1/attachments")
    harness.validate_schema(_example("cloud-v2-page-attachments.text2confl.json"), schema, "capture")


def test_broken_bodies_fail():
    _, schema = _schema("v1", "GET", "/wiki/rest/api/content/1/child/attachment")
    with pytest.raises(pytest.fail.Exception):
        harness.validate_schema({"results": []}, schema, "missing size/_links")
    with pytest.raises(pytest.fail.Exception):
        harness.validate_schema({"results": [{"type": "attachment"}], "size": 1, "_links": {}}, schema, "content without status")
    _, schema = _schema("v2", "GET", "/attachments/att1")
    with pytest.raises(pytest.fail.Exception):
        harness.validate_schema({"id": 5}, schema, "v2 id must be a string")


def test_nullable_translation():
    s = harness.oas30_to_jsonschema({"type": "string", "nullable": True, "enum": ["a"]})
    assert s == {"type": ["string", "null"], "enum": ["a", None]}
    s = harness.oas30_to_jsonschema({"allOf": [{"$ref": "#/x"}], "nullable": True})
    assert s == {"anyOf": [{"allOf": [{"$ref": "#/x"}]}, {"type": "null"}]}
    s = harness.oas30_to_jsonschema({"type": "object", "properties": {"nullable": {"type": "string"}}})
    assert s["properties"]["nullable"] == {"type": "string"}


def test_spec_location_env(monkeypatch, tmp_path):
    monkeypatch.setenv("CONFLUENCE_API_SPECS", str(tmp_path))
    with pytest.raises(pytest.fail.Exception) as e:
        harness.require_specs()
    assert "CONFLUENCE_API_SPECS" in str(e.value)
