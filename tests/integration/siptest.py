"""siptest -- real SIP peers for the sip channel's integration tests (standard library only).

- RtpPeer: the caller's media side. A UDP socket on a free port whose number goes into the SIPp
  caller's SDP; it records every RTP packet acdm sends (G.711 decoded to 16-bit PCM, with
  arrival times), answers with a tone of its own once it knows acdm's RTP address, and sends
  RFC 4733 DTMF (each press: start, updates and the end packet three times, as phones do).
- SippCaller: a SIPp process running a caller scenario written here (INVITE with the RtpPeer's
  port in the SDP, then ACK, a pause and BYE; or wait for acdm's BYE).
- BaresipAgent: baresip as an agent's auto-answering softphone, registering to acdm with digest
  auth (or not registering: a static URI), playing a 440 Hz tone and recording what it hears.
- audio analysis: Goertzel power at a frequency, silence gaps, dominant frequency.
"""
import math
import os
import random
import shutil
import socket
import struct
import subprocess
import threading
import time
import wave

SIPP = shutil.which("sipp")
BARESIP = shutil.which("baresip")
ESPEAK = shutil.which("espeak-ng")


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def free_port_pair():
    """A port p free for UDP and TCP with p+1 free for TCP too (baresip binds SIP on UDP and TCP
    at p and SIP/TLS at p+1). Drawn from 10000-29999, below the kernel's ephemeral range
    (32768-60999) and the tests' RTP ranges (30000+), so an outgoing connection of the suite
    cannot take it between this check and the bind."""
    for _ in range(200):
        p = random.randrange(10000, 29998)
        socks = []
        try:
            for kind, port in ((socket.SOCK_DGRAM, p), (socket.SOCK_STREAM, p), (socket.SOCK_STREAM, p + 1)):
                t = socket.socket(socket.AF_INET, kind)
                socks.append(t)
                t.bind(("127.0.0.1", port))
            return p
        except OSError:
            continue
        finally:
            for t in socks:
                t.close()
    raise AssertionError("no free port")


def rtp_range():
    """A random 400-port RTP range above 30000 (rtp_listen skips ports in use)."""
    base = random.randrange(30000, 60000, 2)
    return "%d-%d" % (base, base + 400)


# ------------------------------------------------------------------ G.711

def ulaw2lin(u):
    u = ~u & 0xFF
    t = ((u & 0x0F) << 3) + 0x84
    t <<= (u & 0x70) >> 4
    return (0x84 - t) if (u & 0x80) else (t - 0x84)


def alaw2lin(a):
    a ^= 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t += 0x108
        t <<= seg - 1
    return t if (a & 0x80) else -t


def lin2ulaw(s):
    sign = 0
    if s < 0:
        sign, s = 0x80, -s
    s = min(s, 32635) + 0x84
    exp, m = 7, 0x4000
    while not (s & m) and exp > 0:
        exp -= 1
        m >>= 1
    return ~(sign | (exp << 4) | ((s >> (exp + 3)) & 0x0F)) & 0xFF


ULAW = [ulaw2lin(i) for i in range(256)]
ALAW = [alaw2lin(i) for i in range(256)]


# ------------------------------------------------------------------ analysis

def goertzel(samples, freq, rate=8000):
    """Power of freq in samples (normalised by length)."""
    n = len(samples)
    if n == 0:
        return 0.0
    k = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s0 = x + k * s1 - s2
        s2, s1 = s1, s0
    return (s1 * s1 + s2 * s2 - k * s1 * s2) / (n * n)


def rms(samples):
    if not samples:
        return 0.0
    return math.sqrt(sum(x * x for x in samples) / len(samples))


def dominant(samples, freqs):
    """The frequency of freqs with the most power, and its share of the total."""
    p = {f: goertzel(samples, f) for f in freqs}
    best = max(p, key=p.get)
    tot = sum(p.values()) or 1.0
    return best, p[best] / tot


def tone_ratio(samples, freq):
    """Share of the signal's energy at freq (a pure tone gives ~0.5 by this measure)."""
    e = sum(x * x for x in samples) / max(1, len(samples))
    if e == 0:
        return 0.0
    return 2 * goertzel(samples, freq) / e


# ------------------------------------------------------------------ RTP peer

class RtpPeer:
    """Records the RTP acdm sends to it; sends a tone (and DTMF) back to acdm."""

    def __init__(self, tone_hz=1000, send=True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.1)
        self.packets = []           # (arrival monotonic, pt, seq, ts, payload)
        self.remote = None
        self.tone_hz = tone_hz
        self.send_tone = send
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.dtmf_queue = []
        self.t0 = None
        self.rx = threading.Thread(target=self._rx, daemon=True)
        self.tx = threading.Thread(target=self._tx, daemon=True)
        self.rx.start()
        self.tx.start()

    def _rx(self):
        while not self.stop_ev.is_set():
            try:
                data, addr = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                break
            if len(data) < 12 or (data[0] >> 6) != 2:
                continue
            cc = data[0] & 0x0F
            pt = data[1] & 0x7F
            seq, ts = struct.unpack("!HI", data[2:8])
            payload = data[12 + 4 * cc:]
            now = time.monotonic()
            with self.lock:
                if self.t0 is None:
                    self.t0 = now
                self.remote = addr
                self.packets.append((now, pt, seq, ts, payload))

    def _tx(self):
        seq, ts, ssrc, n = random.randrange(65536), random.randrange(1 << 32), random.randrange(1 << 32), 0
        nxt = time.monotonic()
        while not self.stop_ev.is_set():
            nxt += 0.02
            d = nxt - time.monotonic()
            if d > 0:
                time.sleep(d)
            with self.lock:
                remote = self.remote
                dt = self.dtmf_queue.pop(0) if self.dtmf_queue else None
            if remote is None:
                continue
            if dt is not None:
                digit, kind = dt
                ev = "0123456789*#".index(digit)
                # start + 3 updates + end x3, one timestamp per press (RFC 4733)
                for i in range(7):
                    end = i >= 4
                    dur = min(i, 4) * 160 + 160
                    pl = struct.pack("!BBH", ev, (0x80 if end else 0) | 10, dur)
                    hdr = struct.pack("!BBHII", 0x80, (0x80 if i == 0 else 0) | 101, seq & 0xFFFF, ts, ssrc)
                    self.sock.sendto(hdr + pl, remote)
                    seq += 1
                    time.sleep(0.02)
                ts += 1280
                continue
            if not self.send_tone:
                continue
            pl = bytes(lin2ulaw(int(8000 * math.sin(2 * math.pi * self.tone_hz * (n + i) / 8000))) for i in range(160))
            hdr = struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, ts, ssrc)
            try:
                self.sock.sendto(hdr + pl, remote)
            except OSError:
                pass
            seq += 1
            ts += 160
            n += 160

    def dtmf(self, digits):
        with self.lock:
            for d in digits:
                self.dtmf_queue.append((d, "rfc4733"))

    def close(self):
        self.stop_ev.set()
        self.rx.join(2)
        self.tx.join(2)
        self.sock.close()

    # ---- what was heard
    def frames(self):
        """[(t since first packet, pcm samples)] of audio packets in arrival order."""
        with self.lock:
            pk = list(self.packets)
        out = []
        for (t, pt, seq, ts, pl) in pk:
            if pt == 0:
                out.append((t - self.t0, [ULAW[b] for b in pl]))
            elif pt == 8:
                out.append((t - self.t0, [ALAW[b] for b in pl]))
        return out

    def pcm_between(self, t_from, t_to):
        s = []
        for t, f in self.frames():
            if t_from <= t < t_to:
                s.extend(f)
        return s

    def longest_gap(self, t_from, t_to, threshold=150.0):
        """Longest stretch (s) between t_from and t_to without audio above threshold RMS,
        missing packets counting as silence."""
        fr = [(t, f) for t, f in self.frames() if t_from <= t < t_to]
        longest, last_sound = 0.0, t_from
        for t, f in fr:
            if rms(f) >= threshold:
                longest = max(longest, t - last_sound)
                last_sound = t
        return max(longest, (t_to - last_sound) if fr else t_to - t_from)

    def packet_count(self):
        with self.lock:
            return len(self.packets)

    def elapsed(self):
        with self.lock:
            return None if self.t0 is None else time.monotonic() - self.t0


# ------------------------------------------------------------------ SIPp caller

CALLER_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="acdm caller">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Burger" <sip:%(cli)s@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:%(cli)s@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP4 [local_ip]
      s=-
      c=IN IP4 127.0.0.1
      t=0 0
      m=audio %(rtp)s RTP/AVP %(pts)s
%(rtpmaps)s
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="%(expect)s" rtd="true" rrs="true" timeout="%(answer_timeout)d"/>
%(after)s
</scenario>
"""

ACK_BYE = """  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: "Burger" <sip:%(cli)s@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
%(middle)s
"""

OUR_BYE = """  <pause milliseconds="%(hold)d"/>
  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: "Burger" <sip:%(cli)s@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 30 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>
"""

THEIR_BYE = """  <recv request="BYE" timeout="%(hold)d"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
"""

REJECTED = """  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Burger" <sip:%(cli)s@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
"""


INFO_DTMF = """  <pause milliseconds="%(pause)d"/>
  <send retrans="500">
    <![CDATA[
      INFO [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: "Burger" <sip:%(cli)s@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: %(cseq)d INFO
      Max-Forwards: 70
      Content-Type: application/dtmf-relay
      Content-Length: [len]

      Signal=%(digit)s
      Duration=160
    ]]>
  </send>
  <recv response="200"/>
"""


def caller_xml(rtp_port, cli="0612345678", hold_ms=10000, hangup="ours", expect="200",
               codecs=(("0", "PCMU"),), answer_timeout=30000, info_digits=""):
    pts = " ".join([c[0] for c in codecs] + ["101"])
    rtpmaps = "\n".join("      a=rtpmap:%s %s/8000" % c for c in codecs) + \
        "\n      a=rtpmap:101 telephone-event/8000\n      a=fmtp:101 0-15\n"
    if expect != "200":
        after = REJECTED % {"cli": cli}
    else:
        middle = "".join(INFO_DTMF % {"pause": 1500, "cli": cli, "cseq": 10 + i, "digit": dg}
                         for i, dg in enumerate(info_digits))
        middle += (OUR_BYE if hangup == "ours" else THEIR_BYE) % {"hold": hold_ms, "cli": cli}
        after = ACK_BYE % {"cli": cli, "middle": middle}
    return CALLER_XML % {"rtp": rtp_port, "pts": pts, "rtpmaps": rtpmaps, "expect": expect,
                         "after": after, "cli": cli, "answer_timeout": answer_timeout}


class SippCaller:
    """sipp -sf <scenario> ... 127.0.0.1:<acdm>; wait() returns its exit code (0: call ok)."""

    def __init__(self, workdir, target_port, number, xml, name="caller", calls=1, rate=None, extra=()):
        self.path = os.path.join(workdir, name + ".xml")
        with open(self.path, "w") as f:
            f.write(xml)
        self.log = os.path.join(workdir, name + ".log")
        self.port = free_udp_port()
        cmd = [SIPP, "-sf", self.path, "-s", number, "-i", "127.0.0.1", "-p", str(self.port),
               "-mp", str(free_udp_port()), "-m", str(calls), "-nostdin", "-trace_err",
               "-error_file", os.path.join(workdir, name + "-errors.log")]
        if rate:
            cmd += ["-r", str(rate)]
        cmd += list(extra)
        cmd.append("127.0.0.1:%d" % target_port)
        self.out = open(self.log, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.out, cwd=workdir)

    def wait(self, timeout=60):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            rc = "timeout"
        self.out.close()
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        if not self.out.closed:
            self.out.close()

    def output(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode("utf-8", "replace")[-3000:]
        except OSError:
            return ""


# ------------------------------------------------------------------ baresip agent

BARESIP_CONFIG = """poll_method epoll
sip_listen 127.0.0.1:%(port)d
call_local_timeout 120
call_max_calls 4
audio_source ausine,%(tone)d
ausrc_srate 48000
ausrc_channels 2
audio_player aubridge,nil
auplay_srate 48000
audio_alert aubridge,nil
rtp_ports %(rtp)s
module_path /usr/lib/baresip/modules
module g711.so
module ausine.so
module aubridge.so
module sndfile.so
module ctrl_tcp.so
module_tmp account.so
module_app menu.so
ctrl_tcp_listen 127.0.0.1:%(ctrl)d
snd_path %(wav)s
"""


class BaresipAgent:
    """baresip, auto-answering; registers as user@acdm with password (or not, when password is None)."""

    def __init__(self, workdir, user, acdm_port, password=None, tone=440, name=None, answer="auto"):
        self.name = name or "bs-" + user
        self.dir = os.path.join(workdir, self.name)
        self.wav = os.path.join(self.dir, "wav")
        os.makedirs(self.wav, exist_ok=True)
        self.port = free_port_pair()          # baresip listens on UDP and TCP
        self.ctrl = free_port_pair()
        base = random.randrange(30000, 60000, 2)
        with open(os.path.join(self.dir, "config"), "w") as f:
            f.write(BARESIP_CONFIG % {"port": self.port, "tone": tone, "ctrl": self.ctrl, "wav": self.wav,
                                      "rtp": "%d-%d" % (base, base + 200)})
        if password:
            acc = "<sip:%s@127.0.0.1:%d;transport=udp>;auth_pass=%s;answermode=%s;audio_codecs=pcmu;regint=300\n" % (
                user, acdm_port, password, answer)
        else:
            acc = "<sip:%s@127.0.0.1:%d>;regint=0;answermode=%s;audio_codecs=pcmu\n" % (user, self.port, answer)
        with open(os.path.join(self.dir, "accounts"), "w") as f:
            f.write(acc)
        self.uri = "sip:%s@127.0.0.1:%d" % (user, self.port)
        self.log = os.path.join(workdir, self.name + ".log")
        self.out = open(self.log, "wb")
        self.proc = subprocess.Popen([BARESIP, "-f", self.dir, "-n", "127.0.0.1"], stdin=subprocess.DEVNULL,
                                     stdout=self.out, stderr=self.out, cwd=self.dir)

    def output(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def heard(self):
        """16-bit samples (first channel) of the last call's decoded audio (sndfile's *-dec.wav)."""
        files = sorted((os.path.join(self.wav, f) for f in os.listdir(self.wav) if f.endswith("-dec.wav")),
                       key=os.path.getmtime)
        if not files:
            return [], 0
        with wave.open(files[-1]) as w:
            rate, ch, n = w.getframerate(), w.getnchannels(), w.getnframes()
            raw = w.readframes(n)
        s = struct.unpack("<%dh" % (len(raw) // 2), raw)
        return list(s[::ch]), rate

    def command(self, command, params="", timeout=5.0):
        """One ctrl_tcp command (JSON in a netstring, as the recipe's bsctl.py); its response."""
        import json
        b = json.dumps({"command": command, "params": params, "token": "t1"}).encode()
        s = socket.create_connection(("127.0.0.1", self.ctrl), timeout=timeout)
        try:
            s.sendall(b"%d:%s," % (len(b), b))
            buf = b""
            while True:
                while b":" not in buf:
                    d = s.recv(4096)
                    if not d:
                        raise AssertionError("baresip closed ctrl_tcp")
                    buf += d
                n, rest = buf.split(b":", 1)
                n = int(n)
                while len(rest) < n + 1:
                    d = s.recv(4096)
                    if not d:
                        raise AssertionError("baresip closed ctrl_tcp")
                    rest += d
                obj = json.loads(rest[:n])
                buf = rest[n + 1:]
                if obj.get("response"):
                    return obj
        finally:
            s.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.out.close()


def write_chime(path, rate=44100, channels=2):
    """A 1.5 s chime (660, 880, 1100 Hz, 0.5 s each) as a 16-bit WAV at 44.1 kHz stereo: the
    plugin must convert it to 8 kHz mono."""
    frames = []
    for f in (660, 880, 1100):
        for i in range(rate // 2):
            v = int(12000 * math.sin(2 * math.pi * f * i / rate))
            frames.append(struct.pack("<" + "h" * channels, *([v] * channels)))
    with wave.open(path, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(frames))
