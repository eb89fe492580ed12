"""Runs every tests/integration/test_*.py in order and prints "integration: N passed, N failed".

usage: python3 tests/integration/run.py [-v] [pattern-or-test-name ...]
  e.g. run.py test_reload  or  run.py test_thin_path.ThinPath.test_thin_path
"""
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def main(argv):
    names = [a for a in argv if not a.startswith("-")]
    loader = unittest.TestLoader()
    if names:
        suite = unittest.TestSuite(loader.loadTestsFromName(n) for n in names)
    else:
        suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    t0 = time.monotonic()
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, buffer=False)
    res = runner.run(suite)
    # a test can fail in its body and again in its cleanup (the daemon's exit check): count it once
    failed_ids = {t.id() for t, _ in res.failures + res.errors} | {t.id() for t in res.unexpectedSuccesses}
    failed = len(failed_ids)
    skipped = len(res.skipped)
    xfail = len(res.expectedFailures)
    passed = res.testsRun - failed - skipped - xfail
    extra = []
    if skipped:
        extra.append("%d skipped" % skipped)
    if xfail:
        extra.append("%d expected failures (known bugs)" % xfail)
    if extra:
        print("integration: " + ", ".join(extra))
    print("integration: run time %.1f s" % (time.monotonic() - t0))
    for t in sorted(failed_ids):
        print("integration: FAILED %s" % t)
    print("integration: %d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
