"""TLS listeners and IPv6 (issue 13, R61-R62, R70): "listen" as a list, TLS 1.2 at least, HSTS,
a renewed certificate picked up by SIGHUP without dropping an open websocket, a bad one
refused while the old one keeps serving, and a listener on [::1]. Certificates are made by
the openssl CLI in the test."""
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import unittest

from acdmtest import AcdmTestCase, WsClient, base_config, wait_until


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def make_cert(folder, name, days=30, cn="localhost", key=None):
    """A self-signed EC certificate (and key, unless key names an existing one) by the openssl CLI."""
    cert = os.path.join(folder, name + ".crt")
    keyf = key or os.path.join(folder, name + ".key")
    cmd = ["openssl", "req", "-x509", "-sha256", "-days", str(days), "-subj", "/CN=" + cn,
           "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1", "-out", cert]
    if key:
        cmd += ["-key", key]
    else:
        cmd += ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", keyf]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    return cert, keyf


def make_expired(folder, key, out):
    """A certificate for key that expired in 2020: openssl ca -selfsign with fixed dates."""
    ca = os.path.join(folder, "ca-" + os.path.basename(out))
    os.makedirs(ca)
    with open(os.path.join(ca, "index.txt"), "w"):
        pass
    with open(os.path.join(ca, "serial"), "w") as f:
        f.write("01\n")
    with open(os.path.join(ca, "ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n"
                "default_md = sha256\npolicy = p\nunique_subject = no\n[p]\ncommonName = supplied\n")
    run = lambda *a: subprocess.run(list(a), cwd=ca, check=True, capture_output=True, timeout=60)
    run("openssl", "req", "-new", "-key", key, "-subj", "/CN=localhost", "-out", "r.csr")
    run("openssl", "ca", "-batch", "-config", "ca.cnf", "-selfsign", "-keyfile", key, "-in", "r.csr",
        "-out", out, "-startdate", "20200101000000Z", "-enddate", "20200102000000Z", "-notext")
    return out


def client_ctx(cafile=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def https(port, path, ctx, host="127.0.0.1", token=None):
    c = http.client.HTTPSConnection(host, port, context=ctx, timeout=15)
    c.request("GET", path, headers={"Authorization": "Bearer " + token} if token else {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


def served_cert(port, host="127.0.0.1"):
    with socket.create_connection((host, port), timeout=10) as s:
        with client_ctx().wrap_socket(s, server_hostname="localhost") as t:
            return t.getpeercert(binary_form=True)


def pem_der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


class Tls(AcdmTestCase):
    def setUp(self):
        super().setUp()
        self.certs = os.path.join(self.tmp, "certs")
        os.makedirs(self.certs)
        # the served files, as certbot's live/ folder: renewed in place
        self.cert, self.key = make_cert(self.certs, "live")
        self.tls_port = free_port()
        self.v6_port = free_port(socket.AF_INET6, "::1")
        self.v6_tls_port = free_port(socket.AF_INET6, "::1")
        tls = {"cert_file": self.cert, "key_file": self.key}
        cfg = base_config(self.empty_plugin_dir(), listen=[
            "127.0.0.1:8080",   # the first listener: the harness's --listen 127.0.0.1:0 replaces it
            {"address": "127.0.0.1:%d" % self.tls_port, "tls": tls},
            {"address": "[::1]:%d" % self.v6_port},
            {"address": "[::1]:%d" % self.v6_tls_port, "tls": tls},
        ])
        self.d = self.daemon(cfg)

    def test_tls12_minimum_and_modern_ciphers(self):
        # a client that would speak TLS 1.0/1.1 (old ciphers allowed on its side) is refused
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.check_hostname = False
        old.verify_mode = ssl.CERT_NONE
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        try:
            old.set_ciphers("ALL:@SECLEVEL=0")
        except ssl.SSLError:
            pass
        with self.assertRaises((ssl.SSLError, ConnectionResetError, OSError)):
            https(self.tls_port, "/api/v1/health", old)
        # TLS 1.2 works, with a forward-secret AEAD cipher; the default client gets TLS 1.3
        t12 = client_ctx(self.cert)
        t12.maximum_version = ssl.TLSVersion.TLSv1_2
        with socket.create_connection(("127.0.0.1", self.tls_port), timeout=10) as s:
            with t12.wrap_socket(s, server_hostname="localhost") as t:
                self.assertEqual(t.version(), "TLSv1.2")
                name = t.cipher()[0]
                self.assertTrue(name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name), name)
        # a TLS 1.2 client offering only CBC/RSA-kx ciphers is refused
        cbc = client_ctx()
        cbc.maximum_version = ssl.TLSVersion.TLSv1_2
        cbc.set_ciphers("AES128-SHA:AES256-SHA:ECDHE-RSA-AES128-SHA")
        with self.assertRaises((ssl.SSLError, ConnectionResetError, OSError)):
            https(self.tls_port, "/api/v1/health", cbc)
        with socket.create_connection(("127.0.0.1", self.tls_port), timeout=10) as s:
            with client_ctx(self.cert).wrap_socket(s, server_hostname="localhost") as t:
                self.assertEqual(t.version(), "TLSv1.3")

    def test_hsts_on_tls_only(self):
        status, h, body = https(self.tls_port, "/api/v1/health", client_ctx(self.cert))
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["status"], "ok")
        sts = h.get("strict-transport-security", "")
        self.assertIn("max-age=", sts, h)
        self.assertGreaterEqual(int(sts.split("max-age=")[1].split()[0].strip(";")), 15552000)
        # also on the UI's files and on an error
        self.assertIn("strict-transport-security", https(self.tls_port, "/", client_ctx(self.cert))[1])
        st, h404, _ = https(self.tls_port, "/api/v1/berichten/nope", client_ctx(self.cert), token=self.d.admin_token)
        self.assertEqual(st, 404)
        self.assertIn("strict-transport-security", h404)
        # the plain listener does not send it (HSTS over HTTP is meaningless and ignored)
        r = self.d.request("GET", "/api/v1/health", token=None)
        self.assertNotIn("strict-transport-security", {k.lower() for k in r.headers})
        # plain HTTP on the TLS port gets no answer in clear
        with socket.create_connection(("127.0.0.1", self.tls_port), timeout=5) as s:
            s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                data = s.recv(4096)
            except (ConnectionResetError, socket.timeout):
                data = b""
            self.assertNotIn(b"200 OK", data)

    def test_ipv6_loopback(self):
        c = http.client.HTTPConnection("::1", self.v6_port, timeout=10)
        c.request("GET", "/api/v1/queues", headers={"Authorization": "Bearer " + self.d.admin_token})
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(r.read())["queues"][0]["name"], "algemeen")
        # TLS on [::1] too, and an agent's websocket over it
        status, _, _ = https(self.v6_tls_port, "/api/v1/health", client_ctx(self.cert), host="::1")
        self.assertEqual(status, 200)
        tok = self.d.token("agent", "agent1")
        ws = WsClient("::1", self.v6_tls_port, "/ws?token=" + tok, ssl_context=client_ctx(self.cert))
        self.sockets.append(ws)
        self.assertEqual(ws.expect("hello", 10)["agent"]["id"], "agent1")
        self.assertIn("listening on https://[::1]:%d/" % self.v6_tls_port, self.d.stderr())

    def test_rotation_under_open_websocket(self):
        d = self.d
        tok = d.token("agent", "agent1")
        ws = WsClient("127.0.0.1", self.tls_port, "/ws?token=" + tok, ssl_context=client_ctx(self.cert))
        self.sockets.append(ws)
        ws.expect("hello", 10)
        self.assertEqual(ws.request({"type": "login"})["type"], "ack")
        old_der = ws.peer_cert
        self.assertEqual(old_der, pem_der(self.cert))

        # renewal in place (a new key too, as certbot does by default), then SIGHUP
        new_cert, new_key = make_cert(self.certs, "renewed", days=90, cn="localhost")
        os.replace(new_key, self.key)
        os.replace(new_cert, self.cert)
        d.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "serving the renewed certificate" in d.stderr(), 10,
                   what="the renewal logged")
        # a new connection sees the new certificate
        self.assertEqual(served_cert(self.tls_port), pem_der(self.cert))
        self.assertEqual(served_cert(self.v6_tls_port, "::1"), pem_der(self.cert))
        # the open websocket is still up and works over its old session
        self.assertEqual(ws.request({"type": "ready"})["type"], "ack")
        self.assertEqual(d.agent("agent1")["state"], "ready")
        bid = d.post_bericht({"queue": "algemeen", "kind": "chat", "from": "+31600000009"}).json["id"]
        ws.expect("offer", 5, bericht=bid)

        # a bad renewal: expired certificate -> refused, the current one keeps serving
        current = pem_der(self.cert)
        exp = make_expired(self.certs, self.key, os.path.join(self.certs, "exp.crt"))
        with open(exp, "rb") as f, open(self.cert, "wb") as g:
            g.write(f.read())
        r = d.request("POST", "/api/v1/reload")
        self.assertEqual(r.status, 422, r)
        self.assertIn("expired", r.json["detail"], r.json)
        self.assertEqual(served_cert(self.tls_port), current)
        # a key that does not belong to the certificate -> refused by SIGHUP as well
        other, _ = make_cert(self.certs, "other")
        os.replace(other, self.cert)
        d.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "does not belong to the certificate" in d.stderr()
                   or "key values mismatch" in d.stderr(), 10, what="the mismatch refused")
        self.assertEqual(served_cert(self.tls_port), current)
        status, _, _ = https(self.tls_port, "/api/v1/health", client_ctx())
        self.assertEqual(status, 200)
        self.assertEqual(ws.request({"type": "not_ready", "reason": "pauze"})["type"], "ack")


class TlsConfig(AcdmTestCase):
    def check(self, listen):
        cfg = base_config(self.empty_plugin_dir(), listen=listen)
        d = self.daemon(cfg, start=False)
        p = subprocess.run([d_bin(), "--check", "-c", d.config_path], capture_output=True, text=True, timeout=60)
        for pat in ("AddressSanitizer", "LeakSanitizer", "runtime error"):
            self.assertNotIn(pat, p.stderr)
        return p.returncode, p.stdout + p.stderr

    def test_clear_errors(self):
        rc, out = self.check([{"address": "127.0.0.1:8443", "tls": {"cert_file": "/nonexistent.pem"}}])
        self.assertNotEqual(rc, 0)
        self.assertIn('listen[0].tls.cert_file: cannot read "/nonexistent.pem"', out)
        self.assertIn('listen[0].tls: missing required key "key_file"', out)
        rc, out = self.check([{"address": "127.0.0.1:8443", "tsl": {}}])
        self.assertIn('unknown key "tsl" (did you mean "tls"?)', out)
        rc, out = self.check(["127.0.0.1:8443", "127.0.0.1:8443"])
        self.assertIn("both use 127.0.0.1 port 8443", out)
        rc, out = self.check([])
        self.assertIn("listen: is empty", out)
        rc, out = self.check("127.0.0.1:8081")
        self.assertEqual(rc, 0, out)

    def test_expired_certificate_refuses_start(self):
        certs = os.path.join(self.tmp, "c")
        os.makedirs(certs)
        _, key = make_cert(certs, "x")
        cert = make_expired(certs, key, os.path.join(certs, "expired.crt"))
        cfg = base_config(self.empty_plugin_dir(), listen=[
            "127.0.0.1:8080", {"address": "127.0.0.1:%d" % free_port(), "tls": {"cert_file": cert, "key_file": key}}])
        d = self.daemon(cfg, start=False)
        rc, out = d.start_refused()
        self.assertNotEqual(rc, 0)
        self.assertIn("tls: the certificate %s expired on" % cert, out)


def d_bin():
    from acdmtest import ACDMD
    return ACDMD


if __name__ == "__main__":
    unittest.main()
