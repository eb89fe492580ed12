"""OpenID Connect sign-in against the real daemon: JWTs signed with the openssl CLI (RS256 and
ES256), the key set as a file and served over HTTP (refresh on an unknown kid), refusals
logged with their reason, websocket sign-in with ?token=<JWT>, and the failed-sign-in limit
(429 with Retry-After after more than 10 failures from one address within 60 s)."""
import base64
import http.client
import http.server
import json
import os
import re
import subprocess
import threading
import time

from acdmtest import AcdmTestCase, base_config, wait_until, WsClosed

ISS = "https://login.microsoftonline.com/00000000-tenant/v2.0"
AUD = "api://acdm-test"
ROLE_MAP = {"ACDM.Admin": "admin", "ACDM.Supervisor": "supervisor", "ACDM.Agent": "agent"}


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _der_int(d, i):
    assert d[i] == 2
    n = d[i + 1]
    return int.from_bytes(d[i + 2:i + 2 + n], "big"), i + 2 + n


def sign(alg, kid, claims, key_pem, header_extra=None):
    """A JWT signed by `openssl dgst -sha256 -sign` (ES256: DER converted to R || S)."""
    h = {"alg": alg, "typ": "JWT", "kid": kid}
    h.update(header_extra or {})
    si = b64(json.dumps(h, separators=(",", ":")).encode()) + "." + \
        b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_pem], input=si.encode(),
                         capture_output=True, check=True).stdout
    if alg == "ES256":
        i = 2 if sig[1] < 0x80 else 3
        r, i = _der_int(sig, i)
        s, _ = _der_int(sig, i)
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return si + "." + b64(sig)


def _pkey_text(pem):
    return subprocess.run(["openssl", "pkey", "-in", pem, "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout


def jwk_rsa(pem, kid):
    t = _pkey_text(pem)
    m = re.search(r"modulus:\s*((?:[0-9a-f:\s])+)publicExponent: (\d+)", t)
    n = bytes.fromhex(re.sub(r"[\s:]", "", m.group(1))).lstrip(b"\0")
    e = int(m.group(2))
    return {"kty": "RSA", "use": "sig", "kid": kid, "n": b64(n),
            "e": b64(e.to_bytes((e.bit_length() + 7) // 8, "big"))}


def jwk_ec(pem, kid):
    t = _pkey_text(pem)
    m = re.search(r"pub:\s*((?:[0-9a-f:\s])+)ASN1 OID", t)
    pub = bytes.fromhex(re.sub(r"[\s:]", "", m.group(1)))
    assert pub[0] == 4 and len(pub) == 65
    return {"kty": "EC", "crv": "P-256", "kid": kid, "x": b64(pub[1:33]), "y": b64(pub[33:])}


def genkey(path, ec=False):
    args = ["openssl", "genpkey", "-out", path]
    args += ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"] if ec else \
        ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
    subprocess.run(args, capture_output=True, check=True)
    return path


def claims(role, who=None, **kw):
    now = int(time.time())
    c = {"iss": ISS, "aud": AUD, "iat": now, "nbf": now - 5, "exp": now + 600, "roles": [role]}
    if who:
        c["preferred_username"] = who
    c.update(kw)
    return c


class KeyServer:
    """Serves a JWKS at http://127.0.0.1:PORT/keys and counts the fetches."""

    def __init__(self, jwks):
        self.jwks = jwks
        self.hits = 0
        srv = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                srv.hits += 1
                body = json.dumps(srv.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d/keys" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class OidcTest(AcdmTestCase):
    def setUp(self):
        super().setUp()
        self.rsa = genkey(os.path.join(self.tmp, "rsa.pem"))
        self.ec = genkey(os.path.join(self.tmp, "ec.pem"), ec=True)
        self.other = genkey(os.path.join(self.tmp, "other.pem"))
        self.jwks = {"keys": [jwk_rsa(self.rsa, "rsa1"), jwk_ec(self.ec, "ec1")]}
        self.jwks_file = os.path.join(self.tmp, "jwks.json")
        with open(self.jwks_file, "w") as f:
            json.dump(self.jwks, f)

    def config(self, **oidc):
        o = {"issuer": ISS, "audience": AUD, "jwks_file": self.jwks_file, "role_map": ROLE_MAP}
        o.update(oidc)
        return base_config(self.empty_plugin_dir(), oidc={k: v for k, v in o.items() if v is not None})

    def test_jwt_sign_in_rest_and_websocket(self):
        d = self.daemon(self.config())
        admin = sign("RS256", "rsa1", claims("ACDM.Admin", "jan@gemeente.nl"), self.rsa)
        r = d.request("GET", "/api/v1/agents", token=admin)
        self.assertEqual(r.status, 200, r)
        sup = sign("ES256", "ec1", claims("ACDM.Supervisor", "sanne@gemeente.nl"), self.ec)
        self.assertEqual(d.request("GET", "/api/v1/queues", token=sup).status, 200)
        self.assertProblem(d.request("POST", "/api/v1/reload", token=sup), 403, "role supervisor")
        # an agent signs in with a JWT naming a configured agent; REST role checks apply
        agent = sign("ES256", "ec1", claims("ACDM.Agent", "agent1"), self.ec)
        self.assertProblem(d.request("GET", "/api/v1/agents", token=agent), 403, "role agent")
        ws = d.ws(agent)
        self.sockets.append(ws)
        hello = ws.expect("hello", 10)
        self.assertEqual(hello["agent"]["id"], "agent1")
        self.assertEqual(ws.request({"type": "login"})["type"], "ack")
        # the audit log names the JWT's user as the actor
        self.assertEqual(d.request("POST", "/api/v1/queues/algemeen/close", token=sup).status, 200)
        wait_until(lambda: any(i["action"] == "queue_close" for i in
                               d.get_json("/api/v1/audit", token=admin)["items"]), 10, what="audit entry")
        item = [i for i in d.get_json("/api/v1/audit")["items"] if i["action"] == "queue_close"][0]
        self.assertEqual((item["actor"], item["role"], item["target"]),
                         ("sanne@gemeente.nl", "supervisor", "algemeen"))
        # API tokens keep working beside OIDC
        self.assertEqual(d.request("GET", "/api/v1/agents").status, 200)

    def test_auth_config_for_the_browser(self):
        d = self.daemon(base_config(self.empty_plugin_dir()))
        r = d.request("GET", "/api/v1/auth/config", token=None)
        self.assertEqual((r.status, r.json), (200, {"oidc": None}))
        # an oidc block without the browser sign-in: still null; with it, what the page needs
        d.stop()
        d = self.daemon(self.config())
        self.assertEqual(d.request("GET", "/api/v1/auth/config", token=None).json, {"oidc": None})
        d.write_config(self.config(authorization_endpoint="https://idp.example/authorize",
                                   token_endpoint="https://idp.example/token", client_id="c1",
                                   use_token="access_token"))
        self.assertEqual(d.request("POST", "/api/v1/reload").status, 200)
        r = d.request("GET", "/api/v1/auth/config", token=None)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json, {"oidc": {"authorization_endpoint": "https://idp.example/authorize",
                                             "token_endpoint": "https://idp.example/token", "client_id": "c1",
                                             "scope": "openid profile", "issuer": ISS,
                                             "use_token": "access_token"}})

    def test_refusals_are_logged_with_their_reason(self):
        d = self.daemon(self.config())
        now = int(time.time())
        cases = [
            ("expired", sign("RS256", "rsa1", claims("ACDM.Admin", "x", exp=now - 3600, nbf=now - 7200), self.rsa)),
            ("not_yet_valid", sign("RS256", "rsa1", claims("ACDM.Admin", "x", nbf=now + 3600), self.rsa)),
            ("issuer", sign("RS256", "rsa1", claims("ACDM.Admin", "x", iss="https://evil.example/v2.0"), self.rsa)),
            ("audience", sign("RS256", "rsa1", claims("ACDM.Admin", "x", aud=["api://other"]), self.rsa)),
            ("signature", sign("RS256", "rsa1", claims("ACDM.Admin", "x"), self.other)),
            ("unknown_kid", sign("RS256", "rsa9", claims("ACDM.Admin", "x"), self.rsa)),
            ("alg", b64(b'{"alg":"none","typ":"JWT"}') + "." +
             b64(json.dumps(claims("ACDM.Admin", "x")).encode()) + "."),
            ("malformed", "eyJhbGciOiJSUzI1NiJ9!.e30.c2ln"),
            ("role", sign("RS256", "rsa1", claims("Guest", "x"), self.rsa)),
            ("agent", sign("ES256", "ec1", claims("ACDM.Agent", "nobody"), self.ec)),
        ]
        for reason, tok in cases:
            r = d.request("GET", "/api/v1/queues", token=tok)
            self.assertProblem(r, 401, "bearer token")
            self.assertEqual(r.headers.get("www-authenticate"), "Bearer")
            wait_until(lambda: "token refused (%s)" % reason in d.stderr(), 5,
                       what="the log line for %s" % reason)
        # a refused JWT on the websocket: the upgrade is refused
        with self.assertRaises((WsClosed, AssertionError, OSError)):
            ws = d.ws(cases[0][1])
            self.sockets.append(ws)
            ws.expect("hello", 3)

    def test_session_ends_when_its_jwt_expires(self):
        """A websocket opened with a JWT lasts until exp + leeway: then an error token_expired
        and close code 4001 (agent and supervisor alike); the agent's work stays for the
        reconnect grace period. leeway_s counts: with 2 s, a token of exp now+2 lasts ~4 s."""
        d = self.daemon(self.config(leeway_s=0))
        now = int(time.time())
        tok = sign("ES256", "ec1", claims("ACDM.Agent", "agent1", exp=now + 3), self.ec)
        sup_tok = sign("RS256", "rsa1", claims("ACDM.Supervisor", "sanne", exp=now + 3), self.rsa)
        ws = d.ws(tok)
        sup = d.ws(sup_tok)
        self.sockets += [ws, sup]
        ws.expect("hello", 10)
        sup.expect("hello", 10)
        self.assertEqual(ws.request({"type": "login"})["type"], "ack")
        err = ws.expect("error", 8, code="token_expired")
        self.assertGreaterEqual(time.time(), now + 2)
        self.assertEqual((err["re"], err["bericht"]), (None, None), err)
        self.assertEqual(ws.expect_close(), (4001, "token expired"))
        sup.expect("error", 5, code="token_expired")
        self.assertEqual(sup.expect_close(), (4001, "token expired"))
        self.assertEqual(d.agent("agent1")["state"], "not_ready")   # grace period: still logged in
        # an API token's session has no expiry
        ws2 = self.agent_ws(d, "agent2", ready=False)
        ws2.expect_none("error", 1.5)

        # the leeway extends it
        d.write_config(self.config(leeway_s=2))
        self.assertEqual(d.request("POST", "/api/v1/reload").status, 200)
        t0 = time.time()
        ws3 = d.ws(sign("ES256", "ec1", claims("ACDM.Agent", "agent1", exp=int(t0) + 1), self.ec))
        self.sockets.append(ws3)
        ws3.expect("hello", 10)
        ws3.expect("error", 8, code="token_expired")
        self.assertGreaterEqual(time.time() - t0, 2.0)
        self.assertEqual(ws3.expect_close(), (4001, "token expired"))

    def test_reauth_extends_the_session_for_the_same_identity_only(self):
        d = self.daemon(self.config(leeway_s=0))
        now = int(time.time())
        ws = d.ws(sign("ES256", "ec1", claims("ACDM.Agent", "agent1", exp=now + 3), self.ec))
        self.sockets.append(ws)
        ws.expect("hello", 10)
        self.assertEqual(ws.request({"type": "login"})["type"], "ack")
        self.assertEqual(ws.request({"type": "ready"})["type"], "ack")
        bid = d.post_bericht({"queue": "algemeen", "kind": "chat", "from": "+31600000001", "text": "Hallo"}).json["id"]
        ws.expect("offer", 10, bericht=bid)
        self.assertEqual(ws.request({"type": "accept", "bericht": bid})["type"], "ack")

        # refused: another agent's token, an agent token for a supervisor-role claim, garbage, none
        other = sign("ES256", "ec1", claims("ACDM.Agent", "agent2", exp=now + 600), self.ec)
        err = ws.request({"type": "reauth", "token": other})
        self.assertEqual((err["type"], err["code"], err["re"]), ("error", "forbidden", "reauth"), err)
        self.assertIn("agent2", err["text"])
        sup = sign("RS256", "rsa1", claims("ACDM.Supervisor", "agent1", exp=now + 600), self.rsa)
        self.assertEqual(ws.request({"type": "reauth", "token": sup})["code"], "forbidden")
        self.assertEqual(ws.request({"type": "reauth", "token": "a.b.c"})["code"], "forbidden")
        self.assertEqual(ws.request({"type": "reauth"})["code"], "invalid")
        api_tok_agent2 = d.token("agent", "agent2")
        self.assertEqual(ws.request({"type": "reauth", "token": api_tok_agent2})["code"], "forbidden")

        # a fresh token of the same agent before exp: acked with the new expiry, the session and
        # the work in hand go on past the old exp
        fresh = sign("ES256", "ec1", claims("ACDM.Agent", "agent1", exp=now + 600), self.ec)
        ack = ws.request({"type": "reauth", "token": fresh})
        self.assertEqual((ack["type"], ack["re"], ack["bericht"]), ("ack", "reauth", None), ack)
        self.assertEqual(ack["expires_ms"], (now + 600) * 1000)
        ws.expect_none("error", max(0.0, now + 5 - time.time()))
        self.assertEqual(ws.request({"type": "message", "bericht": bid, "text": "Goedemiddag"})["type"], "ack")
        self.assertEqual(d.agent("agent1")["work"][0]["bericht"], bid)

        # reauth after the close is too late: the session is gone, sign in again
        ws2 = d.ws(sign("ES256", "ec1", claims("ACDM.Agent", "agent1", exp=int(time.time()) + 2), self.ec))
        self.sockets.append(ws2)
        ws2.expect("hello", 10)
        ws2.expect("error", 6, code="token_expired")
        self.assertEqual(ws2.expect_close(), (4001, "token expired"))

    def test_bad_jwks_file_refused_at_start_and_reload(self):
        d = self.daemon(self.config())
        with open(self.jwks_file, "w") as f:
            f.write('{"keys": [{"kty": "RSA", "kid": "k", "n": "!!", "e": "AQAB"}]}')
        self.assertProblem(d.request("POST", "/api/v1/reload"), 422, "oidc.jwks_file", "keys[0].n: not base64url")
        # the running key set stays
        tok = sign("RS256", "rsa1", claims("ACDM.Admin", "x"), self.rsa)
        self.assertEqual(d.request("GET", "/api/v1/queues", token=tok).status, 200)
        d.stop()
        d.start(expect_ok=False)
        wait_until(lambda: not d.alive(), 30, what="acdmd to refuse the start")
        self.assertIn("oidc.jwks_file", d.stderr())
        d.proc.wait()
        d.proc = None
        d.err_file.close()

    def test_jwks_url_fetched_and_refreshed_on_unknown_kid(self):
        srv = KeyServer({"keys": [self.jwks["keys"][0]]})      # rsa1 only
        self.addCleanup(srv.close)
        d = self.daemon(self.config(jwks_file=None, jwks_url=srv.url))
        self.assertEqual(srv.hits, 1)                           # fetched before serving
        tok = sign("RS256", "rsa1", claims("ACDM.Admin", "x"), self.rsa)
        self.assertEqual(d.request("GET", "/api/v1/queues", token=tok).status, 200)
        # the issuer rotates in a new key: the first token with that kid triggers a refresh
        srv.jwks = self.jwks
        ec_tok = sign("ES256", "ec1", claims("ACDM.Supervisor", "y"), self.ec)
        self.assertEqual(d.request("GET", "/api/v1/queues", token=ec_tok).status, 401)
        wait_until(lambda: srv.hits == 2, 10, what="a refresh of the key set")
        wait_until(lambda: d.request("GET", "/api/v1/queues", token=ec_tok).status == 200, 10,
                   what="the new key to be used")
        # another unknown kid within the minute: no second refresh (rate-limited)
        bad = sign("RS256", "rsa7", claims("ACDM.Admin", "x"), self.rsa)
        self.assertEqual(d.request("GET", "/api/v1/queues", token=bad).status, 401)
        time.sleep(1.0)
        self.assertEqual(srv.hits, 2)


class FailedSignInLimit(AcdmTestCase):
    def _get(self, d, token, source="127.0.0.1"):
        c = http.client.HTTPConnection(d.host, d.port, timeout=10, source_address=(source, 0))
        c.request("GET", "/api/v1/queues", headers={"Authorization": "Bearer " + token})
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body

    def test_more_than_ten_failures_get_429(self):
        d = self.daemon()
        for i in range(10):
            st, _, _ = self._get(d, "wrong-token-%d" % i)
            self.assertEqual(st, 401)
        st, _, _ = self._get(d, "wrong-token-10")     # the 11th failure within 60 s
        self.assertEqual(st, 401)
        st, h, body = self._get(d, "wrong-token-11")
        self.assertEqual(st, 429)
        self.assertTrue(h["content-type"].startswith("application/problem+json"))
        self.assertIn("too many failed sign-ins", json.loads(body)["detail"])
        self.assertTrue(1 <= int(h["retry-after"]) <= 60, h)
        # the address is refused even with a valid token, REST and websocket alike
        st, h, _ = self._get(d, d.admin_token)
        self.assertEqual(st, 429)
        with self.assertRaises((WsClosed, AssertionError, OSError)):
            ws = d.ws(d.admin_token)
            self.sockets.append(ws)
            ws.expect("hello", 3)
        # another address is not affected
        st, _, _ = self._get(d, d.admin_token, source="127.0.0.2")
        self.assertEqual(st, 200)
        self.assertIn("failed sign-ins from 127.0.0.1", d.stderr())
