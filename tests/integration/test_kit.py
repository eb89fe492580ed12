"""Issue 8 section 3: the plugin kit as a third-party author uses it. `make install` into a temp
prefix installs <acdm/plugin.h>, <acdm/plugin_util.h>, the mock host and acdm-plugin.pc; the
template channel copied out of the tree builds with nothing but `pkg-config --cflags
acdm-plugin`, its unit test runs on the installed mock host, and the .so it built runs in the
real acdmd: a message acknowledged after the commit, an instance without a token refused."""
import os
import shutil
import subprocess
import unittest

from acdmtest import ACDMD, REPO, AcdmTestCase, base_config, wait_until

TOKEN = "kit-test-token-0123456789"


def run(cmd, cwd, env=None, timeout=300):
    e = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    e.update(env or {})
    return subprocess.run(cmd, cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout)


class PluginKit(AcdmTestCase):
    def test_install_build_out_of_tree_and_run(self):
        prefix = os.path.join(self.tmp, "prefix")
        r = run(["make", "-s", "install", "PREFIX=" + prefix], REPO, timeout=600)
        self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
        for f in ("include/acdm/plugin.h", "include/acdm/plugin_util.h", "include/acdm/mock_host.h",
                  "lib/libacdm-mock.a", "lib/pkgconfig/acdm-plugin.pc", "lib/pkgconfig/acdm-plugin-mock.pc",
                  "share/acdm/plugin-template/template.c", "share/acdm/plugin-template/Makefile",
                  "share/acdm/plugin-template/tests/test_template.c"):
            self.assertTrue(os.path.isfile(os.path.join(prefix, f)), f)
        pc = {"PKG_CONFIG_PATH": os.path.join(prefix, "lib", "pkgconfig")}
        r = run(["pkg-config", "--cflags", "acdm-plugin"], self.tmp, pc)
        self.assertEqual(r.stdout.split(), ["-I" + os.path.join(prefix, "include")], r)
        r = run(["pkg-config", "--libs", "acdm-plugin"], self.tmp, pc)
        self.assertEqual(r.stdout.strip(), "", "a plugin links against nothing of acdm")

        # the author's copy, far from the acdm tree
        src = os.path.join(self.tmp, "mychannel")
        shutil.copytree(os.path.join(prefix, "share", "acdm", "plugin-template"), src)
        r = run(["make"], src)
        self.assertNotEqual(r.returncode, 0, "builds without the kit on PKG_CONFIG_PATH?")
        self.assertIn("PKG_CONFIG_PATH", r.stderr)
        r = run(["make"], src, pc)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("-I" + os.path.join(prefix, "include"), r.stdout)
        self.assertNotIn(REPO, r.stdout, "the out-of-tree build reached into the acdm tree")
        r = run(["make", "check"], src, pc)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("100%: Checks: 5, Failures: 0, Errors: 0", r.stdout)
        so = os.path.join(src, "template.so")
        undefined = run(["nm", "-D", "--undefined-only", so], src).stdout
        self.assertNotIn("acdm_", undefined, "the plugin needs a symbol of acdmd")

        # the .so it built, in the real acdmd
        pdir = self.empty_plugin_dir()
        shutil.copy(so, pdir)
        chans = [{"name": "t1", "plugin": "template", "queue": "algemeen", "config": {"token": TOKEN}},
                 {"name": "t2", "plugin": "template", "queue": "algemeen", "config": {}}]
        cfg = base_config(pdir, channels=chans)
        path = os.path.join(self.tmp, "kit.json")
        import json
        with open(path, "w") as f:
            json.dump(cfg, f)
        r = subprocess.run([ACDMD, "--check", "-c", path], cwd=REPO, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("channels[1] (t2): plugin template: token: required", r.stderr)

        d = self.daemon(cfg)
        view = d.get_json("/api/v1/plugins")
        inst = {i["name"]: i for p in view["plugins"] for i in p["instances"]}
        self.assertEqual(inst["t1"]["state"], "running", inst)
        self.assertEqual(inst["t2"]["state"], "failed", inst)
        self.assertIn("token: required", inst["t2"]["reason"])
        self.assertEqual(d.request("POST", "/channels/t2/messages", {"from": "x"}, token=None).status, 404)
        r = d.request("POST", "/channels/t1/messages", {"from": "+31612345678", "text": "Hallo"}, token=None)
        self.assertEqual(r.status, 401, r)
        r = d.request("POST", "/channels/t1/messages", {"from": "+31612345678", "text": "Hallo", "id": "k-1"},
                      token=None, headers={"Authorization": "Bearer " + TOKEN})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["outcome"], "queued", r.json)
        b = d.bericht(r.json["bericht"])
        self.assertEqual((b["channel"], b["from"]), ("t1", "+31612345678"), b)
        r2 = d.request("POST", "/channels/t1/messages", {"from": "+31612345678", "text": "Hallo", "id": "k-1"},
                       token=None, headers={"Authorization": "Bearer " + TOKEN})
        self.assertEqual((r2.status, r2.json["outcome"], r2.json["bericht"]), (200, "duplicate", r.json["bericht"]), r2)
        wait_until(lambda: d.queue("algemeen")["waiting"] == 1, 5, what="the template's bericht waiting")
        # its status_json, as acdmctl plugins shows it
        view = d.get_json("/api/v1/plugins")
        t1 = [i for p in view["plugins"] for i in p["instances"] if i["name"] == "t1"][0]
        self.assertEqual(t1["status"], {"healthy": True, "received": 2, "delivered": 0, "failed": 0,
                                        "events": t1["status"]["events"]}, t1)


if __name__ == "__main__":
    unittest.main()
