"""The log for journald and log shippers (docs/operations.md "Logs"): `log_format: "json"` (or
--log-format json) writes one JSON object a line with the text log's fields (time, level, who,
message); a message with quotes and newlines stays one parseable line. Under systemd
($JOURNAL_STREAM naming acdmd's stderr) every line carries its syslog priority as "<N>", which
journald turns into the entry's PRIORITY."""
import copy
import json
import os
import re
import signal

from acdmtest import AcdmTestCase, base_config, wait_until


class LogFormat(AcdmTestCase):
    def lines(self, d):
        return [l for l in d.stderr().splitlines() if l.strip()]

    def assert_all_json(self, d):
        out = []
        for l in self.lines(d):
            try:
                j = json.loads(l)
            except ValueError as e:
                self.fail("not a JSON line (%s): %r" % (e, l))
            self.assertEqual(sorted(j), ["level", "msg", "priority", "ts", "who"], j)
            self.assertRegex(j["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$", j)
            self.assertIn(j["level"], ("error", "warn", "notice", "info", "debug"), j)
            self.assertEqual(j["priority"], 3 + ["error", "warn", "notice", "info", "debug"].index(j["level"]), j)
            out.append(j)
        return out

    def test_json_from_config_same_fields_and_escaped(self):
        cfg = base_config(self.empty_plugin_dir(), log_format="json")
        d = self.daemon(cfg)
        lines = self.assert_all_json(d)
        listen = [j for j in lines if "listening on http://" in j["msg"]]
        self.assertEqual(len(listen), 1, lines)
        self.assertEqual((listen[0]["who"], listen[0]["level"]), ("core", "notice"))
        # a refused reload: a message with quotes and a newline, still one JSON line
        bad = copy.deepcopy(cfg)
        bad["queues"][0]["strategy"] = "fast\"est"
        d.write_config(bad)
        d.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "reload rejected" in d.stderr(), 10, what="the refusal in the log")
        rej = [j for j in self.assert_all_json(d) if j["msg"].startswith("reload rejected")]
        self.assertEqual(len(rej), 1)
        self.assertEqual(rej[0]["level"], "error")
        self.assertIn('unknown strategy "fast"est"', rej[0]["msg"])   # as the text log says it
        self.assertIn("\n", rej[0]["msg"])   # the config error on its own line, as in the text log

    def test_flag_overrides_config_and_bad_value_refused(self):
        cfg = base_config(self.empty_plugin_dir(), log_format="text")
        d = self.daemon(cfg, start=False)
        d.extra_args = ["--log-format", "json"]
        d.start()
        self.assertTrue(any("listening on" in j["msg"] for j in self.assert_all_json(d)))
        d.stop()
        bad = base_config(self.empty_plugin_dir(), log_format="xml")
        d2 = self.daemon(bad, start=False)
        d2.extra_args = ["--check"]
        rc, err = d2.start_refused()
        self.assertEqual(rc, 1)
        self.assertIn('log_format: unknown log format "xml" (expected text or json)', err)

    def test_text_log_under_journald_carries_priorities(self):
        d = self.daemon(start=False)
        # JOURNAL_STREAM as systemd sets it: the device and inode of the stream on stderr
        path = os.path.join(self.tmp, "acdmd0-run1.stderr")
        open(path, "wb").close()
        st = os.stat(path)
        d.env = {"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)}
        d.start()
        lines = self.lines(d)
        listen = [l for l in lines if "listening on" in l]
        self.assertEqual(len(listen), 1, lines)
        self.assertRegex(listen[0], r"^<5>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} NOT \[core\] acdmd ")
        for l in lines:
            self.assertRegex(l, r"^<[3-7]>", l)
        # another stream (stderr redirected away from the journal): no prefixes
        d.stop()
        d.env = {"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino + 1)}
        d.start()
        self.assertFalse(any(re.match(r"^<\d>", l) for l in self.lines(d)))
