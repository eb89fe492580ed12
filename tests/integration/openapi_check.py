"""Validates real responses against docs/openapi.yaml (the test client calls it on every
response it gets from acdmd), so the document cannot drift from the server.

What is checked, for a request whose path is under a documented prefix (/api/, /metrics):
- the path and method match an operation of the document (else: "undocumented route");
- the status is one the operation lists, or one the HTTP layer answers for every route
  (the list in info.description: 400 401 404 405 408 411 413 414 429 431, and 503 for a
  route that writes), or "default";
- a JSON body is valid against the response's schema (OpenAPI 3.0 subset: type, nullable,
  properties, required, additionalProperties, items, enum, allOf/oneOf/anyOf, $ref, format
  date-time, minimum/maximum, pattern, minItems/maxItems);
- the Content-Type is one the response documents.

Violations raise AssertionError naming the route, status and the JSON path of the mismatch;
ACDM_OPENAPI_REPORT=FILE appends them to FILE instead (for surveying a whole run).
Needs PyYAML (Debian: python3-yaml), already a test dependency.
"""
import datetime
import json
import os
import re
import threading
import urllib.parse

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DOC_PATH = os.path.join(ROOT, "docs", "openapi.yaml")
CHECKED_PREFIXES = ("/api/", "/metrics")
GENERIC_STATUSES = {"400", "401", "404", "405", "408", "411", "413", "414", "429", "431"}
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}

_lock = threading.Lock()
_doc = None
_ops = None


def _load():
    global _doc, _ops
    with _lock:
        if _doc is None:
            with open(DOC_PATH, encoding="utf-8") as f:
                _doc = yaml.safe_load(f)
            ops = []
            for path, item in (_doc.get("paths") or {}).items():
                params = item.get("parameters", [])
                for m, op in item.items():
                    if m not in METHODS:
                        continue
                    route = op.get("x-acdm-route", path)
                    if route.endswith("/*"):
                        rx = re.escape(route[:-1]) + ".*"
                    else:
                        rx = re.sub(r"\\\{[A-Za-z_][A-Za-z0-9_]*\\\}", "[^/]+", re.escape(path))
                    # literal segments first: /berichten/outbound before /berichten/{id}
                    literal = len(re.sub(r"\{[^}]*\}", "", path))
                    ops.append((m.upper(), re.compile(rx + r"\Z"), literal, path, op, params))
            ops.sort(key=lambda o: -o[2])
            _ops = ops
    return _doc, _ops


def _resolve(ref):
    doc, _ = _load()
    if not ref.startswith("#/"):
        raise AssertionError("openapi: only local references are supported: %s" % ref)
    node = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _deref(node):
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        node = _resolve(node["$ref"])
        seen += 1
        if seen > 20:
            raise AssertionError("openapi: reference loop")
    return node


_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}


def _errors(schema, value, where, out, depth=0):
    """Appends human-readable mismatches of value against schema to out."""
    if depth > 60:
        return
    schema = _deref(schema)
    if not isinstance(schema, dict) or not schema:
        return
    if value is None:
        t = schema.get("type")
        if schema.get("nullable") or t == "null" or (isinstance(t, list) and "null" in t):
            return
        if "type" in schema or "properties" in schema or "enum" in schema:
            out.append("%s: null where the document says %s" % (where, schema.get("type", "a value")))
            return
    for sub in schema.get("allOf", []):
        _errors(sub, value, where, out, depth + 1)
    for key in ("oneOf", "anyOf"):
        if key in schema:
            tries = []
            for sub in schema[key]:
                e = []
                _errors(sub, value, where, e, depth + 1)
                tries.append(e)
            ok = sum(1 for e in tries if not e)
            if ok == 0:
                out.append("%s: matches none of %s (%s)" % (
                    where, key, "; ".join(e[0] for e in tries if e)))
            elif key == "oneOf" and ok > 1 and not schema.get("x-acdm-any"):
                pass    # overlapping alternatives are tolerated: the doc lists shapes, not a proof
    t = schema.get("type")
    if isinstance(t, list):
        if not any(_TYPES.get(x, lambda v: True)(value) for x in t):
            out.append("%s: %s where the document says %s" % (where, _kind(value), "/".join(t)))
            return
    elif t:
        check = _TYPES.get(t)
        if check and not check(value):
            out.append("%s: %s %s where the document says %s" % (
                where, _kind(value), _short(value), t))
            return
    if "enum" in schema and value not in schema["enum"]:
        out.append("%s: %r is not one of %r" % (where, value, schema["enum"]))
    if isinstance(value, str):
        fmt = schema.get("format")
        if fmt == "date-time" and not _is_datetime(value):
            out.append("%s: %r is not an RFC 3339 date-time" % (where, value))
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append("%s: %r does not match %s" % (where, value, schema["pattern"]))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            out.append("%s: %r below minimum %r" % (where, value, schema["minimum"]))
        if "maximum" in schema and value > schema["maximum"]:
            out.append("%s: %r above maximum %r" % (where, value, schema["maximum"]))
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            out.append("%s: %d items, fewer than %d" % (where, len(value), schema["minItems"]))
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            out.append("%s: %d items, more than %d" % (where, len(value), schema["maxItems"]))
        items = schema.get("items")
        if items is not None:
            for i, v in enumerate(value[:200]):
                _errors(items, v, "%s[%d]" % (where, i), out, depth + 1)
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for req in schema.get("required", []):
            if req not in value:
                out.append("%s: required field %r missing" % (where, req))
        for k, v in value.items():
            if k in props:
                _errors(props[k], v, "%s.%s" % (where, k), out, depth + 1)
            else:
                ap = schema.get("additionalProperties", True)
                if ap is False:
                    out.append("%s: field %r is not in the document" % (where, k))
                elif isinstance(ap, dict):
                    _errors(ap, v, "%s.%s" % (where, k), out, depth + 1)


def _kind(v):
    return "null" if v is None else type(v).__name__


def _short(v):
    s = json.dumps(v, ensure_ascii=False)
    return s if len(s) <= 60 else s[:57] + "..."


def _is_datetime(s):
    try:
        datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
        return "T" in s
    except ValueError:
        return False


def find_operation(method, path):
    _, ops = _load()
    p = urllib.parse.urlsplit(path).path
    found_path = False
    for m, rx, _, doc_path, op, params in ops:
        if rx.match(p):
            found_path = True
            if m == method or (method == "HEAD" and m == "GET"):
                return doc_path, op
    return (None, "method") if found_path else (None, None)


def check(method, path, status, headers, body):
    """Validates one response; returns the list of violations (empty: true to the document)."""
    p = urllib.parse.urlsplit(path).path
    if not p.startswith(CHECKED_PREFIXES):
        return []
    doc_path, op = find_operation(method, p)
    if doc_path is None:
        if op == "method" and status == 405:
            return []
        if status in (404, 405, 414, 431, 400):   # the HTTP layer's answer for a path no route has
            return []
        return ["%s %s -> %d: undocumented route" % (method, p, status)]
    where = "%s %s -> %d" % (method, doc_path, status)
    responses = op.get("responses", {})
    code = str(status)
    resp = responses.get(code) or responses.get(code[0] + "XX")
    if resp is None:
        # 503 "Not stored": any route that writes, when the store cannot commit (info.description)
        generic = code in GENERIC_STATUSES or (code == "503" and method in ("POST", "PUT", "DELETE", "PATCH"))
        if generic or "default" in responses:
            resp = responses.get("default") or {"content": {"application/problem+json": {
                "schema": {"$ref": "#/components/schemas/Problem"}}}}
        else:
            return ["%s: status %s is not documented (documented: %s)" % (
                where, code, ", ".join(sorted(responses)))]
    resp = _deref(resp)
    content = resp.get("content")
    if not content or not body or method == "HEAD":
        return []
    ctype = headers.get("content-type", "").split(";")[0].strip().lower()
    bare = {k.split(";")[0].strip().lower(): v for k, v in content.items()}
    media = bare.get(ctype)
    if media is None:
        wild = [k for k in bare if k == "*/*" or (k.endswith("/*") and ctype.startswith(k[:-1]))]
        media = bare[wild[0]] if wild else None
    if media is None:
        return ["%s: Content-Type %r is not documented (documented: %s)" % (
            where, ctype, ", ".join(content))]
    schema = media.get("schema")
    if not schema or "json" not in ctype:
        return []
    try:
        value = json.loads(body.decode("utf-8"))
    except ValueError as e:
        return ["%s: body is not JSON (%s)" % (where, e)]
    out = []
    _errors(schema, value, "body", out)
    return ["%s: %s" % (where, e) for e in out[:20]]


def enforce(method, path, status, headers, body):
    """check(), then raise AssertionError (or append to $ACDM_OPENAPI_REPORT)."""
    problems = check(method, path, status, headers, body)
    if not problems:
        return
    report = os.environ.get("ACDM_OPENAPI_REPORT")
    if report:
        with _lock, open(report, "a", encoding="utf-8") as f:
            for line in problems:
                f.write(line + "\n")
        return
    raise AssertionError("response not true to docs/openapi.yaml:\n  " + "\n  ".join(problems))
