"""Supervisor reports (GET /api/v1/reports, R28) against the real acdmd: a day of work (one
bericht answered and completed with a topic, a quick drop, one abandoned, the agent not ready
with a reason) read back per queue, channel, agent and topic as JSON, CSV and xlsx (a zip whose
sheets hold the same figures) and PDF; supervisors and admins only; bad parameters are a 400 naming the
parameter; the daily export for BI tools (reports.daily_export_dir, R29) writes yesterday's files;
the weekly mail (reports.mail, R66) reaches a real SMTP peer on loopback with the reports attached."""
import csv
import datetime
import io
import json
import os
import email
import email.policy
import re
import shutil
import socketserver
import subprocess
import threading
import time
import zipfile
import xml.etree.ElementTree as ET
from zoneinfo import ZoneInfo

from acdmtest import ACDMD, AcdmTestCase, PLUGINS, base_config, wait_until, WEBHOOK_TOKEN, webhook_channel

NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


def xlsx_sheets(data):
    """{sheet name: [[cell text or number, ...], ...]} of an xlsx file (inline or shared strings)."""
    z = zipfile.ZipFile(io.BytesIO(data))
    names = z.namelist()
    shared = []
    if "xl/sharedStrings.xml" in names:
        for si in ET.fromstring(z.read("xl/sharedStrings.xml")).findall("m:si", NS):
            shared.append("".join(t.text or "" for t in si.iter("{%s}t" % NS["m"])))
    wb = ET.fromstring(z.read("xl/workbook.xml"))
    out = {}
    for i, sh in enumerate(wb.find("m:sheets", NS).findall("m:sheet", NS), 1):
        rows = []
        for row in ET.fromstring(z.read("xl/worksheets/sheet%d.xml" % i)).iter("{%s}row" % NS["m"]):
            cells = []
            for c in row.findall("m:c", NS):
                col = re.match(r"[A-Z]+", c.get("r")).group(0)
                idx = 0
                for ch in col:
                    idx = idx * 26 + ord(ch) - 64
                while len(cells) < idx - 1:
                    cells.append(None)
                t = c.get("t")
                if t == "inlineStr":
                    cells.append("".join(x.text or "" for x in c.iter("{%s}t" % NS["m"])))
                elif t == "s":
                    cells.append(shared[int(c.find("m:v", NS).text)])
                else:
                    v = c.find("m:v", NS)
                    cells.append(float(v.text) if v is not None else None)
            rows.append(cells)
        out[sh.get("name")] = rows
    return out


class SmtpSink(socketserver.ThreadingTCPServer):
    """A minimal SMTP server on loopback that keeps every message it is given (no TLS, no auth)."""
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self):
        self.messages = []

        class Handler(socketserver.StreamRequestHandler):
            def handle(h):
                h.wfile.write(b"220 sink ESMTP\r\n")
                env = {"rcpt": []}
                while True:
                    line = h.rfile.readline()
                    if not line:
                        return
                    cmd = line.decode("ascii", "replace").strip()
                    up = cmd.upper()
                    if up.startswith("EHLO") or up.startswith("HELO"):
                        h.wfile.write(b"250-sink\r\n250 8BITMIME\r\n")
                    elif up.startswith("MAIL FROM:"):
                        env["from"] = cmd[10:].strip()
                        h.wfile.write(b"250 ok\r\n")
                    elif up.startswith("RCPT TO:"):
                        env["rcpt"].append(cmd[8:].strip())
                        h.wfile.write(b"250 ok\r\n")
                    elif up == "DATA":
                        h.wfile.write(b"354 go on\r\n")
                        data = []
                        while True:
                            l = h.rfile.readline()
                            if l in (b".\r\n", b".\n", b""):
                                break
                            data.append(l[1:] if l.startswith(b"..") else l)
                        env["data"] = b"".join(data)
                        self.messages.append(dict(env))
                        h.wfile.write(b"250 queued\r\n")
                    elif up == "QUIT":
                        h.wfile.write(b"221 bye\r\n")
                        return
                    else:
                        h.wfile.write(b"250 ok\r\n")

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


class Reports(AcdmTestCase):
    def start(self, **top):
        pdir = self.empty_plugin_dir()
        shutil.copy(os.path.join(PLUGINS, "webhook.so"), pdir)
        cfg = base_config(pdir, channels=[webhook_channel("web1")],
                          **top)
        cfg["queues"][0].update({"sl_seconds": 20, "quick_drop_s": 2, "wrapup_s": 0})
        cfg["queues"].append({"name": "vergunningen", "title": "Vergunningen"})
        self.d = self.daemon(cfg)
        return self.d

    def webhook(self, text, mid):
        return self.d.webhook_message(text, mid)

    def end(self, bid):
        self.d.webhook_end(bid)

    def report(self, query, token):
        return self.d.request("GET", "/api/v1/reports?" + query, token=token)

    def test_a_day_of_work_in_every_format(self):
        d = self.start()
        sup = d.token("supervisor", "petra")
        agent = self.agent_ws(d, "agent1")
        b1 = self.webhook("Mijn paspoort is verlopen", "m1")
        agent.expect("offer", 5, bericht=b1)
        self.assertEqual(agent.request({"type": "accept", "bericht": b1})["type"], "ack")
        time.sleep(1.1)
        self.assertEqual(agent.request({"type": "complete", "bericht": b1, "topics": ["Paspoort"]})["type"], "ack")
        agent.expect("done", 5, bericht=b1)
        self.assertEqual(agent.request({"type": "not_ready", "reason": "pauze"})["type"], "ack")
        self.end(self.webhook("Hallo?", "m2"))              # a quick drop
        b3 = self.webhook("Is er iemand?", "m3")
        time.sleep(2.3)
        self.end(b3)                                        # abandoned after the quick-drop time

        # per queue, today in one daily interval: what the supervisor saw live
        def queues():
            r = self.report("kind=queues&period=day&interval=1d", sup)
            self.assertEqual(r.status, 200, r)
            return r.json
        j = wait_until(lambda: (lambda j: j if j["totals"][0]["abandoned"] == 1 else None)(queues()), 5,
                       what="the abandon in the report")
        self.assertEqual((j["kind"], j["period"], j["interval"], j["timezone"]), ("queues", "day", "1d", "Europe/Amsterdam"))
        self.assertEqual([t["queue"] for t in j["totals"]], ["algemeen", "vergunningen"])
        self.assertEqual(len(j["rows"]), 2)
        alg = j["totals"][0]
        self.assertEqual({k: alg[k] for k in ("offered", "answered", "abandoned", "quick_drops", "handled",
                                              "transfers", "answered_in_sl", "service_level_pct")},
                         {"offered": 3, "answered": 1, "abandoned": 1, "quick_drops": 1, "handled": 1,
                          "transfers": 0, "answered_in_sl": 1, "service_level_pct": 50.0}, alg)
        self.assertGreaterEqual(alg["aht_s"], 1.0)
        self.assertGreaterEqual(alg["longest_wait_s"], 2.0)   # the abandon waited 2.3 s; the quick drop is left out
        self.assertLess(alg["longest_wait_s"], 10.0)
        self.assertEqual(j["rows"][0]["offered"], 3)
        self.assertTrue(j["from"].endswith(("+01:00", "+02:00")), j["from"])
        self.assertEqual(j["totals"][1]["service_level_pct"], None)   # nothing to measure

        # hourly: the same figures spread over 24 (23, 25) local hours per queue
        r = self.report("kind=queues&period=day", sup)
        self.assertEqual(r.json["interval"], "1h")
        self.assertIn(len(r.json["rows"]), (46, 48, 50))
        self.assertEqual(sum(x["offered"] for x in r.json["rows"] if x["queue"] == "algemeen"), 3)

        # CSV for tools (style=raw): the column names, a header and one line per interval and queue
        r = self.report("kind=queues&period=day&interval=1d&format=csv&style=raw", sup)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.content_type.startswith("text/csv"), r)
        self.assertIn("attachment", r.headers.get("content-disposition", ""))
        rows = list(csv.DictReader(io.StringIO(r.body.decode())))
        self.assertEqual([x["queue"] for x in rows], ["algemeen", "vergunningen"])
        self.assertEqual((rows[0]["offered"], rows[0]["quick_drops"], rows[0]["service_level_pct"]), ("3", "1", "50.0"))
        self.assertEqual(rows[1]["service_level_pct"], "")

        # CSV by default: for Dutch Excel, read as Excel reads it (a UTF-8 BOM says the encoding,
        # ';' separates the fields in a Dutch locale), the page's headers and values
        r = self.report("kind=queues&period=day&interval=1d&format=csv", sup)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.body.startswith(b"\xef\xbb\xbf"), r.body[:10])
        table = list(csv.reader(io.StringIO(r.body.decode("utf-8-sig")), delimiter=";"))
        self.assertEqual(table[0][:8], ["Van", "Tot", "Wachtrij", "Naam", "Aangeboden", "Beantwoord", "Afgebroken",
                                        "Snel opgehangen"])
        self.assertIn("Gem. afhandeltijd", table[0])
        self.assertIn("Agents nodig (Erlang C)", table[0])
        xl = dict(zip(table[0], table[1]))
        day = datetime.datetime.fromisoformat(j["rows"][0]["interval_start"])
        self.assertEqual(xl["Van"], day.strftime("%d-%m-%Y"))          # local time, as the page shows it
        self.assertEqual((xl["Wachtrij"], xl["Naam"], xl["Aangeboden"], xl["Afgebroken"], xl["Snel opgehangen"]),
                         ("algemeen", "Algemene vragen", "3", "1", "1"))
        self.assertEqual(xl["Service level"], "50,0%")                 # Dutch Excel reads 50,0% as 0.5
        aht = int(j["rows"][0]["aht_s"])                               # the page: m:ss of whole seconds
        self.assertEqual(xl["Gem. afhandeltijd"], "%d:%02d" % (aht // 60, aht % 60))
        self.assertEqual(dict(zip(table[0], table[2]))["Service level"], "")   # nothing to measure
        # English: the page's English headers, commas, no BOM (excel=true asks for ';' and a BOM)
        r = self.report("kind=queues&period=day&interval=1d&format=csv&lang=en", sup)
        en = list(csv.reader(io.StringIO(r.body.decode())))
        self.assertEqual(en[0][:5], ["From", "To", "Queue", "Title", "Offered"])
        self.assertEqual(dict(zip(en[0], en[1]))["Service level"], "50.0%")
        self.assertTrue(self.report("kind=queues&period=day&format=csv&lang=en&excel=true", sup).body.startswith(b"\xef\xbb\xbf"))
        bad = self.report("kind=queues&period=day&format=csv&lang=de", sup)
        self.assertEqual(bad.status, 400)
        self.assertIn("lang:", bad.json["detail"])

        # xlsx: a zip with the sheets Rapport (rows) and Totaal (totals), numbers as numbers
        r = self.report("kind=queues&period=day&interval=1d&format=xlsx", sup)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.content_type, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        sheets = xlsx_sheets(r.body)
        self.assertEqual(list(sheets), ["Rapport", "Totaal"])
        head = sheets["Rapport"][0]
        self.assertEqual(head[:5], ["interval_start", "interval_end", "queue", "title", "offered"])
        alg_row = dict(zip(head, sheets["Rapport"][1]))
        self.assertEqual((alg_row["queue"], alg_row["title"], alg_row["offered"], alg_row["abandoned"], alg_row["quick_drops"],
                          alg_row["service_level_pct"]), ("algemeen", "Algemene vragen", 3.0, 1.0, 1.0, 50.0), alg_row)
        self.assertEqual(dict(zip(head, sheets["Totaal"][2]))["queue"], "vergunningen")

        # PDF: printable, the figures as text on the page
        r = self.report("kind=queues&period=day&interval=1d&format=pdf", sup)
        self.assertEqual((r.status, r.content_type), (200, "application/pdf"), r)
        self.assertTrue(r.body.startswith(b"%PDF-"), r.body[:20])
        self.assertIn(b"(algemeen) Tj", r.body)
        self.assertIn(b"(50,0\\045) Tj", r.body)             # as the page: "50,0%" (libharu writes % as \045)
        self.assertIn(b"(Aangeboden) Tj", r.body)
        self.assertEqual(r.body.count(b"(Van) Tj"), 1)       # over the intervals, not in the totals
        # named by the local date of the day chosen (Europe/Amsterdam), not the UTC date of its
        # local midnight (the day before)
        day = datetime.datetime.fromisoformat(j["from"]).astimezone(ZoneInfo("Europe/Amsterdam")).date().isoformat()
        self.assertEqual(day, datetime.datetime.now(ZoneInfo("Europe/Amsterdam")).date().isoformat())
        self.assertEqual(r.headers.get("content-disposition", ""), 'attachment; filename="acdm-queues-%s-1d.pdf"' % day)
        r = self.report("kind=queues&from=2026-11-20&until=2026-11-21&interval=1h&format=csv", sup)
        self.assertIn('filename="acdm-queues-2026-11-20-1h.csv"', r.headers.get("content-disposition", ""))

        # per channel, agent and topic
        ch = self.report("kind=channels&period=day&interval=1d", sup).json
        web1 = [t for t in ch["totals"] if t["channel"] == "web1"][0]
        self.assertEqual((web1["offered"], web1["answered"], web1["abandoned"], web1["quick_drops"]), (3, 1, 1, 1), web1)
        ag = self.report("kind=agents&period=day&interval=1d", sup).json
        self.assertIn("not_ready_pauze_s", ag["columns"])
        a1 = [t for t in ag["totals"] if t["agent"] == "agent1"][0]
        self.assertEqual((a1["name"], a1["offered"], a1["accepted"], a1["handled"]), ("Anouk", 1, 1, 1), a1)
        self.assertGreaterEqual(a1["handle_time_s"], 1.0)
        self.assertGreater(a1["not_ready_pauze_s"], 0.0)     # still not ready: counted up to now
        self.assertGreater(a1["ready_s"], 0.0)
        tp = self.report("kind=topics&period=day&interval=1d", sup).json
        self.assertEqual([(t["topic"], t["count"]) for t in tp["totals"]], [("Paspoort", 1)])

        # acdmctl report: the same report straight from the store
        api_csv = self.report("kind=queues&period=day&interval=1d&format=csv", sup).body.decode()
        r = d.ctl("report", "--kind", "queues", "--period", "day", "--interval", "1d", "--format", "csv")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, api_csv.replace("\r\n", "\n"))   # (text mode reads CRLF as LF)
        xfile = os.path.join(self.tmp, "dag.xlsx")
        r = d.ctl("report", "--kind", "agents", "--period", "day", "--format", "xlsx", xfile)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Totaal", xlsx_sheets(open(xfile, "rb").read()))
        r = d.ctl("report", "--period", "day", "--interval", "5m")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--interval: expected 15m, 1h or 1d", r.stderr)

        # an admin may too; an agent may not
        self.assertEqual(self.report("kind=topics&period=day", "admin").status, 200)
        self.assertProblem(self.report("kind=queues&period=day", d.token("agent", "agent2")), 403)
        self.assertEqual(self.report("kind=queues&period=day", None).status, 401)

    def test_bad_parameters_name_the_parameter(self):
        d = self.start()
        sup = d.token("supervisor", "petra")
        for query, name in [("kind=calls&period=day", "kind"), ("period=year", "period"),
                            ("period=day&interval=5m", "interval"), ("period=quarter&interval=15m", "interval"),
                            ("period=day&format=docx", "format"), ("kind=queues", "from"),
                            ("from=gisteren", "from"), ("from=2026-11-02&until=2026-11-01", "until"),
                            ("period=day&until=2026-11-01", "until")]:
            self.assertProblem(self.report(query, sup), 400, name + ":")

    def test_daily_export_for_bi(self):
        out = os.path.join(self.tmp, "bi")
        d = self.start(reports={"daily_export_dir": out})
        # at start yesterday's files are written when they are missing (then once a day after midnight)
        y = (datetime.datetime.now(ZoneInfo("Europe/Amsterdam")).date() - datetime.timedelta(days=1)).isoformat()
        want = ["acdm-%s-%s.%s" % (k, y, ext) for k in ("queues", "channels", "agents", "topics") for ext in ("csv", "json")]
        wait_until(lambda: all(os.path.exists(os.path.join(out, f)) for f in want), 10, what="the daily export files")
        j = json.load(open(os.path.join(out, "acdm-queues-%s.json" % y)))
        self.assertEqual((j["kind"], j["period"], j["interval"]), ("queues", "day", "1h"))
        self.assertTrue(j["from"].startswith(y), j["from"])
        self.assertIn(len(j["rows"]), (46, 48, 50))         # two queues, hourly, yesterday in local time
        head = open(os.path.join(out, "acdm-queues-%s.csv" % y)).readline()
        self.assertTrue(head.startswith("interval_start,interval_end,queue,title,offered"), head)
        self.assertFalse([f for f in os.listdir(out) if f.startswith(".")])   # no temporary files left
        d.stop()

    def test_weekly_mail_with_the_reports_attached(self):
        sink = SmtpSink()
        self.addCleanup(sink.server_close)
        self.addCleanup(sink.shutdown)
        mail = {"smtp_url": "smtp://127.0.0.1:%d" % sink.server_address[1], "from": "acdm@gemeente.example",
                "to": "petra@gemeente.example, teamleider@gemeente.example"}
        d = self.start(reports={"mail": mail})
        # at start last week's reports go out when that week was not mailed yet
        wait_until(lambda: sink.messages, 20, what="the report mail")
        m = sink.messages[0]
        self.assertEqual(m["from"], "<acdm@gemeente.example>")
        self.assertEqual(m["rcpt"], ["<petra@gemeente.example>", "<teamleider@gemeente.example>"])
        msg = email.message_from_bytes(m["data"], policy=email.policy.default)
        monday = datetime.datetime.now(ZoneInfo("Europe/Amsterdam")).date()
        monday -= datetime.timedelta(days=monday.weekday() + 7)
        iso = monday.isocalendar()
        self.assertEqual(msg["Subject"], "acdm rapportage week %d-W%02d" % (iso[0], iso[1]))
        self.assertIn("petra@gemeente.example", msg["To"])
        self.assertIn("per wachtrij", msg.get_body(("plain",)).get_content())
        files = {p.get_filename(): p.get_content() for p in msg.iter_attachments()}
        want = ["acdm-%s-%s-week.xlsx" % (k, monday.isoformat()) for k in ("queues", "channels", "agents", "topics")]
        self.assertEqual(sorted(files), sorted(want))
        sheets = xlsx_sheets(files[want[0]])
        self.assertEqual(sheets["Rapport"][0][:3], ["interval_start", "interval_end", "queue"])
        self.assertEqual(len(sheets["Rapport"]), 1 + 7 * 2)     # 7 days x 2 queues
        self.assertTrue(sheets["Rapport"][1][0].startswith(monday.isoformat()), sheets["Rapport"][1])
        # the week is remembered: a restart sends nothing again
        d.stop()
        d.start()
        time.sleep(2.0)
        self.assertEqual(len(sink.messages), 1)

    def test_mail_with_a_password_needs_tls(self):
        sink = SmtpSink()                     # offers no STARTTLS
        self.addCleanup(sink.server_close)
        self.addCleanup(sink.shutdown)
        pw = os.path.join(self.tmp, "smtp.pw")
        with open(pw, "w") as f:
            f.write("geheim\n")
        d = self.start(reports={"mail": {"smtp_url": "smtp://127.0.0.1:%d" % sink.server_address[1],
                                         "from": "acdm@gemeente.example", "to": "petra@gemeente.example",
                                         "username": "acdm", "password_file": pw}})
        wait_until(lambda: "report mail weekly:" in d.stderr(), 20, what="the mail's log line")
        self.assertIn("tried again", d.stderr())
        self.assertEqual(sink.messages, [])   # nothing sent, the password never left in clear

    def test_mail_config_errors_name_the_key(self):
        d = self.daemon(base_config(self.empty_plugin_dir(), reports={"mail": {
            "smtp_url": "http://mail.example", "from": "acdm", "to": "a@example.nl, <b@example.nl>",
            "schedule": "daily"}}), start=False)
        out = subprocess.run([ACDMD, "--check", "-c", d.config_path], capture_output=True, text=True, timeout=60)
        self.assertNotEqual(out.returncode, 0)
        for want in ("reports.mail.smtp_url: invalid SMTP URL", "reports.mail.from: expected e-mail addresses",
                     "reports.mail.to: expected e-mail addresses", "reports.mail.schedule: expected \"weekly\" or \"monthly\""):
            self.assertIn(want, out.stderr + out.stdout)

