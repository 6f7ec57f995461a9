"""The route table: every spec-described route the server must serve, per flavor.

Each row is (api, METHOD, spec template, flavors).  Templates are spelled as in
the spec documents (v1 with its /wiki/rest/api prefix; v2 relative to /wiki/api/v2).
test_zz_route_table.py fails when a row was never exercised by a passing
`harness.check` call, and prints the coverage matrix.
"""

BOTH = ("cloud", "dc")
CLOUD = ("cloud",)

V1 = "/wiki/rest/api"

ROUTES = [
    # spaces
    ("v1", "GET", f"{V1}/space", BOTH),
    ("v1", "GET", f"{V1}/space/{{spaceKey}}", BOTH),
    ("v1", "GET", f"{V1}/space/{{spaceKey}}/content", BOTH),
    ("v1", "GET", f"{V1}/space/{{spaceKey}}/content/{{type}}", BOTH),
    # content
    ("v1", "GET", f"{V1}/content", BOTH),
    ("v1", "POST", f"{V1}/content", BOTH),
    ("v1", "GET", f"{V1}/content/{{id}}", BOTH),
    ("v1", "PUT", f"{V1}/content/{{id}}", BOTH),
    ("v1", "DELETE", f"{V1}/content/{{id}}", BOTH),
    ("v1", "GET", f"{V1}/content/{{id}}/history", BOTH),
    # children
    ("v1", "GET", f"{V1}/content/{{id}}/child", BOTH),
    ("v1", "GET", f"{V1}/content/{{id}}/child/{{type}}", BOTH),
    ("v1", "GET", f"{V1}/content/{{id}}/child/attachment", BOTH),
    ("v1", "POST", f"{V1}/content/{{id}}/child/attachment", BOTH),
    ("v1", "PUT", f"{V1}/content/{{id}}/child/attachment", CLOUD),  # DC: 405 (tested in test_upload_put_upsert)
    ("v1", "PUT", f"{V1}/content/{{id}}/child/attachment/{{attachmentId}}", BOTH),
    ("v1", "POST", f"{V1}/content/{{id}}/child/attachment/{{attachmentId}}/data", BOTH),
    ("v1", "GET", f"{V1}/content/{{id}}/child/attachment/{{attachmentId}}/download", CLOUD),  # DC has no REST download
    # content properties
    ("v1", "GET", f"{V1}/content/{{id}}/property", BOTH),
    ("v1", "POST", f"{V1}/content/{{id}}/property", BOTH),
    ("v1", "GET", f"{V1}/content/{{id}}/property/{{key}}", BOTH),
    ("v1", "POST", f"{V1}/content/{{id}}/property/{{key}}", BOTH),
    ("v1", "PUT", f"{V1}/content/{{id}}/property/{{key}}", BOTH),
    ("v1", "DELETE", f"{V1}/content/{{id}}/property/{{key}}", BOTH),
    # versions
    # DC serves these under /rest/experimental (tested in test_dc_versions_are_experimental)
    ("v1", "GET", f"{V1}/content/{{id}}/version", CLOUD),
    ("v1", "GET", f"{V1}/content/{{id}}/version/{{versionNumber}}", CLOUD),
    ("v1", "DELETE", f"{V1}/content/{{id}}/version/{{versionNumber}}", CLOUD),
    # search, user
    ("v1", "GET", f"{V1}/content/search", BOTH),
    ("v1", "GET", f"{V1}/search", BOTH),
    ("v1", "GET", f"{V1}/user/current", BOTH),
    # v2 (Cloud only)
    ("v2", "GET", "/spaces", CLOUD),
    ("v2", "GET", "/spaces/{id}", CLOUD),
    ("v2", "GET", "/spaces/{id}/pages", CLOUD),
    ("v2", "GET", "/spaces/{id}/blogposts", CLOUD),
    ("v2", "GET", "/pages", CLOUD),
    ("v2", "POST", "/pages", CLOUD),
    ("v2", "GET", "/pages/{id}", CLOUD),
    ("v2", "PUT", "/pages/{id}", CLOUD),
    ("v2", "DELETE", "/pages/{id}", CLOUD),
    ("v2", "GET", "/pages/{id}/children", CLOUD),
    ("v2", "GET", "/pages/{id}/direct-children", CLOUD),
    ("v2", "GET", "/pages/{id}/versions", CLOUD),
    ("v2", "GET", "/pages/{id}/attachments", CLOUD),
    ("v2", "GET", "/blogposts", CLOUD),
    ("v2", "GET", "/blogposts/{id}", CLOUD),
    ("v2", "DELETE", "/blogposts/{id}", CLOUD),
    ("v2", "GET", "/blogposts/{id}/attachments", CLOUD),
    ("v2", "GET", "/blogposts/{id}/versions", CLOUD),
    ("v2", "GET", "/attachments/{id}", CLOUD),
    ("v2", "DELETE", "/attachments/{id}", CLOUD),
    ("v2", "GET", "/attachments/{id}/versions", CLOUD),
    ("v2", "GET", "/attachments/{attachment-id}/versions/{version-number}", CLOUD),
    ("v2", "GET", "/pages/{page-id}/properties", CLOUD),
    ("v2", "POST", "/pages/{page-id}/properties", CLOUD),
    ("v2", "GET", "/pages/{page-id}/properties/{property-id}", CLOUD),
    ("v2", "PUT", "/pages/{page-id}/properties/{property-id}", CLOUD),
    ("v2", "DELETE", "/pages/{page-id}/properties/{property-id}", CLOUD),
    ("v2", "GET", "/attachments/{attachment-id}/properties", CLOUD),
    ("v2", "POST", "/attachments/{attachment-id}/properties", CLOUD),
    ("v2", "GET", "/attachments/{attachment-id}/properties/{property-id}", CLOUD),
    ("v2", "PUT", "/attachments/{attachment-id}/properties/{property-id}", CLOUD),
    ("v2", "DELETE", "/attachments/{attachment-id}/properties/{property-id}", CLOUD),
    ("v2", "GET", "/blogposts/{blogpost-id}/properties", CLOUD),
    ("v2", "POST", "/blogposts/{blogpost-id}/properties", CLOUD),
    ("v2", "GET", "/blogposts/{blogpost-id}/properties/{property-id}", CLOUD),
    ("v2", "PUT", "/blogposts/{blogpost-id}/properties/{property-id}", CLOUD),
    ("v2", "DELETE", "/blogposts/{blogpost-id}/properties/{property-id}", CLOUD),
]
