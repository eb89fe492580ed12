"""fake_twilio -- a contract fake of a Twilio-compatible Messages API for the sms channel's tests
(provider twilio). Standard library only. The contract (twilio.com/docs/messaging/api,
twilio.com/docs/usage/webhooks/webhooks-security):
  POST /2010-04-01/Accounts/{AccountSid}/Messages.json   HTTP Basic AccountSid:AuthToken
      form To, From, Body (<= 1600 characters), StatusCallback
      -> 201 {"sid":"SM..","status":"queued","to","from","body",..}
      errors -> 4xx {"code":..,"message":..,"more_info":..,"status":..}; 21610 for a recipient who
      sent STOP; 20003 for bad credentials (401)
  Webhooks (inbound messages, status callbacks) are form posts signed X-Twilio-Signature =
  base64(HMAC-SHA1(AuthToken, url + name1 + value1 + ... sorted by name)).
"""
import base64
import hashlib
import hmac
import json
import secrets
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def signature(token, url, params):
    s = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), s.encode(), hashlib.sha1).digest()).decode()


def post_signed(url, token, params, sign_url=None, bad=False, missing=False):
    """A webhook as Twilio sends it; returns (status, content type, body)."""
    body = urllib.parse.urlencode(params).encode()
    req = urllib.request.Request(url, data=body, method="POST")
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    if not missing:
        sig = signature(token, sign_url or url, params)
        if bad:
            sig = signature(token + "x", sign_url or url, params)
        req.add_header("X-Twilio-Signature", sig)
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


class FakeTwilio:
    def __init__(self, sid, token):
        self.sid, self.token = sid, token
        self.sent = []                 # (form dict, authorization)
        self.unsubscribed = set()      # numbers that sent STOP to Twilio
        self.media = {}                # path -> (bytes, content type): MediaUrl{n} of inbound MMS
        self.lock = threading.Lock()
        fake = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def reply(self, status, obj):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def error(self, status, code, msg):
                self.reply(status, {"code": code, "message": msg, "more_info": "https://www.twilio.com/docs/errors/%d" % code,
                                    "status": status})

            def do_GET(self):
                want = "Basic " + base64.b64encode(("%s:%s" % (fake.sid, fake.token)).encode()).decode()
                if self.headers.get("Authorization") != want:
                    return self.error(401, 20003, "Authenticate")
                if self.path not in fake.media:
                    return self.error(404, 20404, "The requested resource was not found")
                data, ctype = fake.media[self.path]
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n).decode()
                want = "Basic " + base64.b64encode(("%s:%s" % (fake.sid, fake.token)).encode()).decode()
                if self.headers.get("Authorization") != want:
                    return self.error(401, 20003, "Authenticate")
                if self.path != "/2010-04-01/Accounts/%s/Messages.json" % fake.sid:
                    return self.error(404, 20404, "The requested resource was not found")
                form = {k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}
                with fake.lock:
                    fake.sent.append((form, self.headers.get("Authorization")))
                if not form.get("To") or not form.get("From"):
                    return self.error(400, 21604, "A 'To' phone number is required.")
                if not form.get("Body"):
                    return self.error(400, 21602, "Message body is required.")
                if len(form["Body"]) > 1600:
                    return self.error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
                if form["To"] in fake.unsubscribed:
                    return self.error(400, 21610, "Attempt to send to unsubscribed recipient")
                sid = "SM" + secrets.token_hex(16)
                self.reply(201, {"sid": sid, "status": "queued", "to": form["To"], "from": form["From"],
                                 "body": form["Body"], "num_segments": "1", "account_sid": fake.sid,
                                 "api_version": "2010-04-01", "error_code": None, "error_message": None})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def sends(self):
        with self.lock:
            return list(self.sent)

    def status_callback(self, form, status, error_code=None):
        """Twilio's status callback for a message it accepted (signed like every webhook)."""
        params = {"MessageSid": "SM" + secrets.token_hex(16), "MessageStatus": status, "AccountSid": self.sid,
                  "To": form["To"], "From": form["From"], "ApiVersion": "2010-04-01"}
        if error_code:
            params["ErrorCode"] = str(error_code)
        return post_signed(form["StatusCallback"], self.token, params)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
