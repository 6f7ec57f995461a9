"""Runs last: every row of the route table was exercised (and validated) on each flavor."""

from __future__ import annotations

import pytest

import harness
from routes import ROUTES

SCHEMA_MODULES = ("test_v1_schema.py", "test_v2_schema.py", "test_download.py", "test_cql.py")


def test_route_table_rows_exist_in_spec():
    for api, method, template, _ in ROUTES:
        docs, _ = harness.specs()
        found = [d for d in docs[api] if template in d.raw["paths"] and method.lower() in d.raw["paths"][template]]
        assert found, f"route table row {method} {template} is not in any {api} document"


def coverage_matrix():
    rows = []
    for api, method, template, flavors in ROUTES:
        cells = []
        for fl in ("cloud", "dc"):
            statuses = harness.COVERED.get((fl, api, method, template))
            if fl not in flavors:
                cells.append("n/a")
            elif statuses:
                cells.append(",".join(str(s) for s in sorted(statuses)))
            else:
                cells.append("MISSING")
        rows.append((api, method, template, cells[0], cells[1]))
    return rows


def test_every_route_covered(request):
    ran = {item.path.name for item in request.session.items}
    if not all(m in ran for m in SCHEMA_MODULES):
        pytest.skip("partial run: the route table is checked only when the whole suite runs")
    harness.FULL_RUN = True
    missing = [f"{api} {method} {tpl} [{'cloud' if c == 'MISSING' else ''}{' dc' if d == 'MISSING' else ''}]" for api, method, tpl, c, d in coverage_matrix() if "MISSING" in (c, d)]
    assert not missing, "routes in the table never validated (not served, or their tests failed):\n  " + "\n  ".join(missing)
