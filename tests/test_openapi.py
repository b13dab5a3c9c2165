"""The OpenAPI document (dropserver/openapi.json) against the server.

- It is valid OpenAPI 3.1 (openapi-spec-validator), and every ``$ref`` in it resolves.
- It documents exactly the server's routes: every (method, path template) the app registers,
  and nothing else.
- The create-drop schema accepts and refuses what ``parse_drop_spec`` does, with its defaults.
- The webhook deliveries conform: every kind of event a drop's life appends, as the body
  POSTed to a platform's webhook, fits the document's ``WebhookEvent``.
- The server's answers conform: the main flows and the cheap-to-provoke errors are driven
  through the real app, and each answer's status, content type, required headers and JSON
  body are checked against what the document says for that route, method and status.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

import dropserver
from dropserver.app import create_app
from dropserver.config import Settings
from dropserver.drops import parse_drop_spec
from dropserver.errors import ApiError
from dropserver.keys import drop_keys
from dropserver.views.docs import DOCUMENT, DOCUMENT_PATH
from dropserver.webhooks import message_of
from tests.helpers import ADMIN, OTHER_ADMIN_KEY, buyer, drop_body, rfc3339

try:  # installed with openapi-spec-validator (test extras); the structural checks need neither
    import jsonschema
    import referencing
    import referencing.jsonschema
except ImportError:  # pragma: no cover
    jsonschema = None

needs_jsonschema = pytest.mark.skipif(jsonschema is None, reason="jsonschema is not installed")
DOC: dict[str, Any] = DOCUMENT
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
DOC_URI = "urn:dropserver:openapi"
SMALL_POW = {"algorithm": "PBKDF2/SHA-256", "cost": 1, "counter_max": 16, "adaptive": False}
OTHER_ADMIN = {"Authorization": f"Bearer {OTHER_ADMIN_KEY}"}

# Every error code of the contract (API.md) and the ones the server adds, with its status
# (500 "internal", a server bug, is deliberately not part of the contract).
ERROR_CODES = {
    "invalid_request": 400,
    "unauthorized": 401,
    "kyc_required": 403,
    "adult_only": 403,
    "pow_invalid": 403,
    "pow_expired": 403,
    "pow_replayed": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "closed": 409,
    "sold_out": 409,
    "limit_reached": 409,
    "already_entered": 409,
    "already_pending": 409,
    "already_exists": 409,
    "not_closed": 409,
    "draw_in_progress": 409,
    "not_drawn": 409,
    "wrong_mode": 409,
    "pow_disabled": 409,
    "hold_expired": 409,
    "not_held": 409,
    "payload_too_large": 413,
    "idempotency_mismatch": 422,
    "not_open": 425,
    "rate_limited": 429,
    "unavailable": 503,
}


# --- reading the document ----------------------------------------------------------------------


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def at(pointer: str) -> Any:
    """The document's node at a local JSON pointer (``#/a/b``)."""
    assert pointer.startswith("#"), pointer
    node: Any = DOC
    for token in pointer[1:].split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def deref(pointer: str) -> tuple[Any, str]:
    """Follow ``$ref`` from ``pointer`` to the node it names; returns the node and its pointer."""
    node = at(pointer)
    while isinstance(node, dict) and "$ref" in node:
        pointer = node["$ref"]
        node = at(pointer)
    return node, pointer


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in DOC["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield path, method, item[method]


def documented_routes() -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, method, _ in operations()}


def server_routes(app: web.Application) -> set[tuple[str, str]]:
    """(method, path template) of every route; a HEAD that aiohttp adds for a GET is implied
    by the GET (the document says every GET also answers HEAD). The catch-all that answers
    404 and 405 is not a route of the API."""
    routes = [r for r in app.router.routes() if r.resource and r.resource.canonical != "/{tail}"]
    gets = {(r.resource.canonical, r.handler) for r in routes if r.method == "GET" and r.resource}
    found = set()
    for route in routes:
        assert route.resource is not None
        if route.method == "HEAD" and (route.resource.canonical, route.handler) in gets:
            continue
        found.add((route.method, route.resource.canonical))
    return found


# --- checking answers --------------------------------------------------------------------------


def validator(pointer: str) -> Any:
    """A JSON Schema 2020-12 validator for the schema at ``pointer`` (refs resolved within the
    document), checking formats: date-time must really be RFC 3339."""
    registry = referencing.Registry().with_resource(
        DOC_URI,
        referencing.Resource.from_contents(
            DOC, default_specification=referencing.jsonschema.DRAFT202012
        ),
    )
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    assert "date-time" in checker.checkers  # else formats would pass unchecked
    return jsonschema.Draft202012Validator(
        {"$ref": DOC_URI + pointer}, registry=registry, format_checker=checker
    )


def validate(instance: Any, pointer: str) -> None:
    validator(pointer).validate(instance)


def is_valid(instance: Any, pointer: str) -> bool:
    return bool(validator(pointer).is_valid(instance))


def response_spec(path: str, method: str, status: int) -> tuple[dict[str, Any], str]:
    op_pointer = f"#/paths/{escape(path)}/{method}"
    responses = at(op_pointer)["responses"]
    assert str(status) in responses, f"{method.upper()} {path}: status {status} not documented"
    spec, pointer = deref(f"{op_pointer}/responses/{status}")
    return spec, pointer


def check_headers(resp: ClientResponse, spec: dict[str, Any], pointer: str) -> None:
    for name in spec.get("headers", {}):
        header, header_pointer = deref(f"{pointer}/headers/{escape(name)}")
        value = resp.headers.get(name)
        if value is None:
            assert not header.get("required"), f"required header {name} missing"
            continue
        instance = int(value) if header["schema"].get("type") == "integer" else value
        validate(instance, header_pointer + "/schema")


async def conform(
    resp: ClientResponse, path: str, method: str, status: int, code: str | None = None
) -> Any:
    """Assert the answer has ``status`` (and error ``code``) and matches the document."""
    raw = await resp.read()
    assert resp.status == status, (resp.status, raw[:500])
    spec, pointer = response_spec(path, method.lower(), status)
    return await _conform_to(resp, raw, spec, pointer, code)


async def _conform_to(
    resp: ClientResponse, raw: bytes, spec: dict[str, Any], pointer: str, code: str | None
) -> Any:
    media = resp.content_type
    assert media in spec["content"], f"{media} not documented at {pointer}"
    check_headers(resp, spec, pointer)
    if media == "application/x-ndjson":
        for line in raw.splitlines():
            validate(orjson.loads(line), "#/components/schemas/EntryLine")
    if media != "application/json":
        return raw
    body = orjson.loads(raw)
    validate(body, f"{pointer}/content/{escape(media)}/schema")
    if code is not None:
        assert body["error"]["code"] == code, body
    return body


# --- the document itself -----------------------------------------------------------------------


def test_valid_openapi_3_1() -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    assert DOC["openapi"].startswith("3.1.")
    validator.validate(DOC)


def test_the_file_is_what_is_served() -> None:
    assert orjson.loads(DOCUMENT_PATH.read_bytes()) == DOC


def test_every_ref_resolves() -> None:
    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for item in node:
                yield from refs(item)

    found = list(refs(DOC))
    assert found
    for ref in found:
        assert ref.startswith("#/components/"), ref
        at(ref)  # raises KeyError when dangling


def test_documents_exactly_the_server_routes(settings: Settings) -> None:
    server = server_routes(create_app(settings))
    documented = documented_routes()
    assert server - documented == set(), "registered but not documented"
    assert documented - server == set(), "documented but not registered"


def test_operations_are_well_formed() -> None:
    ids = [op["operationId"] for _, _, op in operations()]
    assert len(ids) == len(set(ids))
    schemes = set(DOC["components"]["securitySchemes"])
    assert schemes == {"platformKey", "identityToken"}
    for path, method, op in operations():
        where = f"{method.upper()} {path}"
        # Path parameters: exactly the template's, each declared once.
        declared = [
            deref(f"#/paths/{escape(path)}/parameters/{i}")[0]
            for i in range(len(DOC["paths"][path].get("parameters", [])))
        ] + [
            deref(f"#/paths/{escape(path)}/{method}/parameters/{i}")[0]
            for i in range(len(op.get("parameters", [])))
        ]
        in_path = sorted(p["name"] for p in declared if p["in"] == "path")
        assert in_path == sorted(re.findall(r"\{(\w+)\}", path)), where
        # Security: only the two schemes; whoever needs credentials can get a 401.
        assert "security" in op, where
        used = {name for requirement in op["security"] for name in requirement}
        assert used <= schemes, where
        anonymous = not op["security"] or {} in op["security"]
        if not anonymous:
            assert "401" in op["responses"], where
        # Every JSON answer of a /v1 call that touches storage may be a 503.
        if path.startswith("/v1/drops") or path.startswith("/v1/orders"):
            assert "503" in op["responses"], where
        for status in op["responses"]:
            if status.startswith(("4", "5")) and path.startswith("/v1/"):
                spec, _ = deref(f"#/paths/{escape(path)}/{method}/responses/{status}")
                assert list(spec["content"]) == ["application/json"], (where, status)


def test_admin_and_buyer_calls_name_their_scheme() -> None:
    admin = {op["operationId"] for _, _, op in operations() if "admin" in op["tags"]}
    for _, _, op in operations():
        if op["operationId"] in admin:
            assert {"platformKey": []} in op["security"], op["operationId"]
    buyer_only = {"getChallenge", "postChallenge", "purchase", "enter", "me"}
    for _, _, op in operations():
        if op["operationId"] in buyer_only:
            assert op["security"] == [{"identityToken": []}], op["operationId"]


def test_every_error_code_is_documented_with_its_status() -> None:
    documented: dict[str, set[int]] = {}

    def codes_of(schema: Any) -> Iterator[str]:
        if isinstance(schema, dict):
            if "enum" in schema and schema is not DOC["components"]["schemas"]["Error"]:
                code_enum = schema["enum"]
                if all(isinstance(c, str) for c in code_enum):
                    yield from code_enum
            for key, value in schema.items():
                if key != "$ref":
                    yield from codes_of(value)
        elif isinstance(schema, list):
            for item in schema:
                yield from codes_of(item)

    def error_codes(spec: dict[str, Any]) -> list[str]:
        schema = spec["content"]["application/json"]["schema"]
        return [c for part in schema.get("allOf", []) for c in codes_of(part)]

    for _, _, op in operations():
        for status, response in op["responses"].items():
            spec = deref(response["$ref"])[0] if "$ref" in response else response
            if status.startswith("4") or status == "503":
                for code in error_codes(spec):
                    documented.setdefault(code, set()).add(int(status))
    not_allowed = DOC["components"]["responses"]["MethodNotAllowed"]
    documented.setdefault("method_not_allowed", set()).add(405)
    assert error_codes(not_allowed) == ["method_not_allowed"]
    for code, status in ERROR_CODES.items():
        assert documented.get(code) == {status}, code
    assert set(documented) == set(ERROR_CODES)


def test_every_error_code_in_the_source_is_listed() -> None:
    """A drift guard: codes raised literally anywhere in dropserver/ are in ERROR_CODES (and so,
    by the test above, documented with their status)."""
    patterns = [
        (re.compile(r"\bconflict\(\s*\"([a-z_]+)\""), 409),
        (re.compile(r"\bforbidden\(\s*\"([a-z_]+)\""), 403),
        (re.compile(r"\bApiError\(\s*(\d{3}),\s*\"([a-z_]+)\""), None),
        (re.compile(r"\"code\":\s*\"([a-z_]+)\""), None),
    ]
    found: dict[str, int | None] = {}
    for source in Path(dropserver.__file__).parent.rglob("*.py"):
        text = source.read_text()
        for pattern, status in patterns:
            for match in pattern.finditer(text):
                if status is None and len(match.groups()) == 2:
                    found[match[2]] = int(match[1])
                else:
                    found.setdefault(match[1], status)
    assert len(found) > 15
    found.pop("internal")
    for code, status in found.items():
        assert code in ERROR_CODES, code
        assert status is None or ERROR_CODES[code] == status, code


# --- the create-drop schema against drops.py ---------------------------------------------------

CREATE = "#/components/schemas/CreateDrop"
BASE = {"title": "t", "supply": 3, "mode": "fcfs", "opens_at": "2030-01-01T00:00:00Z"}
LOTTERY = {**BASE, "mode": "lottery", "closes_at": "2030-01-02T00:00:00Z"}
SPECS: list[dict[str, Any]] = [
    BASE,
    LOTTERY,
    {**LOTTERY, "claim_seconds": 60, "beacon": "round 4242"},
    {**BASE, "id": "a-1", "supply": 10_000_000, "per_person_limit": 1000, "hold_seconds": 0},
    {**BASE, "id": "A"},
    {**BASE, "id": "x" * 65},
    {**BASE, "id": None},
    {**BASE, "title": ""},
    {**BASE, "title": "   "},
    {**BASE, "title": "x" * 201},
    {**BASE, "supply": 0},
    {**BASE, "supply": 10_000_001},
    {**BASE, "supply": True},
    {**BASE, "supply": "3"},
    {**BASE, "mode": "auction"},
    {k: v for k, v in BASE.items() if k != "opens_at"},
    {k: v for k, v in BASE.items() if k != "title"},
    {**BASE, "opens_at": "tomorrow"},
    {**BASE, "closes_at": None},
    {**BASE, "closes_at": "2030-01-01T01:00:00Z"},
    {k: v for k, v in LOTTERY.items() if k != "closes_at"},
    {**LOTTERY, "closes_at": None},
    {**LOTTERY, "per_person_limit": 2},
    {**LOTTERY, "per_person_limit": 1},
    {**LOTTERY, "fair_start_seconds": 5},
    {**LOTTERY, "fair_start_seconds": 0},
    {**BASE, "fair_start_seconds": 30},
    {**BASE, "fair_start_seconds": 3600},
    {**BASE, "fair_start_seconds": 3601},
    {**BASE, "per_person_limit": 0},
    {**BASE, "per_person_limit": 1001},
    {**BASE, "hold_seconds": -1},
    {**BASE, "hold_seconds": 86_401},
    {**BASE, "claim_seconds": 0},
    {**BASE, "claim_seconds": 604_800},
    {**BASE, "claim_seconds": 604_801},
    {**BASE, "require_kyc": False, "adult_only": True},
    {**BASE, "require_kyc": None},
    {**BASE, "adult_only": 1},
    {**BASE, "pow": None},
    {**BASE, "pow": {}},
    {**BASE, "pow": {"algorithm": "SHA-256", "cost": 1000, "counter_max": 2}},
    {**BASE, "pow": {"algorithm": "MD5"}},
    {**BASE, "pow": {"cost": 0}},
    {**BASE, "pow": {"cost": 1_000_001}},
    {**BASE, "pow": {"counter_max": 1}},
    {**BASE, "pow": {"counter_max": 10_000_001}},
    {**BASE, "pow": {"adaptive": "yes"}},
    {**BASE, "pow": {"key_length": 32}},
    {**BASE, "pow": {"algorithm": "SCRYPT", "cost": 1024}},
    {**BASE, "pow": {"algorithm": "SCRYPT", "cost": 262_144}},
    {**BASE, "pow": {"algorithm": "SCRYPT", "cost": 524_288}},
    {**BASE, "pow": {"algorithm": "SCRYPT", "cost": 1000}},
    {**BASE, "pow": {"algorithm": "SCRYPT"}},
    {**BASE, "pow": "on"},
    {**BASE, "rate_limits": None},
    {**BASE, "rate_limits": {}},
    {**BASE, "rate_limits": {"person": {"rate": 0.5, "burst": 2}, "ip": None}},
    {**BASE, "rate_limits": {"device": {"rate": 1_000_000, "burst": 1_000_000}}},
    {**BASE, "rate_limits": {"person": {"rate": 0, "burst": 2}}},
    {**BASE, "rate_limits": {"person": {"rate": 1_000_001, "burst": 2}}},
    {**BASE, "rate_limits": {"person": {"rate": 1, "burst": 0}}},
    {**BASE, "rate_limits": {"person": {"rate": 1}}},
    {**BASE, "rate_limits": {"person": {"rate": 1, "burst": 1, "x": 1}}},
    {**BASE, "rate_limits": {"browser": {"rate": 1, "burst": 1}}},
    {**BASE, "beacon": ""},
    {**BASE, "beacon": "b" * 257},
    {**BASE, "beacon": None},
    {**BASE, "colour": "red"},
]


def server_accepts(spec: dict[str, Any]) -> bool:
    try:
        parse_drop_spec(spec, platform="acme")
    except ApiError as exc:
        assert (exc.status, exc.code) == (400, "invalid_request")
        return False
    return True


@needs_jsonschema
@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: orjson.dumps(spec).decode()[:80])
def test_create_drop_schema_agrees_with_the_server(spec: dict[str, Any]) -> None:
    assert is_valid(spec, CREATE) == server_accepts(spec)


def test_create_drop_defaults_are_the_servers() -> None:
    props = DOC["components"]["schemas"]["CreateDrop"]["properties"]
    defaults = {name: prop["default"] for name, prop in props.items() if "default" in prop}
    shown = parse_drop_spec(BASE, platform="acme").spec_json()
    assert defaults == {name: shown[name] for name in defaults}
    assert set(props) - {"id", "closes_at", "rate_limits", "beacon"} <= set(defaults) | set(
        DOC["components"]["schemas"]["CreateDrop"]["required"]
    )
    pow_props = DOC["components"]["schemas"]["PowPolicyInput"]["properties"]
    assert {name: p["default"] for name, p in pow_props.items()} == shown["pow"]


# --- answers, driven through the real app ------------------------------------------------------


PATH_PARAMS = ("id", "order_id")


async def call(
    client: TestClient,
    method: str,
    template: str,
    status: int,
    code: str | None = None,
    **kwargs: Any,
) -> Any:
    """Call ``template`` (path parameters among ``kwargs``, the rest go to the request) and
    check the answer against the document; returns the decoded body."""
    params = {name: kwargs.pop(name) for name in PATH_PARAMS if name in kwargs}
    resp = await client.request(method.upper(), template.format(**params), **kwargs)
    return await conform(resp, template, method, status, code)


async def create(client: TestClient, **overrides: Any) -> str:
    drop = await call(client, "post", "/v1/drops", 201, json=drop_body(**overrides), headers=ADMIN)
    drop_id: str = drop["id"]
    return drop_id


BIG = b'{"title": "' + b"x" * (70 * 1024) + b'"}'  # over the default 64 KiB body limit


@needs_jsonschema
async def test_serves_the_document_and_ops_conform(client: TestClient) -> None:
    resp = await client.get("/v1/openapi.json")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    assert await resp.json() == DOC
    await conform(resp, "/v1/openapi.json", "get", 200)
    await call(client, "get", "/healthz", 200)
    await call(client, "get", "/readyz", 200)
    assert b"# TYPE" in await call(client, "get", "/metrics", 200)


@needs_jsonschema
async def test_admin_calls_conform(client: TestClient) -> None:
    drops, one = "/v1/drops", "/v1/drops/{id}"
    body = drop_body(id="shoe-1", supply=2, per_person_limit=2, closes_at=rfc3339(3600))
    drop = await call(client, "post", drops, 201, json=body, headers=ADMIN)
    assert drop["id"] == "shoe-1" and drop["counters"]["remaining"] == 2
    await call(client, "post", drops, 409, "already_exists", json=body, headers=ADMIN)
    keyed = {**ADMIN, "Idempotency-Key": "create-1"}
    body = drop_body(rate_limits={"ip": {"rate": 100, "burst": 100}})
    first = await call(client, "post", drops, 201, json=body, headers=keyed)
    again = await call(client, "post", drops, 201, json=body, headers=keyed)
    assert first["id"] == again["id"]
    changed = {**body, "supply": 1}
    await call(client, "post", drops, 422, "idempotency_mismatch", json=changed, headers=keyed)
    for bad in (b"{", b"[]", b'{"title": 1}', orjson.dumps({**body, "colour": 1})):
        await call(client, "post", drops, 400, "invalid_request", data=bad, headers=ADMIN)
    await call(client, "post", drops, 413, "payload_too_large", data=BIG, headers=ADMIN)
    await call(client, "post", drops, 401, "unauthorized", json=body)

    listing = await call(client, "get", drops, 200, headers=ADMIN)
    assert {d["id"] for d in listing["drops"]} == {"shoe-1", first["id"]}
    await call(client, "get", drops, 401, "unauthorized")

    assert "counters" in await call(client, "get", one, 200, id="shoe-1", headers=ADMIN)
    for headers in ({}, OTHER_ADMIN, buyer("a")):
        public = await call(client, "get", one, 200, id="shoe-1", headers=headers)
        assert public["availability"] == "available" and "counters" not in public
    await call(client, "get", one, 404, "not_found", id="nope")

    stats = "/v1/drops/{id}/stats"
    await call(client, "get", stats, 200, id="shoe-1", headers=ADMIN)
    await call(client, "get", stats, 401, "unauthorized", id="shoe-1")
    await call(client, "get", stats, 404, "not_found", id="shoe-1", headers=OTHER_ADMIN)

    # Both units to one person, then every view of the orders.
    purchase = "/v1/drops/{id}/purchase"
    orders = [
        await call(client, "post", purchase, 201, id="shoe-1", json={}, headers=buyer("a", "p1"))
        for _ in range(2)
    ]
    p1_again, p2 = buyer("b", "p1"), buyer("c", "p2")
    await call(client, "post", purchase, 409, "limit_reached", id="shoe-1", headers=p1_again)
    await call(client, "post", purchase, 409, "sold_out", id="shoe-1", headers=p2)

    listed = "/v1/drops/{id}/orders"
    page = await call(client, "get", listed, 200, id="shoe-1", params={"count": 2}, headers=ADMIN)
    assert sorted(o["order_id"] for o in page["orders"]) == sorted(o["order_id"] for o in orders)
    for query in ({"count": 0}, {"count": 5001}, {"cursor": -1}, {"cursor": "x"}):
        paged: dict[str, Any] = {"id": "shoe-1", "params": query, "headers": ADMIN}
        await call(client, "get", listed, 400, "invalid_request", **paged)

    me = "/v1/drops/{id}/me"
    assert (await call(client, "get", me, 200, id="shoe-1", headers=buyer("z", "p1")))["units"] == 2
    await call(client, "get", me, 401, "unauthorized", id="shoe-1")

    order = "/v1/orders/{order_id}"
    held, other = orders[0]["order_id"], orders[1]["order_id"]
    await call(client, "get", order, 200, order_id=held, headers=buyer("a", "p1"))
    await call(client, "get", order, 200, order_id=held, headers=ADMIN)
    await call(client, "get", order, 404, "not_found", order_id=held, headers=p2)
    # Without credentials an existing and an unknown order look the same.
    await call(client, "get", order, 401, "unauthorized", order_id=held)
    await call(client, "get", order, 401, "unauthorized", order_id="nope")
    await call(client, "get", order, 404, "not_found", order_id="nope", headers=p2)

    confirm, cancel = "/v1/orders/{order_id}/confirm", "/v1/orders/{order_id}/cancel"
    for _ in range(2):  # confirming again is a no-op
        done = await call(client, "post", confirm, 200, order_id=held, headers=ADMIN)
        assert done["status"] == "confirmed"
    error = await call(client, "post", cancel, 409, "not_held", order_id=held, headers=ADMIN)
    assert error["error"]["order"]["status"] == "confirmed"
    for _ in range(2):  # cancelling again is a no-op
        done = await call(client, "post", cancel, 200, order_id=other, headers=ADMIN)
        assert done["status"] == "cancelled"
    await call(client, "post", confirm, 409, "not_held", order_id=other, headers=ADMIN)
    await call(client, "post", confirm, 404, "not_found", order_id=other, headers=OTHER_ADMIN)
    await call(client, "post", cancel, 401, "unauthorized", order_id=other)

    close = "/v1/drops/{id}/close"
    closed = await call(client, "post", close, 200, id="shoe-1", headers=ADMIN)
    assert closed["status"] == "closed" and closed["closed_at"]
    await call(client, "post", close, 404, "not_found", id="nope", headers=ADMIN)
    await call(client, "post", close, 401, "unauthorized", id="shoe-1")
    await call(client, "post", purchase, 409, "closed", id="shoe-1", json={}, headers=buyer("d"))

    # Routing: a known path with another method, an unknown path.
    spec, pointer = deref("#/components/responses/MethodNotAllowed")
    for method, path in (("DELETE", "/v1/drops"), ("PUT", "/v1/drops/x/purchase")):
        resp = await client.request(method, path, headers=ADMIN)
        raw = await resp.read()
        assert resp.status == 405
        await _conform_to(resp, raw, spec, pointer, "method_not_allowed")
    resp = await client.get("/v1/nothing-here")
    assert resp.status == 404
    validate(await resp.json(), "#/components/schemas/Error")


@needs_jsonschema
async def test_buyer_refusals_conform(client: TestClient) -> None:
    purchase, challenge = "/v1/drops/{id}/purchase", "/v1/drops/{id}/challenge"
    plain = await create(client, per_person_limit=5, adult_only=True)
    a = buyer("a")

    await call(client, "post", purchase, 401, "unauthorized", id=plain, json={})
    await call(client, "post", purchase, 404, "not_found", id="nope", json={}, headers=a)
    no_kyc, minor = buyer("a", kyc=False), buyer("a", adult=False)
    await call(client, "post", purchase, 403, "kyc_required", id=plain, json={}, headers=no_kyc)
    await call(client, "post", purchase, 403, "adult_only", id=plain, json={}, headers=minor)
    for raw in (b"{", b"[]", b'{"pow": "x", "extra": 1}'):
        await call(client, "post", purchase, 400, "invalid_request", id=plain, data=raw, headers=a)
    bad_device = {**a, "X-Device-Id": "two words"}
    await call(client, "post", purchase, 400, "invalid_request", id=plain, headers=bad_device)
    await call(client, "post", purchase, 413, "payload_too_large", id=plain, data=BIG, headers=a)

    keyed = {**a, "Idempotency-Key": "buy-1", "X-Device-Id": "device-1"}
    first = await call(client, "post", purchase, 201, id=plain, data=b"{}", headers=keyed)
    again = await call(client, "post", purchase, 201, id=plain, data=b"{}", headers=keyed)
    assert first == again
    mismatch = "idempotency_mismatch"
    await call(client, "post", purchase, 422, mismatch, id=plain, data=b"{ }", headers=keyed)
    await call(client, "get", challenge, 409, "pow_disabled", id=plain, headers=a)

    later = await create(client, opens_at=rfc3339(3600), pow=SMALL_POW)
    error = await call(client, "post", purchase, 425, "not_open", id=later, json={}, headers=a)
    assert error["error"]["opens_at"].endswith("Z")
    await call(client, "post", challenge, 425, "not_open", id=later, headers=a)

    limited = await create(client, rate_limits={"person": {"rate": 0.01, "burst": 1}})
    await call(client, "post", purchase, 201, id=limited, json={}, headers=a)
    error = await call(client, "post", purchase, 429, "rate_limited", id=limited, headers=a)
    assert error["error"]["kind"] == "person"

    gated = await create(client, pow=SMALL_POW, hold_seconds=0)
    for method in ("get", "post"):
        found = await call(client, method, challenge, 200, id=gated, headers=a)
        assert found["parameters"]["data"]["drop"] == gated
    await call(client, "get", challenge, 401, "unauthorized", id=gated)
    await call(client, "post", purchase, 403, "pow_invalid", id=gated, json={}, headers=a)

    lottery = await create(client, mode="lottery", closes_at=rfc3339(3600))
    await call(client, "post", purchase, 409, "wrong_mode", id=lottery, json={}, headers=a)


@needs_jsonschema
async def test_lottery_calls_conform(client: TestClient) -> None:
    entries, draw, proof = "/v1/drops/{id}/entries", "/v1/drops/{id}/draw", "/v1/drops/{id}/proof"
    listed, me = "/v1/drops/{id}/entries.ndjson", "/v1/drops/{id}/me"
    drop = await create(client, mode="lottery", supply=1, closes_at=rfc3339(3600))
    before = await call(client, "get", proof, 200, id=drop)
    assert before["state"] == "pending" and before["seed"] is None
    await call(client, "get", listed, 409, "not_drawn", id=drop)

    mine = await call(client, "post", entries, 202, id=drop, json={}, headers=buyer("a", "p1"))
    twin = buyer("a2", "p1")
    await call(client, "post", entries, 409, "already_entered", id=drop, json={}, headers=twin)
    for person in ("p2", "p3"):
        await call(client, "post", entries, 202, id=drop, headers=buyer(person))
    state = await call(client, "get", me, 200, id=drop, headers=buyer("a", "p1"))
    assert state["entry"] == mine and state["result"] == "pending"
    stats = await call(client, "get", "/v1/drops/{id}/stats", 200, id=drop, headers=ADMIN)
    assert stats["entries"] == 3

    error = await call(client, "post", draw, 409, "not_closed", id=drop, headers=ADMIN)
    assert error["error"]["due_at"].endswith("Z")
    await call(client, "post", draw, 401, "unauthorized", id=drop)
    await call(client, "post", "/v1/drops/{id}/close", 200, id=drop, headers=ADMIN)
    await call(client, "post", entries, 409, "closed", id=drop, json={}, headers=buyer("p4"))
    drawn = await call(client, "post", draw, 200, id=drop, headers=ADMIN)
    assert drawn["state"] == "drawn" and drawn["entry_count"] == 3
    assert await call(client, "post", draw, 200, id=drop, headers=ADMIN) == drawn
    assert await call(client, "get", proof, 200, id=drop) == drawn
    lines = (await call(client, "get", listed, 200, id=drop)).splitlines()
    assert [orjson.loads(line)["receipt"] for line in lines] == sorted(
        drawn["winners"] + drawn["waitlist"]
    )
    results = set()
    for person in ("p1", "p2", "p3"):
        state = await call(client, "get", me, 200, id=drop, headers=buyer(person))
        results.add(state["result"])
    assert results == {"won", "waitlisted"}

    fcfs = await create(client)
    await call(client, "post", entries, 409, "wrong_mode", id=fcfs, json={}, headers=buyer("a"))
    await call(client, "post", draw, 404, "not_found", id=fcfs, headers=ADMIN)
    await call(client, "get", proof, 404, "not_found", id=fcfs)
    await call(client, "get", listed, 409, "not_drawn", id=fcfs)
    later = await create(client, mode="lottery", opens_at=rfc3339(60), closes_at=rfc3339(3600))
    await call(client, "post", entries, 425, "not_open", id=later, json={}, headers=buyer("a"))
    await call(client, "get", me, 200, id=later, headers=buyer("a"))


@needs_jsonschema
async def test_webhook_bodies_conform(client: TestClient, redis: Redis) -> None:
    """Every kind of event, made by the real scripts, and sent as a webhook body."""
    fcfs = await create(client, supply=3)
    purchase = "/v1/drops/{id}/purchase"
    kept = await call(client, "post", purchase, 201, id=fcfs, json={}, headers=buyer("a"))
    freed = await call(client, "post", purchase, 201, id=fcfs, json={}, headers=buyer("b"))
    confirm, cancel = "/v1/orders/{order_id}/confirm", "/v1/orders/{order_id}/cancel"
    await call(client, "post", confirm, 200, order_id=kept["order_id"], headers=ADMIN)
    await call(client, "post", cancel, 200, order_id=freed["order_id"], headers=ADMIN)
    await call(client, "post", "/v1/drops/{id}/close", 200, id=fcfs, headers=ADMIN)
    queued = await create(client, fair_start_seconds=60)
    await call(client, "post", purchase, 202, id=queued, json={}, headers=buyer("a"))
    lottery = await create(client, mode="lottery", supply=1, closes_at=rfc3339(3600))
    for person in ("p1", "p2"):
        await call(client, "post", "/v1/drops/{id}/entries", 202, id=lottery, headers=buyer(person))
    await call(client, "post", "/v1/drops/{id}/close", 200, id=lottery, headers=ADMIN)
    await call(client, "post", "/v1/drops/{id}/draw", 200, id=lottery, headers=ADMIN)

    kinds = set()
    for drop_id in (fcfs, queued, lottery):
        for entry_id, fields in await redis.xrange(drop_keys(drop_id).events):
            body = orjson.loads(message_of(drop_id, entry_id.decode(), fields).body)
            validate(body, "#/components/schemas/WebhookEvent")
            kinds.add(body["type"])
    documented = set(DOC["components"]["schemas"]["WebhookEvent"]["properties"]["type"]["enum"])
    # All but "expired", which only the sweeper makes (the same fields as "cancelled").
    assert kinds == documented - {"expired"}
