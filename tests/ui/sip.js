'use strict';
// sip.js -- the SIP peers of tests/integration/siptest.py (SIPp callers whose RTP is recorded and
// decoded, baresip agent phones) for the browser tests, through tests/integration/sipdriver.py:
// one python3 process, JSON requests on its stdin, JSON replies on its stdout. The peers and the
// audio analysis stay in Python, shared with the integration tests.
// stop() ends the driver (which stops its peers) and then kills, by pid, any peer still alive.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

const REPO = path.resolve(__dirname, '..', '..');
const DRIVER = path.join(REPO, 'tests', 'integration', 'sipdriver.py');

class SipPeers {
  /** Starts the driver; rejects with a clear message when sipp or baresip is missing. */
  static async start() {
    const p = new SipPeers();
    await p.ready;
    return p;
  }

  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'acdm-uisip-'));
    this.stderrPath = path.join(this.dir, 'sipdriver.stderr');
    const err = fs.openSync(this.stderrPath, 'w');
    this.proc = spawn('python3', [DRIVER, this.dir], { stdio: ['pipe', 'pipe', err] });
    fs.closeSync(err);
    this.pids = new Set();
    this.pending = new Map();
    this.nextId = 1;
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, sig) => resolve({ code, sig })));
    this.ready = new Promise((resolve, reject) => {
      this.proc.on('error', (e) => reject(new Error('cannot run python3 ' + DRIVER + ': ' + e.message)));
      this.exited.then(({ code, sig }) => {
        const why = new Error(`sipdriver.py exited (code ${code}, signal ${sig}):\n${this.stderr()}`);
        reject(why);
        for (const { reject: rj } of this.pending.values()) rj(why);
        this.pending.clear();
      });
      readline.createInterface({ input: this.proc.stdout }).on('line', (line) => {
        let m;
        try { m = JSON.parse(line); } catch { return; }
        if (m.event === 'ready') resolve();
        else if (m.event === 'error') reject(new Error('SIP peers: ' + m.error));
        else if (m.id != null && this.pending.has(m.id)) {
          const { resolve: rs, reject: rj, req } = this.pending.get(m.id);
          this.pending.delete(m.id);
          if (m.error) rj(new Error(`sipdriver ${req.op} failed: ${m.error}`));
          else rs(m);
        }
      });
    });
    this.ready.catch(() => {});
  }

  stderr() { try { return fs.readFileSync(this.stderrPath, 'utf8').slice(-3000); } catch { return ''; } }

  request(req) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, req });
      this.proc.stdin.write(JSON.stringify({ ...req, id }) + '\n');
    }).then((m) => { if (m.pid) this.pids.add(m.pid); return m; });
  }

  async port() { return (await this.request({ op: 'port' })).port; }
  async rtpRange() { return (await this.request({ op: 'rtp_range' })).range; }
  /** A baresip phone registering as user to acdm's registrar, playing `tone` Hz. */
  phone(name, opts) { return this.request({ op: 'phone', name, ...opts }); }
  /** A SIPp caller (its RTP recorded by a siptest.RtpPeer that sends `tone` Hz back). */
  call(name, opts) { return this.request({ op: 'call', name, ...opts }); }
  /** Seconds since the caller's first RTP packet (null before one came). */
  async elapsed(name) { return (await this.request({ op: 'elapsed', name })).t; }
  /** What caller `name` heard from..to (s): {samples, rms, gap (longest silence), ratio: {Hz: share}}. */
  audio(name, from, to, freqs) { return this.request({ op: 'audio', name, from, to, freqs }); }
  /** SIPp's exit code (0: the scenario ran to the end), or "timeout". */
  async wait(name, timeout = 30) { return (await this.request({ op: 'wait', name, timeout })).rc; }
  async log(name) { try { return (await this.request({ op: 'log', name })).text; } catch (e) { return String(e); } }

  async stop() {
    if (!this.proc) return;
    const p = this.proc;
    this.proc = null;
    if (p.exitCode === null && p.signalCode === null) {
      try { p.stdin.end(JSON.stringify({ op: 'quit' }) + '\n'); } catch { /* gone */ }
      const timer = setTimeout(() => p.kill('SIGKILL'), 15000);
      await this.exited;
      clearTimeout(timer);
    }
    // a driver that did not stop its peers (killed, crashed): end the ones it started, by pid,
    // when that pid is still a sipp or baresip of ours
    for (const pid of this.pids) {
      let cmd = '';
      try { cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { continue; }
      if (/(^|\/)(sipp|baresip)\0/.test(cmd) && cmd.includes(this.dir)) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
      }
    }
    if (!process.env.ACDM_KEEP_TMP) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

module.exports = { SipPeers };
