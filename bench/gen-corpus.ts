// Deterministic corpus of mixed syslog traffic (RFC 3164) for the LG (sshd) benchmarks.
//
//   bun bench/gen-corpus.ts --lines N --seed S --out FILE [--truth FILE]
//
// About 7% of the lines are sshd attack lines in the shapes real OpenSSH writes (9.x: everything
// under `sshd[pid]`; 10.x: per-connection lines under `sshd-session[pid]`, penalties under the
// listener `sshd[pid]`); the rest is benign: good logins from 192.0.2.0/24, PAM sessions, CRON,
// systemd, postfix, dovecot and kernel chatter. Attackers come from 203.0.113.0/24,
// 198.51.100.0/24 and 2001:db8::/32; some pick user names that carry a decoy address from
// 192.0.2.0/24 ("admin from 192.0.2.9 port 22"), which must never be the extracted host.
//
// The truth file counts, per attacker address, the failed login attempts actually written
// (one per `Failed password` / `Failed keyboard-interactive/pam` line, i.e. one per attempt,
// however many lines sshd and PAM spend on it); see TruthFile below.

import { closeSync, openSync, writeFileSync, writeSync } from "node:fs";

export interface TruthFile {
  generator: "bench/gen-corpus.ts";
  seed: number;
  lines: number;
  attackLines: number;
  /** failed password / keyboard-interactive attempts per attacker address (one per attempt) */
  failed: Record<string, number>;
  /** the same attempts' times, in seconds after the corpus's first line (Nov 25 00:00:00) */
  failedAt: Record<string, number[]>;
  /** failed publickey lines per attacker address (not counted in `failed`) */
  publickey: Record<string, number>;
  /** attack sessions with no password attempt (invalid user only, kex/banner garbage,
   *  negotiation failures, RefuseConnection, root refused, timeouts) per attacker address */
  probes: Record<string, number>;
  /** attack lines written per attacker address: every address that attacked, however little */
  seen: Record<string, number>;
  /** attack sessions written, by kind (all addresses together) */
  sessions: Record<string, number>;
  /** 192.0.2.x addresses written inside attacker-chosen user names: never to be banned */
  decoys: string[];
}

// ---------------------------------------------------------------------------------------------
// PRNG: sfc32 seeded through splitmix32, so every seed gives a well-mixed state.

class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed: number) {
    let s = seed >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.u32();
  }
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }
  /** float in [0, 1) */
  next(): number {
    return this.u32() / 4294967296;
  }
  /** integer in [lo, hi] */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    const x = xs[Math.floor(this.next() * xs.length)];
    if (x === undefined) throw new Error("pick from an empty list");
    return x;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  hex(digits: number): string {
    let s = "";
    for (let i = 0; i < digits; i++) s += "0123456789abcdef"[this.u32() & 15];
    return s;
  }
  b64(len: number): string {
    const abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let s = "";
    for (let i = 0; i < len; i++) s += abc[this.u32() & 63];
    return s;
  }
}

// ---------------------------------------------------------------------------------------------
// Vocabulary

const HOST = "srv";
const ATTACK_SHARE = 0.07;

const ATTACK_USERS = [
  "root", "admin", "test", "user", "ubuntu", "oracle", "postgres", "git", "ftpuser", "guest",
  "support", "pi", "debian", "ansible", "deploy", "mysql", "www", "www-data", "jenkins", "hadoop",
  "nagios", "tomcat", "minecraft", "steam", "teamspeak", "ec2-user", "centos", "Administrator",
  "ubnt", "sysadmin", "dev", "backup", "student", "vagrant", "zabbix", "es", "elastic", "kafka",
];
const VALID_USERS = ["root", "deploy", "alice", "bob", "backup"];
const BENIGN_USERS = [
  { name: "deploy", uid: 1003 }, { name: "alice", uid: 1001 }, { name: "bob", uid: 1002 },
  { name: "backup", uid: 1004 }, { name: "root", uid: 0 },
];
const KEX_OFFERS = [
  "no matching key exchange method found. Their offer: diffie-hellman-group14-sha1,ext-info-c,kex-strict-c-v00@openssh.com",
  "no matching key exchange method found. Their offer: diffie-hellman-group1-sha1,diffie-hellman-group14-sha1,diffie-hellman-group-exchange-sha1",
  "no matching cipher found. Their offer: aes128-cbc,3des-cbc,aes256-cbc",
  "no matching MAC found. Their offer: hmac-md5,hmac-sha1-96",
  "no matching host key type found. Their offer: ssh-rsa,ssh-dss",
];
const CRON_JOBS = [
  "(root) CMD (   cd / && run-parts --report /etc/cron.hourly)",
  "(root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)",
  "(www-data) CMD ([ -x /usr/lib/php/sessionclean ] && /usr/lib/php/sessionclean)",
  "(backup) CMD (/usr/local/bin/backup-incremental >/dev/null 2>&1)",
];
const UNITS = [
  ["apt-daily.service", "Daily apt download activities"],
  ["logrotate.service", "Rotate log files"],
  ["man-db.service", "Daily man-db regeneration"],
  ["phpsessionclean.service", "Clean php session files"],
  ["systemd-tmpfiles-clean.service", "Cleanup of Temporary Directories"],
] as const;
const MAIL_PEERS = [
  "mail-ed1-f54.google.com[192.0.2.54]", "mx.example.net[192.0.2.61]",
  "out.relay.example.org[192.0.2.77]", "unknown[192.0.2.201]", "smtp.example.com[192.0.2.25]",
];
const MAIL_USERS = ["alice", "bob", "jsmith", "info", "postmaster"];

/** user names that carry a decoy address: the real peer follows later in the line */
function injectionUser(rng: Rng, decoys: Set<string>): string {
  const d = `192.0.2.${rng.int(2, 250)}`;
  decoys.add(d);
  switch (rng.int(0, 4)) {
    case 0: return `admin from ${d} port 22`;
    case 1: return `root from ${d}`;
    case 2: return `x rhost=${d}`;
    case 3: return `${d}`;
    default: return `user ${d} port ${rng.int(1024, 65535)} ssh2`;
  }
}

// ---------------------------------------------------------------------------------------------
// Sessions: a queue of lines of one program/pid (or a few), emitted one at a time and
// interleaved with other sessions, so per-session order holds and the traffic mixes.

interface Line {
  prog: string; // "sshd-session[123]"
  msg: string;
  addr?: string; // attacker address, for the truth file
  failed?: number; // failed attempts this line records
  publickey?: boolean;
  probe?: boolean; // first line of a session without password attempt
}

class Session {
  kind = "";
  addr = ""; // an attack session's address
  lines: Line[] = [];
  pos = 0;
  add(prog: string, msg: string, extra?: Omit<Line, "prog" | "msg">): void {
    this.lines.push(extra ? { prog, msg, ...extra } : { prog, msg });
  }
  get done(): boolean {
    return this.pos >= this.lines.length;
  }
}

class Gen {
  private pid = 2000;
  private sessionNo = 100;
  readonly attackers: string[] = [];
  readonly decoys = new Set<string>();
  private readonly listenerPid: number;

  constructor(private readonly rng: Rng, attackerCount: number) {
    const seen = new Set<string>();
    while (this.attackers.length < attackerCount) {
      const r = rng.next();
      const a = r < 0.45 ? `203.0.113.${rng.int(1, 254)}`
        : r < 0.85 ? `198.51.100.${rng.int(1, 254)}`
        : `2001:db8:${rng.int(1, 0xffff).toString(16)}::${rng.int(1, 0xffff).toString(16)}`; // canonical form
      if (seen.has(a)) continue;
      seen.add(a);
      this.attackers.push(a);
    }
    this.listenerPid = this.newPid();
  }

  private newPid(): number {
    this.pid += this.rng.int(3, 40); // a login's child is pid+2: never reuse it
    if (this.pid > 4194000) this.pid = 1000;
    return this.pid;
  }

  /** Skewed pick: a few attackers do most of the work, as in real traffic. */
  private attacker(): string {
    const r = this.rng.next();
    const a = this.attackers[Math.floor(r * r * r * this.attackers.length)];
    if (a === undefined) throw new Error("no attackers");
    return a;
  }

  attack(): Session {
    const { rng } = this;
    const s = new Session();
    const a = this.attacker();
    s.addr = a;
    const port = rng.int(1024, 65535);
    const pid = this.newPid();
    const v10 = rng.chance(0.6); // OpenSSH 10.x writes sshd-session, 9.x writes sshd
    const p = v10 ? `sshd-session[${pid}]` : `sshd[${pid}]`;
    const listener = `sshd[${this.listenerPid}]`;
    const inject = rng.chance(0.04);
    const valid = !inject && rng.chance(0.3);
    const user = inject ? injectionUser(rng, this.decoys) : valid ? rng.pick(VALID_USERS) : rng.pick(ATTACK_USERS);
    const inv = valid ? "" : "invalid user ";
    const who = valid ? `authenticating user ${user}` : `invalid user ${user}`;
    const pamAuthFail = `pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=${a} ${valid ? ` user=${user}` : ""}`;
    const failedPw = (): void => {
      if (!valid) s.add(p, "pam_unix(sshd:auth): check pass; user unknown");
      s.add(p, pamAuthFail);
      s.add(p, `Failed password for ${inv}${user} from ${a} port ${port} ssh2`, { addr: a, failed: 1 });
    };
    const penalty = (why: string): void => {
      if (v10 && rng.chance(0.5)) {
        s.add(listener, `srclimit_penalise: ipv${a.includes(":") ? 6 : 4}: new ${a}/${a.includes(":") ? 128 : 32} deferred penalty of ${rng.int(1, 20)}.000 seconds for penalty: ${why}`);
      }
    };
    const probe = { addr: a, probe: true };

    const kind = rng.next();
    if (kind < 0.38) {
      // password guessing, one to three tries, then the client gives up
      s.kind = "password";
      if (!valid) s.add(p, `Invalid user ${user} from ${a} port ${port}`);
      const tries = rng.int(1, 3);
      for (let i = 0; i < tries; i++) failedPw();
      if (rng.chance(0.5)) {
        s.add(p, `Connection closed by ${who} ${a} port ${port} [preauth]`);
      } else {
        s.add(p, `Received disconnect from ${a} port ${port}:11: Bye Bye [preauth]`);
        s.add(p, `Disconnected from ${who} ${a} port ${port} [preauth]`);
      }
      penalty("failed authentication");
    } else if (kind < 0.50) {
      // MaxAuthTries exceeded
      s.kind = "max-auth-tries";
      if (!valid) s.add(p, `Invalid user ${user} from ${a} port ${port}`);
      const tries = rng.int(3, 6);
      if (!valid) s.add(p, "pam_unix(sshd:auth): check pass; user unknown");
      s.add(p, pamAuthFail);
      for (let i = 0; i < tries; i++) {
        s.add(p, `Failed password for ${inv}${user} from ${a} port ${port} ssh2`, { addr: a, failed: 1 });
      }
      s.add(p, `error: maximum authentication attempts exceeded for ${inv}${user} from ${a} port ${port} ssh2 [preauth]`);
      s.add(p, `Disconnecting ${who} ${a} port ${port}: Too many authentication failures [preauth]`);
      s.add(p, `PAM ${tries - 1} more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=${a} ${valid ? ` user=${user}` : ""}`);
    } else if (kind < 0.58) {
      // keyboard-interactive through PAM
      s.kind = "keyboard-interactive";
      s.add(p, `Postponed keyboard-interactive for ${inv}${user} from ${a} port ${port} ssh2 [preauth]`);
      s.add(p, `error: PAM: Authentication failure for ${valid ? "" : "illegal user "}${user} from ${a}`);
      s.add(p, `Failed keyboard-interactive/pam for ${inv}${user} from ${a} port ${port} ssh2`, { addr: a, failed: 1 });
      s.add(p, `Connection closed by ${who} ${a} port ${port} [preauth]`);
    } else if (kind < 0.63) {
      // DenyUsers
      // (sshd checks DenyUsers only for existing accounts, so never an injection-style name)
      s.kind = "deny-users";
      const du = inject ? "oracle" : user;
      s.add(p, `User ${du} from ${a} not allowed because listed in DenyUsers`);
      s.add(p, `pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=${a}  user=${du}`);
      s.add(p, `Failed password for invalid user ${du} from ${a} port ${port} ssh2`, { addr: a, failed: 1 });
      s.add(p, `Connection closed by invalid user ${du} ${a} port ${port} [preauth]`);
    } else if (kind < 0.70) {
      // invalid user, no password offered (scanner checking user names)
      s.kind = "invalid-user-only";
      s.add(p, `Invalid user ${user} from ${a} port ${port}`, probe);
      if (rng.chance(0.5)) s.add(p, `Connection closed by invalid user ${user} ${a} port ${port} [preauth]`);
      else s.add(p, `Disconnected from invalid user ${user} ${a} port ${port} [preauth]`);
    } else if (kind < 0.78) {
      s.kind = "negotiation";
      s.add(p, `Unable to negotiate with ${a} port ${port}: ${rng.pick(KEX_OFFERS)} [preauth]`, probe);
    } else if (kind < 0.88) {
      // banner garbage / port scanners
      switch (rng.int(0, 3)) {
        case 0:
          s.kind = "kex-closed";
          s.add(p, "kex_exchange_identification: Connection closed by remote host [preauth]", probe);
          s.add(p, `Connection closed by ${a} port ${port} [preauth]`);
          break;
        case 1:
          s.kind = "banner-http";
          s.add(p, 'kex_exchange_identification: client sent invalid protocol identifier "GET / HTTP/1.0" [preauth]', probe);
          s.add(p, `banner exchange: Connection from ${a} port ${port}: invalid format [preauth]`);
          break;
        case 2:
          s.kind = "kex-reset";
          s.add(p, "error: kex_exchange_identification: read: Connection reset by peer [preauth]", probe);
          s.add(p, `Connection reset by ${a} port ${port} [preauth]`);
          break;
        default:
          s.kind = "banner-protocol-1";
          s.add(p, "error: Protocol major versions differ: 2 vs. 1 [preauth]", probe);
          s.add(p, `banner exchange: Connection from ${a} port ${port}: could not read protocol version [preauth]`);
      }
      penalty("connections without attempting authentication");
    } else if (kind < 0.93) {
      // offered keys, none accepted
      s.kind = "publickey";
      const n = rng.int(1, 3);
      for (let i = 0; i < n; i++) {
        s.add(p, `Failed publickey for ${inv}${user} from ${a} port ${port} ssh2: ED25519 SHA256:${rng.b64(43)}`, { addr: a, publickey: true });
      }
      s.add(p, `Connection closed by ${who} ${a} port ${port} [preauth]`);
    } else if (kind < 0.96) {
      s.kind = v10 ? "refuse-connection" : "root-login-refused";
      if (v10) {
        s.add(p, `administratively prohibited connection for invalid user ${user} from ${a} port ${port}`, probe);
      } else {
        s.add(p, `ROOT LOGIN REFUSED FROM ${a} port ${port} [preauth]`, probe);
      }
    } else {
      // listener lines: slow clients and penalties
      s.kind = "login-grace-timeout";
      const l = `[${a}]:${port} on [${a.includes(":") ? "2001:db8::1" : "203.0.113.1"}]:22`;
      s.add(listener, `Timeout before authentication for connection from ${a} to ${a.includes(":") ? "2001:db8::1" : "203.0.113.1"}, pid = ${pid}`, probe);
      if (v10) s.add(listener, `drop connection #${rng.int(0, 9)} from ${l} penalty: exceeded LoginGraceTime`);
    }
    return s;
  }

  benign(): Session {
    const { rng } = this;
    const s = new Session();
    const kind = rng.next();
    if (kind < 0.22) {
      // a good ssh login and its logout
      const u = rng.pick(BENIGN_USERS);
      const a = `192.0.2.${rng.int(2, 250)}`;
      const port = rng.int(1024, 65535);
      const pid = this.newPid();
      const v10 = rng.chance(0.6);
      const p = v10 ? `sshd-session[${pid}]` : `sshd[${pid}]`;
      const child = v10 ? `sshd-session[${pid + 2}]` : `sshd[${pid + 2}]`;
      const sess = this.sessionNo++;
      s.add(p, `Connection from ${a} port ${port} on 192.0.2.1 port 22 rdomain ""`);
      if (rng.chance(0.6)) {
        const key = rng.b64(43);
        s.add(p, `Accepted key ED25519 SHA256:${key} found at /home/${u.name}/.ssh/authorized_keys:1`);
        s.add(p, `Postponed publickey for ${u.name} from ${a} port ${port} ssh2 [preauth]`);
        s.add(p, `Accepted publickey for ${u.name} from ${a} port ${port} ssh2: ED25519 SHA256:${key}`);
      } else {
        s.add(p, `Accepted password for ${u.name} from ${a} port ${port} ssh2`);
      }
      s.add(p, `pam_unix(sshd:session): session opened for user ${u.name}(uid=${u.uid}) by (uid=0)`);
      s.add("systemd-logind[612]", `New session ${sess} of user ${u.name}.`);
      s.add("systemd[1]", `Started session-${sess}.scope - Session ${sess} of User ${u.name}.`);
      s.add(p, `User child is on pid ${pid + 2}`);
      s.add(child, `Starting session: shell on pts/${rng.int(0, 5)} for ${u.name} from ${a} port ${port} id 0`);
      s.add(child, `Received disconnect from ${a} port ${port}:11: disconnected by user`);
      s.add(child, `Disconnected from user ${u.name} ${a} port ${port}`);
      s.add(p, `pam_unix(sshd:session): session closed for user ${u.name}`);
      s.add("systemd[1]", `session-${sess}.scope: Deactivated successfully.`);
      s.add("systemd-logind[612]", `Session ${sess} logged out. Waiting for processes to exit.`);
      s.add("systemd-logind[612]", `Removed session ${sess}.`);
    } else if (kind < 0.42) {
      const p = `CRON[${this.newPid()}]`;
      const job = rng.pick(CRON_JOBS);
      const user = job.slice(1, job.indexOf(")"));
      const uid = user === "root" ? 0 : user === "www-data" ? 33 : 1004;
      s.add(p, `pam_unix(cron:session): session opened for user ${user}(uid=${uid}) by (uid=0)`);
      s.add(p, job);
      s.add(p, `pam_unix(cron:session): session closed for user ${user}`);
    } else if (kind < 0.66) {
      // inbound mail
      const pid = this.newPid();
      const p = `postfix/smtpd[${pid}]`;
      const peer = rng.pick(MAIL_PEERS);
      const qid = rng.hex(10).toUpperCase();
      s.add(p, `connect from ${peer}`);
      s.add(p, `${qid}: client=${peer}`);
      s.add(`postfix/cleanup[${pid + 3}]`, `${qid}: message-id=<${rng.hex(16)}@example.net>`);
      s.add("postfix/qmgr[1021]", `${qid}: from=<news@example.net>, size=${rng.int(900, 90000)}, nrcpt=1 (queue active)`);
      s.add(p, `disconnect from ${peer} ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7`);
      s.add(`postfix/local[${pid + 5}]`, `${qid}: to=<${rng.pick(MAIL_USERS)}@example.com>, relay=local, delay=0.${rng.int(10, 99)}, delays=0.05/0.01/0/0.03, dsn=2.0.0, status=sent (delivered to mailbox)`);
      s.add("postfix/qmgr[1021]", `${qid}: removed`);
    } else if (kind < 0.84) {
      // IMAP session
      const u = rng.pick(MAIL_USERS);
      const id = rng.b64(16);
      const mpid = this.newPid();
      s.add("dovecot", `imap-login: Logged in: user=<${u}>, method=PLAIN, rip=192.0.2.${rng.int(2, 250)}, lip=192.0.2.1, mpid=${mpid}, TLS, session=<${id}>`);
      s.add("dovecot", `imap(${u})<${mpid}><${id}>: Disconnected: Logged out in=${rng.int(20, 900)} out=${rng.int(400, 90000)} deleted=0 expunged=0 trashed=0 hdr_count=0 hdr_bytes=0 body_count=0 body_bytes=0`);
    } else if (kind < 0.93) {
      // kernel: firewall log and noise; attackers show up here too and must not count for LG
      const src = rng.chance(0.5) ? this.attacker() : `192.0.2.${rng.int(2, 250)}`;
      const up = `${rng.int(1000, 99999)}.${String(rng.int(0, 999999)).padStart(6, "0")}`;
      if (src.includes(":")) {
        s.add("kernel", `[${up}] [nft drop] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:86:dd SRC=${src} DST=2001:db8::1 LEN=80 TC=0 HOPLIMIT=52 FLOWLBL=0 PROTO=TCP SPT=${rng.int(1024, 65535)} DPT=23 WINDOW=1024 RES=0x00 SYN URGP=0`);
      } else {
        s.add("kernel", `[${up}] [nft drop] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=${src} DST=192.0.2.1 LEN=44 TOS=0x00 PREC=0x00 TTL=241 ID=54321 PROTO=TCP SPT=${rng.int(1024, 65535)} DPT=${rng.pick([23, 3389, 445, 8080, 5900])} WINDOW=1024 RES=0x00 SYN URGP=0`);
      }
    } else if (kind < 0.97) {
      const [unit, desc] = rng.pick(UNITS);
      s.add("systemd[1]", `Starting ${unit} - ${desc}...`);
      s.add("systemd[1]", `${unit}: Deactivated successfully.`);
      s.add("systemd[1]", `Finished ${unit} - ${desc}.`);
    } else {
      // an admin's sudo, with a PAM failure line of another program (must not count for LG)
      const p = `sudo[${this.newPid()}]`;
      s.add(p, "pam_unix(sudo:auth): authentication failure; logname=deploy uid=1003 euid=0 tty=/dev/pts/0 ruser=deploy rhost=  user=deploy");
      s.add(p, "   deploy : TTY=pts/0 ; PWD=/home/deploy ; USER=root ; COMMAND=/usr/bin/systemctl reload nginx");
      s.add(p, "pam_unix(sudo:session): session opened for user root(uid=0) by deploy(uid=1003)");
      s.add(p, "pam_unix(sudo:session): session closed for user root");
    }
    return s;
  }
}

// ---------------------------------------------------------------------------------------------

export interface GenOptions {
  lines: number;
  seed: number;
  out: string;
  truth?: string;
}

export function generate(opts: GenOptions): TruthFile {
  const rng = new Rng(opts.seed);
  const gen = new Gen(rng, Math.min(300, Math.max(20, Math.ceil(opts.lines / 3000))));
  const truth: TruthFile = {
    generator: "bench/gen-corpus.ts",
    seed: opts.seed,
    lines: opts.lines,
    attackLines: 0,
    failed: {},
    failedAt: {},
    publickey: {},
    probes: {},
    sessions: {},
    seen: {},
    decoys: [],
  };
  const bump = (m: Record<string, number>, k: string, n: number): void => {
    m[k] = (m[k] ?? 0) + n;
  };

  const attacks: Session[] = [];
  const benign: Session[] = [];
  let started = ""; // kind of the session whose first line nextLine just returned
  let from = ""; // address of the attack session nextLine just took a line from
  const nextLine = (pool: Session[], make: () => Session, width: number): Line => {
    while (pool.length < width) pool.push(make());
    const i = rng.int(0, pool.length - 1);
    const s = pool[i]!;
    started = s.pos === 0 ? s.kind : "";
    from = s.addr;
    const l = s.lines[s.pos++]!;
    if (s.done) pool[i] = make();
    return l;
  };

  const fd = openSync(opts.out, "w");
  const MONTH = "Nov";
  const DAY = "25";
  const span = Math.min(86400, Math.ceil(opts.lines * 0.0864));
  let header = "";
  let headerSec = -1;
  let buf: string[] = [];
  for (let i = 0; i < opts.lines; i++) {
    // non-decreasing timestamps at a busy server's pace (1M lines a day, ~12 a second), so a
    // connection's lines stay minutes apart whatever --lines is; more than 1M lines still fit
    // in one day, at a higher pace
    const sec = Math.floor((i * span) / opts.lines);
    if (sec !== headerSec) {
      headerSec = sec;
      const hh = String(Math.floor(sec / 3600)).padStart(2, "0");
      const mm = String(Math.floor(sec / 60) % 60).padStart(2, "0");
      const ss = String(sec % 60).padStart(2, "0");
      header = `${MONTH} ${DAY} ${hh}:${mm}:${ss} ${HOST} `;
    }
    let l: Line;
    if (rng.chance(ATTACK_SHARE)) {
      l = nextLine(attacks, () => gen.attack(), 12);
      truth.attackLines++;
      if (started) bump(truth.sessions, started, 1);
      bump(truth.seen, from, 1);
      if (l.addr !== undefined) {
        if (l.failed) {
          bump(truth.failed, l.addr, l.failed);
          (truth.failedAt[l.addr] ??= []).push(sec);
        }
        if (l.publickey) bump(truth.publickey, l.addr, 1);
        if (l.probe) bump(truth.probes, l.addr, 1);
      }
    } else {
      l = nextLine(benign, () => gen.benign(), 24);
    }
    buf.push(`${header}${l.prog}: ${l.msg}`);
    if (buf.length === 65536) {
      buf.push("");
      writeSync(fd, buf.join("\n"));
      buf = [];
    }
  }
  if (buf.length > 0) {
    buf.push("");
    writeSync(fd, buf.join("\n"));
  }
  closeSync(fd);

  truth.decoys = [...gen.decoys].sort();
  for (const m of ["failed", "publickey", "probes", "sessions", "seen"] as const) {
    truth[m] = Object.fromEntries(Object.entries(truth[m]).sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1)));
  }
  truth.failedAt = Object.fromEntries(Object.keys(truth.failed).map((a) => [a, truth.failedAt[a] ?? []]));
  if (opts.truth !== undefined) {
    // one address a line; arrays of times kept on one line
    const text = JSON.stringify(truth, null, 1).replace(/\[\s+([\d,\s]+?)\s+\]/g, (_m, g: string) => `[${g.replace(/\s+/g, "")}]`);
    writeFileSync(opts.truth, `${text}\n`);
  }
  return truth;
}

function parseArgs(argv: string[]): GenOptions {
  const usage = "usage: bun bench/gen-corpus.ts --lines N --seed S --out FILE [--truth FILE]";
  const got = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = argv[i + 1];
    if (!["--lines", "--seed", "--out", "--truth"].includes(k) || v === undefined) {
      throw new Error(`${usage}\n(unexpected argument ${JSON.stringify(k)})`);
    }
    got.set(k, v);
    i++;
  }
  const int = (k: string, dflt: number): number => {
    const v = got.get(k);
    if (v === undefined) return dflt;
    if (!/^\d+$/.test(v)) throw new Error(`${k} wants a non-negative integer, got ${JSON.stringify(v)}\n${usage}`);
    return Number(v);
  };
  const out = got.get("--out");
  if (out === undefined) throw new Error(`--out FILE is required\n${usage}`);
  const truth = got.get("--truth");
  const opts: GenOptions = { lines: int("--lines", 1_000_000), seed: int("--seed", 1), out };
  if (truth !== undefined) opts.truth = truth;
  return opts;
}

if (import.meta.main) {
  try {
    const opts = parseArgs(process.argv.slice(2));
    const t0 = performance.now();
    const t = generate(opts);
    const secs = (performance.now() - t0) / 1000;
    const attempts = Object.values(t.failed).reduce((x, y) => x + y, 0);
    console.error(
      `gen-corpus: ${opts.lines} lines (${t.attackLines} attack lines, ${attempts} failed attempts from ` +
        `${Object.keys(t.failed).length} addresses) in ${secs.toFixed(2)} s -> ${opts.out}`,
    );
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    process.exit(2);
  }
}
