"""A seeded random walk of attachment writes; after every step the v1 list, the v2 list (Cloud),
CQL and the downloaded bytes must all agree with a model kept by the test."""

from __future__ import annotations

import random

import pytest

from harness import check
from util import XSRF, attachments, create_page, fetch_attachment_bytes, unique, upload

STEPS = 40


def _v1_state(srv, page):
    body = attachments(srv, page, limit=200, expand="version")
    return {a["title"]: a for a in body["results"]}


@pytest.mark.parametrize("flavor", ["cloud", "dc"])
def test_random_attachment_walk(fresh, flavor):
    srv = fresh(flavor, seed=True)
    rng = random.Random(20261127)
    pages = [create_page(srv, "ENG", unique(f"Walk {i}"))["id"] for i in range(2)]
    model: dict[str, dict[str, bytes]] = {p: {} for p in pages}  # page -> name -> bytes
    counter = 0

    for step in range(STEPS):
        page = rng.choice(pages)
        names = sorted(model[page])
        op = rng.choice(["post", "post", "data", "rename", "move", "delete", "put"])
        counter += 1
        data = f"step {step} {counter} ".encode() * rng.randint(1, 50)
        where = f"step {step} {op} on {page}"
        if op == "post" or not names:
            name = f"file-{counter}.txt"
            upload(srv, page, name, data)
            model[page][name] = data
        elif op == "put":
            name = rng.choice(names)
            r = upload(srv, page, name, data, method="PUT", expect=None)
            if flavor == "dc":
                assert r.status_code == 405, where
            else:
                check(r)
                model[page][name] = data
        elif op == "data":
            name = rng.choice(names)
            att = _v1_state(srv, page)[name]
            r = srv.post(
                srv.v1(f"/content/{page}/child/attachment/{att['id']}/data"),
                files=[("file", (name, data, "text/plain"))],
                data={"minorEdit": "true"},
                headers=XSRF,
            )
            check(r)
            model[page][name] = data
        elif op == "rename":
            name = rng.choice(names)
            att = _v1_state(srv, page)[name]
            new = f"renamed-{counter}.txt"
            body = {"id": att["id"], "type": "attachment", "version": {"number": att["version"]["number"]}, "title": new}
            check(srv.put(srv.v1(f"/content/{page}/child/attachment/{att['id']}"), json=body))
            model[page][new] = model[page].pop(name)
        elif op == "move":
            name = rng.choice(names)
            other = pages[1] if page == pages[0] else pages[0]
            if name in model[other]:
                continue
            att = _v1_state(srv, page)[name]
            body = {
                "id": att["id"],
                "type": "attachment",
                "version": {"number": att["version"]["number"]},
                "container": {"id": other, "type": "page"},
            }
            check(srv.put(srv.v1(f"/content/{page}/child/attachment/{att['id']}"), json=body))
            model[other][name] = model[page].pop(name)
        elif op == "delete":
            name = rng.choice(names)
            att = _v1_state(srv, page)[name]
            check(srv.delete(srv.v1(f"/content/{att['id']}")), 204)
            del model[page][name]

        # After every step: the listing matches the model (names and sizes).
        for p in pages:
            state = _v1_state(srv, p)
            assert sorted(state) == sorted(model[p]), f"{where}: v1 list of {p}"
            for name, a in state.items():
                assert a["extensions"]["fileSize"] == len(model[p][name]), f"{where}: size of {name}"

    for p in pages:
        state = _v1_state(srv, p)
        for name, a in state.items():
            assert fetch_attachment_bytes(srv, p, a) == model[p][name], f"bytes of {name} on {p}"
        if flavor == "cloud":
            body = check(srv.get(srv.v2(f"/pages/{p}/attachments"), params={"limit": 250}))
            assert sorted(a["title"] for a in body["results"]) == sorted(model[p])
            assert {a["title"]: a["fileSize"] for a in body["results"]} == {n: len(b) for n, b in model[p].items()}
        found = check(srv.get(srv.v1("/search"), params={"cql": f"type=attachment AND container={p}", "limit": 200}))
        assert sorted(r["title"] for r in found["results"]) == sorted(model[p]), f"CQL view of {p}"
