"""fake_graph -- a contract fake of Meta's WhatsApp Cloud API (Graph API) for the whatsapp
channel's tests and benchmark: Meta's service cannot run here. Standard library only.

It follows the published contract (developers.facebook.com/docs/whatsapp/cloud-api):
  POST /{version}/{phone-number-id}/messages   bearer required (else 401 + error 190);
      {"messaging_product":"whatsapp","to"|"recipient":..,"type":"text"|"template",..}
      -> 200 {"messaging_product":"whatsapp","contacts":[{"input","wa_id"}],"messages":[{"id":"wamid..."}]}
      errors -> {"error":{"message","type","code","error_data":{"messaging_product","details"},"fbtrace_id"}}
      templates checked against the fake's own list: 132001 unknown, 132000 parameter count
  GET /{version}/{media-id}   bearer -> {"messaging_product","url","mime_type","sha256","file_size","id"}
      the url is short-lived (expires_s); GET url with the bearer -> the bytes, 404 once expired
And the webhook side Meta plays: sign(body) = "sha256=" + hex HMAC-SHA256(app secret, raw body);
payload builders for messages and statuses in Meta's shape.

Programmable: fail_next(code, http=400, times=1) answers the next sends with an error;
expire_first_url makes the first URL of a media id already expired; media[id] = (bytes, mime,
sha256-or-None-for-the-real-one)."""
import hashlib
import hmac
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

ERRORS = {
    130429: "Rate limit hit", 131056: "(Business Account, Consumer Account) pair rate limit hit",
    131026: "Message undeliverable", 131047: "Re-engagement message",
    132000: "Number of parameters does not match the expected number of params",
    132001: "Template name does not exist in the translation", 190: "Invalid OAuth access token",
}


def sign(secret, body):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def envelope(values, phone_number_id="1234567890", waba="102290129340398"):
    """A webhook body: one entry per list of change values."""
    return {"object": "whatsapp_business_account",
            "entry": [{"id": waba, "changes": [{"field": "messages", "value": dict(
                {"messaging_product": "whatsapp",
                 "metadata": {"display_phone_number": "31850000000", "phone_number_id": phone_number_id}}, **v)}
                for v in vs]} for vs in values]}


def message_value(wa_id, name, msgs, user_id=None):
    c = {"profile": {"name": name}, "wa_id": wa_id}
    if user_id:
        c["user_id"] = user_id
    return {"contacts": [c], "messages": msgs}


def text_msg(wa_id, wamid, body, ts=None, **extra):
    m = {"from": wa_id, "id": wamid, "timestamp": str(int(ts if ts is not None else time.time())),
         "type": "text", "text": {"body": body}}
    m.update(extra)
    return m


def status_value(wamid, status, recipient, code=None):
    s = {"id": wamid, "status": status, "timestamp": str(int(time.time())), "recipient_id": recipient}
    if code:
        s["errors"] = [{"code": code, "title": ERRORS.get(code, "error"), "message": ERRORS.get(code, "error"),
                        "error_data": {"details": "details of %d" % code}}]
    return {"statuses": [s]}


class FakeGraph:
    def __init__(self, token, templates=None, expires_s=300):
        self.token = token
        self.templates = templates or {}          # (name, language) -> parameter count
        self.expires_s = expires_s
        self.sent = []                            # (path, body dict, authorization) of every send
        self.requests = []                        # (method, path, authorization)
        self.media = {}                           # id -> (bytes, mime, sha256 or None)
        self.urls = {}                            # token -> (media id, expires_at)
        self.expire_first_url = set()
        self.failures = []                        # [code, http, times]
        self.media_delay = 0.0                    # seconds before a media download answers
        self.lock = threading.Lock()
        fake = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def reply(self, status, obj=None, raw=None, ctype="application/json"):
                data = raw if raw is not None else json.dumps(obj).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass                          # the client (a killed acdmd) went away

            def error(self, code, http=400, details=None):
                self.reply(http, {"error": {"message": "(#%d) %s" % (code, ERRORS.get(code, "error")),
                                            "type": "OAuthException", "code": code,
                                            "error_data": {"messaging_product": "whatsapp",
                                                           "details": details or ERRORS.get(code, "error")},
                                            "fbtrace_id": "A" + secrets.token_hex(8)}})

            def authed(self):
                return self.headers.get("Authorization") == "Bearer " + fake.token

            def do_GET(self):
                u = urlparse(self.path)
                with fake.lock:
                    fake.requests.append(("GET", self.path, self.headers.get("Authorization")))
                if not self.authed():
                    return self.error(190, 401)
                parts = u.path.strip("/").split("/")
                if parts[0] == "media" and len(parts) == 2:
                    tok = parse_qs(u.query).get("t", [""])[0]
                    with fake.lock:
                        mid, exp = fake.urls.get(tok, (None, 0))
                    if mid != parts[1] or time.time() > exp:
                        return self.reply(404, raw=b"URL signature expired", ctype="text/plain")
                    if fake.media_delay:
                        time.sleep(fake.media_delay)
                    data, mime, _ = fake.media[mid]
                    return self.reply(200, raw=data, ctype=mime)
                if len(parts) == 2 and parts[1] in fake.media:
                    data, mime, sha = fake.media[parts[1]]
                    tok = secrets.token_hex(8)
                    exp = time.time() + fake.expires_s
                    with fake.lock:
                        if parts[1] in fake.expire_first_url:
                            fake.expire_first_url.discard(parts[1])
                            exp = 0
                        fake.urls[tok] = (parts[1], exp)
                    host = self.headers.get("Host")
                    return self.reply(200, {"messaging_product": "whatsapp",
                                            "url": "http://%s/media/%s?t=%s" % (host, parts[1], tok),
                                            "mime_type": mime, "sha256": sha or hashlib.sha256(data).hexdigest(),
                                            "file_size": len(data), "id": parts[1]})
                return self.error(100, 400, "Unsupported get request")

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                with fake.lock:
                    fake.requests.append(("POST", self.path, self.headers.get("Authorization")))
                if not self.authed():
                    return self.error(190, 401)
                parts = urlparse(self.path).path.strip("/").split("/")
                if len(parts) != 3 or parts[2] != "messages":
                    return self.error(100, 400, "Unsupported post request")
                try:
                    body = json.loads(raw)
                except ValueError:
                    return self.error(100, 400, "Invalid JSON")
                with fake.lock:
                    fake.sent.append((self.path, body, self.headers.get("Authorization")))
                    fail = None
                    if fake.failures:
                        fail = fake.failures[0]
                        fail[2] -= 1
                        if fail[2] <= 0:
                            fake.failures.pop(0)
                if fail:
                    return self.error(fail[0], fail[1])
                to = body.get("to") or body.get("recipient")
                if body.get("messaging_product") != "whatsapp" or not to:
                    return self.error(100, 400, "messaging_product and to are required")
                if body.get("type") == "text":
                    if not (body.get("text") or {}).get("body"):
                        return self.error(100, 400, "text.body is required")
                elif body.get("type") == "template":
                    t = body.get("template") or {}
                    key = (t.get("name"), (t.get("language") or {}).get("code"))
                    if key not in fake.templates:
                        return self.error(132001)
                    params = sum(len(c.get("parameters", [])) for c in t.get("components", []) if c.get("type") == "body")
                    if params != fake.templates[key]:
                        return self.error(132000)
                else:
                    return self.error(100, 400, "type not supported by the fake")
                wamid = "wamid." + secrets.token_hex(12)
                self.reply(200, {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                                 "messages": [{"id": wamid}]})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def fail_next(self, code, http=400, times=1):
        with self.lock:
            self.failures.append([code, http, times])

    def sends(self):
        with self.lock:
            return list(self.sent)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
