"""Validate confluence-testserver responses against Atlassian's OpenAPI documents.

Nothing here knows how the test server is written: the only inputs are the
OpenAPI documents in shared/confluence-api (located through the environment
variable CONFLUENCE_API_SPECS) and the HTTP responses themselves.

The main entry point is :func:`check`, which takes a ``requests.Response``,
finds the spec operation for ``(method, path)``, picks the response schema for
the returned status, validates the JSON body and records the route as covered.
"""

from __future__ import annotations

import copy
import json
import os
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

REPO = Path(__file__).resolve().parents[2]

V1_SPECS = (
    "confluence-cloud-v1.swagger.v3.2023-08.json",
    # Fallback for operations the 2023 document no longer carries.
    "confluence-cloud-v1.swagger.v3.2021-11.json",
)
V2_SPECS = ("confluence-cloud-v2.openapi-v2.v3.2026-06.json",)

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def spec_dir() -> Path:
    return Path(os.environ.get("CONFLUENCE_API_SPECS") or REPO.parent / "shared" / "confluence-api")


def require_specs() -> Path:
    """Return the spec folder or fail (never skip) with a clear message."""
    d = spec_dir()
    missing = [n for n in V1_SPECS + V2_SPECS if not (d / n).is_file()]
    if missing:
        pytest.fail(
            "Atlassian OpenAPI documents not found: "
            + ", ".join(str(d / n) for n in missing)
            + ". Set CONFLUENCE_API_SPECS to the folder holding them "
            "(default <repo>/../shared/confluence-api).",
            pytrace=False,
        )
    return d


# ---------------------------------------------------------------------------
# OpenAPI 3.0 -> JSON Schema (draft 4) conversion
# ---------------------------------------------------------------------------

_DROP = {"discriminator", "example", "examples", "xml", "externalDocs", "deprecated", "readOnly", "writeOnly"}


def oas30_to_jsonschema(s):
    """Translate one OpenAPI 3.0 Schema Object into draft-4 JSON Schema.

    Handles ``nullable`` (type union / enum member / anyOf with null), drops
    writeOnly properties from ``required`` (they never appear in responses),
    and removes OpenAPI-only keywords.  Walks only schema-valued keywords, so a
    property *named* ``type`` or ``nullable`` is left alone.
    """
    if not isinstance(s, dict):
        return s
    if "$ref" in s:
        out = {"$ref": s["$ref"]}
        if s.get("nullable") is True:
            return {"anyOf": [out, {"type": "null"}]}
        return out
    out = {}
    for k, v in s.items():
        if k in _DROP or k.startswith("x-"):
            continue
        if k == "properties" and isinstance(v, dict):
            out[k] = {name: oas30_to_jsonschema(sub) for name, sub in v.items()}
        elif k in ("items", "not") or (k == "additionalProperties" and isinstance(v, dict)):
            out[k] = oas30_to_jsonschema(v)
        elif k in ("allOf", "anyOf", "oneOf") and isinstance(v, list):
            out[k] = [oas30_to_jsonschema(sub) for sub in v]
        elif k == "nullable":
            continue
        else:
            out[k] = copy.deepcopy(v)
    props = s.get("properties") or {}
    if "required" in out:
        req = [r for r in out["required"] if not (props.get(r) or {}).get("writeOnly")]
        if req:
            out["required"] = req
        else:
            del out["required"]
    if s.get("nullable") is True:
        if "type" in out:
            t = out["type"]
            out["type"] = (t if isinstance(t, list) else [t]) + ["null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = list(out["enum"]) + [None]
        else:
            return {"anyOf": [out, {"type": "null"}]}
    return out


def _rewrite_local_refs(node, uri):
    if isinstance(node, dict):
        return {
            k: (uri + v if k == "$ref" and isinstance(v, str) and v.startswith("#") else _rewrite_local_refs(v, uri))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_local_refs(x, uri) for x in node]
    return node


# ---------------------------------------------------------------------------
# Spec documents and path matching
# ---------------------------------------------------------------------------


@dataclass
class Operation:
    doc: "SpecDoc"
    template: str  # path as written in the spec
    method: str
    op: dict

    def response(self, status: int):
        rs = self.op.get("responses", {})
        for key in (str(status), f"{str(status)[0]}XX", "default"):
            if key in rs:
                r = rs[key]
                if "$ref" in r:
                    r = self.doc.resolve(r["$ref"])
                return key, r
        return None, None

    def json_schema(self, status: int):
        """Return (status-key, converted JSON schema or None)."""
        key, r = self.response(status)
        if r is None:
            return None, None
        for ctype, media in (r.get("content") or {}).items():
            if "json" in ctype and media.get("schema"):
                return key, _rewrite_local_refs(oas30_to_jsonschema(media["schema"]), self.doc.uri)
        return key, None


class SpecDoc:
    def __init__(self, path: Path, api: str):
        self.name = path.name
        self.api = api
        self.uri = "urn:confluence-spec:" + path.name
        raw = json.loads(path.read_text())
        self.raw = raw
        comps = raw.get("components", {})
        converted = {"components": {"schemas": {k: oas30_to_jsonschema(v) for k, v in comps.get("schemas", {}).items()}}}
        self.resource = Resource(contents=converted, specification=DRAFT4)
        self.templates = []
        for tpl, item in raw["paths"].items():
            segs = tpl.strip("/").split("/")
            self.templates.append((tpl, segs, item))

    def resolve(self, ref: str):
        node = self.raw
        for part in ref.lstrip("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def find(self, method: str, path: str) -> Operation | None:
        """Most specific template (most literal segments, earliest literals) with this method."""
        segs = path.strip("/").split("/")
        best = None
        for tpl, tsegs, item in self.templates:
            if len(tsegs) != len(segs) or method.lower() not in item:
                continue
            score = []
            ok = True
            for t, s in zip(tsegs, segs):
                if t.startswith("{") and t.endswith("}"):
                    if not s:
                        ok = False
                        break
                    score.append(0)
                elif t == s:
                    score.append(1)
                else:
                    ok = False
                    break
            if ok and (best is None or score > best[0]):
                best = (score, tpl, item)
        if best is None:
            return None
        return Operation(self, best[1], method.lower(), best[2][method.lower()])


@lru_cache(maxsize=None)
def specs():
    d = require_specs()
    docs = {"v1": [SpecDoc(d / n, "v1") for n in V1_SPECS], "v2": [SpecDoc(d / n, "v2") for n in V2_SPECS]}
    registry = Registry().with_resources([(doc.uri, doc.resource) for api in docs.values() for doc in api])
    return docs, registry


def find_operations(api: str, method: str, spec_path: str) -> list[Operation]:
    """All documents (newest first) that describe this operation."""
    docs, _ = specs()
    ops = []
    for doc in docs[api]:
        op = doc.find(method, spec_path)
        if op is not None:
            ops.append(op)
    return ops


def validate_schema(instance, schema, what: str):
    _, registry = specs()
    validator = jsonschema.Draft4Validator(schema, registry=registry)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for e in errors[:8]:
            loc = "/".join(str(p) for p in e.absolute_path) or "<root>"
            msg = e.message if len(e.message) < 300 else e.message[:300] + "…"
            lines.append(f"  at {loc}: {msg}")
            for sub in (e.context or [])[:3]:
                sloc = "/".join(str(p) for p in sub.absolute_path) or "<root>"
                lines.append(f"      (alternative) at {sloc}: {sub.message[:200]}")
        pytest.fail(f"{what}: body does not match the spec schema ({len(errors)} error(s)):\n" + "\n".join(lines), pytrace=False)


# ---------------------------------------------------------------------------
# Hand-written error shapes (the specs give no schema for error bodies;
# these come from docs/CONFLUENCE.md §2.8 and §3).
# ---------------------------------------------------------------------------

V1_ERROR = {
    "type": "object",
    "required": ["statusCode", "data", "message"],
    "properties": {
        "statusCode": {"type": "integer"},
        "message": {"type": "string", "minLength": 1},
        "data": {
            "type": "object",
            "required": ["authorized", "valid", "errors", "successful"],
            "properties": {
                "authorized": {"type": "boolean"},
                "valid": {"type": "boolean"},
                "successful": {"type": "boolean"},
                "errors": {"type": "array"},
            },
        },
    },
}

V2_ERROR = {
    "type": "object",
    "required": ["errors"],
    "properties": {
        "errors": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["status", "code", "title"],
                "properties": {
                    "status": {"type": "integer"},
                    "code": {"type": "string"},
                    "title": {"type": "string"},
                    "detail": {"type": ["string", "null"]},
                },
            },
        },
    },
}


def check_v1_error(resp, status=None):
    status = status or resp.status_code
    body = json_body(resp)
    validate_schema(body, V1_ERROR, f"v1 error {resp.request.method} {resp.url}")
    assert body["statusCode"] == status, f"statusCode {body['statusCode']} != HTTP {status}"
    return body


def check_v2_error(resp, status=None):
    status = status or resp.status_code
    body = json_body(resp)
    validate_schema(body, V2_ERROR, f"v2 error {resp.request.method} {resp.url}")
    assert body["errors"][0]["status"] == status, body
    return body


def json_body(resp):
    ctype = resp.headers.get("Content-Type", "")
    assert "json" in ctype, f"{resp.request.method} {resp.url}: expected a JSON body, got Content-Type {ctype!r}: {resp.text[:200]!r}"
    try:
        return resp.json()
    except ValueError as e:  # pragma: no cover - reported as a test failure
        pytest.fail(f"{resp.request.method} {resp.url}: body is not JSON ({e}): {resp.text[:200]!r}", pytrace=False)


# ---------------------------------------------------------------------------
# Coverage bookkeeping
# ---------------------------------------------------------------------------

_lock = threading.Lock()
COVERED: dict[tuple, set] = {}  # (flavor, api, METHOD, template) -> {status,...}


def _record(flavor, api, method, template, status):
    with _lock:
        COVERED.setdefault((flavor, api, method.upper(), template), set()).add(status)


# ---------------------------------------------------------------------------
# Mapping a concrete URL to (api, spec path)
# ---------------------------------------------------------------------------


def spec_path_for(server, url: str):
    """Return (api, spec_path) for a URL on ``server`` or (None, None)."""
    path = urlsplit(url).path
    ctx = server.context  # "/wiki" on cloud, e.g. "/confluence" on DC
    if not path.startswith(ctx + "/"):
        return None, None
    rest = path[len(ctx):]
    if rest.startswith("/rest/api/"):
        # v1 spec paths carry the Cloud context /wiki; DC serves the same paths without it.
        return "v1", "/wiki" + rest
    if rest.startswith("/api/v2/") and server.flavor == "cloud":
        return "v2", rest[len("/api/v2"):]
    return None, None


def check(resp, expect=200, server=None, what=None):
    """Assert the status, validate the body against the spec, record coverage.

    Returns the decoded JSON body (or None for bodiless responses).
    """
    server = server or getattr(resp, "fidelity_server", None)
    req = resp.request
    method = req.method
    label = what or f"{method} {urlsplit(req.url).path}"
    expects = expect if isinstance(expect, (tuple, list, set)) else (expect,)
    api, spath = spec_path_for(server, req.url)
    assert api is not None, f"{label}: not an API path of this {server.flavor} server"
    ops = find_operations(api, method, spath)
    assert ops, f"{label}: no operation in the {api} spec matches {method} {spath}"
    if resp.status_code not in expects:
        documented = sorted(ops[0].op.get("responses", {}).keys())
        hint = ""
        if resp.status_code in (404, 405, 501) and any(str(e).startswith("2") for e in expects):
            hint = (
                f"\n  ROUTE NOT SERVED? The spec ({ops[0].doc.name}: {method} {ops[0].template}) "
                f"documents {documented} and this request expected {list(expects)}."
            )
        pytest.fail(
            f"{label} [{server.flavor}]: HTTP {resp.status_code}, expected {list(expects)}.{hint}\n"
            f"  body: {resp.text[:400]!r}",
            pytrace=False,
        )
    status = resp.status_code
    body = None
    validated = False
    for op in ops:
        key, schema = op.json_schema(status)
        if key is None:
            if op is ops[0]:
                pytest.fail(
                    f"{label} [{server.flavor}]: status {status} is not documented by "
                    f"{op.doc.name} {method} {op.template} (documented: {sorted(op.op.get('responses', {}))})",
                    pytrace=False,
                )
            continue
        if schema is not None:
            body = json_body(resp)
            validate_schema(body, schema, f"{label} [{server.flavor}] vs {op.doc.name} {method.upper()} {op.template} {key}")
            validated = True
        # Validate against every document that has a schema; the newest wins on conflicts
        # only in the sense that it is checked first.
    if not validated:
        if status == 204:
            assert resp.content == b"", f"{label}: 204 with a body {resp.content[:100]!r}"
        elif status >= 400:
            body = check_v1_error(resp) if api == "v1" else check_v2_error(resp)
        elif resp.content and "json" in resp.headers.get("Content-Type", ""):
            body = resp.json()
    if api == "v1" and isinstance(body, (dict, list)):
        check_expandable(body, label)
    _record(server.flavor, api, method, ops[0].template, status)
    return body


def check_expandable(node, label, path=""):
    """v1 invariant (holds in every real capture in examples/): a key listed in
    `_expandable` is one that was *not* expanded, so it is absent from the object."""
    if isinstance(node, dict):
        exp = node.get("_expandable")
        if isinstance(exp, dict):
            both = sorted(set(exp) & (set(node) - {"_expandable"}))
            assert not both, f"{label}: at {path or '<root>'} {both} are both expanded and listed in _expandable"
        for k, v in node.items():
            if k != "_expandable":
                check_expandable(v, label, f"{path}/{k}")
    elif isinstance(node, list):
        for i, x in enumerate(node):
            check_expandable(x, label, f"{path}/{i}")


# ---------------------------------------------------------------------------
# Small shared assertions
# ---------------------------------------------------------------------------

CLOUD_ATT_ID = re.compile(r"^att\d+$")
DC_ATT_ID = re.compile(r"^\d+$")


def assert_attachment_id(server, att_id):
    pat = CLOUD_ATT_ID if server.flavor == "cloud" else DC_ATT_ID
    assert isinstance(att_id, str) and pat.match(att_id), f"{server.flavor} attachment id {att_id!r} does not match {pat.pattern}"


def parse_timestamp(value, server=None, field="timestamp"):
    assert isinstance(value, str), f"{field}: {value!r} is not a string"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$", value), f"{field}: {value!r} is not ISO-8601 with a zone"
    if server is not None and server.flavor == "cloud":
        # Cloud v1 `when` and v2 timestamps are UTC with milliseconds and `Z` (docs/CONFLUENCE.md §4.2)
        assert re.match(r"^.*T\d\d:\d\d:\d\d\.\d{3}Z$", value), f"{field}: Cloud timestamps look like 2021-11-23T22:15:08.629Z, got {value!r}"
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert dt.tzinfo is not None
    assert 2000 <= dt.year <= 2100, f"{field}: implausible year in {value!r}"
    return dt


def validate_against(instance, method, spec_path, api="v1", status=200):
    """Validate a body from a route the specs do not describe (e.g. DC's
    /rest/experimental/...) against the schema of the documented equivalent."""
    ops = find_operations(api, method, spec_path)
    assert ops, (api, method, spec_path)
    _, schema = ops[0].json_schema(status)
    assert schema is not None
    validate_schema(instance, schema, f"{method} {spec_path} (equivalent)")
