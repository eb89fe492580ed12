"""Static checks of docs/openapi.yaml against core/api/api.c (starts nothing).

Run from the repository root:
    python3 -m unittest tests/integration/test_openapi.py
Needs PyYAML (Debian: python3-yaml).
"""
import glob
import json
import os
import re
import sys
import unittest

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DOC = os.path.join(ROOT, "docs", "openapi.yaml")
API_C = os.path.join(ROOT, "core", "api", "api.c")

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
ROUTE_RE = re.compile(r'acdm_http_route\(\s*\w+\s*,\s*"([A-Z]+)"\s*,\s*"([^"]+)"')


def load_doc():
    with open(DOC, encoding="utf-8") as f:
        return yaml.safe_load(f)


def code_routes():
    """(METHOD, /path/{param}) pairs registered in core/api/*.c (api.c, api_*.c, metrics.c...)."""
    src = ""
    for path in sorted(glob.glob(os.path.join(ROOT, "core", "api", "*.c"))):
        with open(path, encoding="utf-8") as f:
            src += f.read() + "\n"
    # ignore commented-out calls; string and character literals are kept whole (a prefix
    # route's pattern ends in "/*", a URL has "//", '"' is no string)
    src = re.sub(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])+\'|/\*.*?\*/|//[^\n]*',
                 lambda m: m.group(0) if m.group(0)[0] in "\"'" else "", src, flags=re.S)
    routes = set()
    for method, path in ROUTE_RE.findall(src):
        # acdm_http patterns write parameters as {name}, as OpenAPI does; accept a
        # :name spelling too and strip blanks inside braces
        path = re.sub(r":([A-Za-z_][A-Za-z0-9_]*)", r"{\1}", path)
        path = re.sub(r"\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}", r"{\1}", path)
        routes.add((method.upper(), path))
    return routes


def doc_routes(doc):
    routes = set()
    for path, item in (doc.get("paths") or {}).items():
        for key in item:
            if key in METHODS:
                # x-acdm-route: the pattern the code registers when it is not the path itself
                # (a prefix route, e.g. an address that may contain '/')
                routes.add((key.upper(), item[key].get("x-acdm-route", path)))
    return routes


def resolve(doc, ref):
    if not ref.startswith("#/"):
        raise KeyError("only local references are used: %s" % ref)
    node = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            raise KeyError(ref)
        node = node[part]
    return node


def all_refs(node, where="#"):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield where, v
            else:
                yield from all_refs(v, where + "/" + str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from all_refs(v, "%s/%d" % (where, i))


class OpenApiDocument(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.doc = load_doc()

    def test_version(self):
        self.assertIsInstance(self.doc, dict)
        self.assertRegex(str(self.doc.get("openapi")), r"^3\.0\.\d+$")
        self.assertIn("title", self.doc.get("info", {}))
        self.assertIn("version", self.doc.get("info", {}))

    def test_operations_have_responses(self):
        paths = self.doc.get("paths")
        self.assertTrue(paths, "no paths")
        for path, item in paths.items():
            ops = [k for k in item if k in METHODS]
            self.assertTrue(ops, "%s: no operations" % path)
            for m in ops:
                resp = item[m].get("responses")
                self.assertTrue(resp, "%s %s: no responses" % (m.upper(), path))
                for status in resp:
                    self.assertRegex(str(status), r"^([1-5][0-9X]{2}|default)$",
                                     "%s %s: bad status %r" % (m.upper(), path, status))

    def test_path_parameters_declared(self):
        for path, item in self.doc["paths"].items():
            names = set(re.findall(r"\{([^}]+)\}", path))
            for m in (k for k in item if k in METHODS):
                declared = set()
                for p in item.get("parameters", []) + item[m].get("parameters", []):
                    if "$ref" in p:
                        p = resolve(self.doc, p["$ref"])
                    if p.get("in") == "path":
                        declared.add(p["name"])
                        self.assertTrue(p.get("required"), "%s: path parameter %s not required" % (path, p["name"]))
                self.assertEqual(names, declared, "%s %s: path parameters" % (m.upper(), path))

    def test_refs_resolve(self):
        refs = list(all_refs(self.doc))
        self.assertTrue(refs, "no $ref at all")
        for where, ref in refs:
            try:
                resolve(self.doc, ref)
            except KeyError:
                self.fail("%s: unresolved $ref %s" % (where, ref))


class OpenApiMatchesCode(unittest.TestCase):
    def test_routes_equal(self):
        code = code_routes()
        self.assertTrue(code, "no acdm_http_route calls found in core/api/api.c")
        doc = doc_routes(load_doc())
        undocumented = sorted(code - doc)
        stale = sorted(doc - code)
        self.assertFalse(undocumented, "routes in core/api/api.c missing from docs/openapi.yaml: %s" % undocumented)
        self.assertFalse(stale, "routes in docs/openapi.yaml that core/api/api.c does not register: %s" % stale)


class WebhookRoutesInTheDescription(unittest.TestCase):
    """The description lists the reference webhook plugin's routes; each one it names as a
    route the plugin serves must be registered in channels/webhook/webhook.c (issue 9: the
    documented GET /channels/<instance>/messages/<id> did not exist)."""

    def test_named_webhook_routes_exist(self):
        desc = load_doc()["info"]["description"]
        part = desc[desc.index("reference `webhook` plugin"):]
        part = part[:part.index("**Agent websocket.**")]
        named = set()
        for method, path in re.findall(r"`(GET|POST|PUT|DELETE) /channels/<instance>(/[^`\s]*)`", part):
            named.add((method, path))
        self.assertIn(("POST", "/messages"), named, part)
        with open(os.path.join(ROOT, "channels", "webhook", "webhook.c"), encoding="utf-8") as f:
            src = f.read()
        served = set(re.findall(r'http_route\(\s*inst\s*,\s*"([A-Z]+)"\s*,\s*"([^"]+)"', src))
        for method, path in sorted(named):
            pat = re.sub(r"<[^>]+>", "*", path)
            ok = (method, path) in served or any(
                m == method and (p == pat or (p.endswith("*") and pat.startswith(p[:-1])))
                for m, p in served)
            self.assertTrue(ok, "docs/openapi.yaml names %s /channels/<instance>%s, which the webhook "
                                "plugin does not serve (it serves %s)" % (method, path, sorted(served)))
        # the denial is stated, not a route
        self.assertIn("There is no `GET .../messages/<id>`", part)


class ResponseValidator(unittest.TestCase):
    """The validator every integration test's client runs on every response
    (tests/integration/openapi_check.py) finds what a drifting document hides."""

    H = {"content-type": "application/json"}

    def check(self, method, path, status, body, headers=None):
        import openapi_check
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return openapi_check.check(method, path, status, headers or self.H, raw)

    def test_a_null_where_the_document_says_string_is_named(self):
        v = self.check("GET", "/api/v1/berichten/x", 200, {"id": None})
        self.assertTrue(any("body.id: null where the document says string" in x for x in v), v)

    def test_a_missing_required_field_is_named(self):
        v = self.check("POST", "/api/v1/berichten", 201, {"outcome": "queued"})
        self.assertTrue(any("required field 'id' missing" in x for x in v), v)

    def test_a_true_reply_passes(self):
        v = self.check("POST", "/api/v1/berichten", 201,
                       {"id": "0190f7a2-5c1e-7a3b-9d4e-2f1a0b3c4d5e", "state": "queued",
                        "queue": "algemeen", "kind": "chat", "channel": "api",
                        "created_ms": 1, "queued_ms": 1, "outcome": "queued"})
        self.assertEqual(v, [])

    def test_a_value_outside_the_enum_is_named(self):
        v = self.check("POST", "/api/v1/berichten", 201, {"id": "x", "outcome": "maybe"})
        self.assertTrue(any("'maybe' is not one of" in x for x in v), v)

    def test_an_undocumented_route_and_status_are_named(self):
        v = self.check("GET", "/api/v1/no-such-thing", 200, {})
        self.assertTrue(any("undocumented route" in x for x in v), v)
        v = self.check("POST", "/api/v1/berichten", 299, {})
        self.assertTrue(any("status 299 is not documented" in x for x in v), v)

    def test_an_undocumented_content_type_is_named(self):
        v = self.check("GET", "/api/v1/health", 200, b"ok", {"content-type": "text/html"})
        self.assertTrue(any("Content-Type 'text/html' is not documented" in x for x in v), v)

    def test_paths_outside_the_api_are_not_judged(self):
        self.assertEqual(self.check("GET", "/agent.js", 200, b"x", {"content-type": "text/javascript"}), [])


class OpenApi30(unittest.TestCase):
    """The document says openapi 3.0.3: a type is one name, null is `nullable: true` (a 3.1-style
    list such as [integer, 'null'] is not 3.0 and made the response validator refuse every health
    answer)."""

    def test_no_type_lists(self):
        bad = []

        def walk(node, where):
            if isinstance(node, dict):
                if isinstance(node.get("type"), list):
                    bad.append(where)
                for k, v in node.items():
                    walk(v, where + "/" + str(k))
            elif isinstance(node, list):
                for i, v in enumerate(node):
                    walk(v, "%s[%d]" % (where, i))
        walk(load_doc(), "")
        self.assertEqual(bad, [], "type lists are OpenAPI 3.1; use type + nullable: true")


if __name__ == "__main__":
    unittest.main()
