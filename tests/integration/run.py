"""Runs every tests/integration/test_*.py in order and prints "integration: N passed, N failed".

usage: python3 tests/integration/run.py [-v] [pattern-or-test-name ...]
  e.g. run.py test_reload  or  run.py test_thin_path.ThinPath.test_thin_path

A test that fails is run once more, alone (a fresh daemon and peers, nothing else running). If it
passes then it is reported "integration: FLAKY (failed, then passed alone): ID" -- its first
failure stays printed in full above -- and counts as passed, so a timing race in a test (real
peers on two cores) is seen and mended without one glitch discarding a CI run. A test that fails
again alone fails the run; more than three failures are not retried (that is no race), nor are
class or module set-up failures. ACDM_IT_NO_RETRY=1 turns the second run off.
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
    if 0 < failed <= 3 and not os.environ.get("ACDM_IT_NO_RETRY"):
        still = set()
        for tid in sorted(failed_ids):
            if " " in tid or tid.count(".") < 2:      # setUpClass (module.Class) and the like
                still.add(tid)
                continue
            print("integration: %s failed: running it once more, alone" % tid, flush=True)
            again = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, buffer=False).run(loader.loadTestsFromName(tid))
            if again.wasSuccessful() and again.testsRun == 1 and not again.skipped:
                print("integration: FLAKY (failed, then passed alone): %s" % tid)
            else:
                still.add(tid)
        passed += failed - len(still)
        failed_ids, failed = still, len(still)
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
