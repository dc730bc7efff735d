/**
 * Sessions an attacker cannot turn against someone else (issue 16, items 1 and 2), in real log
 * shapes, through the daemon's pipeline (ModuleRuntime: real rules, real SQLite, the dry-run
 * firewall) and through `rules test`, which must show what the daemon counts.
 *  - Pid reuse: sshd's pids come round again. A legitimate user's connection ends; attackers'
 *    connections get the same pid and write lines without an address first (a garbage banner).
 *    Those lines must never be counted against the earlier user.
 *  - Lines that read two ways: fail2ban's own annotated sshd samples (Debian package fail2ban,
 *    read where it is installed, never copied: GPL) hold four lines where the user name or the
 *    auth info repeats "from A port N ssh2". Each must yield its session's address, or none.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type ModuleContext, openModule } from "../../src/modules/context";
import { loadRules } from "../../src/modules/registry";
import { testRules } from "../../src/modules/ruletest";
import { type BanReport, ModuleRuntime, partsOf } from "../../src/pipeline/run";
import { makeRoot } from "../helpers/root";
import { affairHost } from "../helpers/annotated";

const RULES = join(import.meta.dir, "..", "..", "rules");
const NOW = Date.UTC(2026, 10, 25, 12, 0, 0) / 1000;
const LEGIT = "198.51.100.7";
const ATTACKER = "203.0.113.77";

function runtime(ctx: ModuleContext) {
  const bans: BanReport[] = [];
  const rt = new ModuleRuntime({ ...partsOf(ctx), clock: () => NOW, useLineTime: false, onBan: (b) => bans.push(b) });
  return { rt, bans };
}

/** Both modes: in normal mode the probes' rules are off, which must not leave a session open. */
const MODES = ["normal", "aggressive"] as const;

function rootFor(mode: (typeof MODES)[number]): string {
  return makeRoot("sessions", { "etc/watcher.toml": `firewall = "dryrun"\n[modules.LG]\ndns = false\nmode = "${mode}"\n` });
}

/* OpenSSH 10.5 at LogLevel VERBOSE (shared/samples/openssh-10.5-shapes.log): a good password login
   and its end, the post-auth child (28483) writing the disconnect, the monitor (28481) PAM's close */
const GOOD_LOGIN = [
  `Nov 25 11:49:01 srv sshd-session[28481]: Connection from ${LEGIT} port 48584 on 198.51.100.1 port 22 rdomain ""`,
  `Nov 25 11:49:02 srv sshd-session[28481]: Accepted password for deploy from ${LEGIT} port 48584 ssh2`,
  "Nov 25 11:49:02 srv sshd-session[28481]: pam_unix(sshd:session): session opened for user deploy(uid=1003) by (uid=0)",
  "Nov 25 11:49:02 srv sshd-session[28481]: User child is on pid 28483",
  `Nov 25 11:49:02 srv sshd-session[28483]: Starting session: command for deploy from ${LEGIT} port 48584 id 0`,
  `Nov 25 11:49:09 srv sshd-session[28483]: Received disconnect from ${LEGIT} port 48584:11: disconnected by user`,
  `Nov 25 11:49:09 srv sshd-session[28483]: Disconnected from user deploy ${LEGIT} port 48584`,
  "Nov 25 11:49:09 srv sshd-session[28481]: pam_unix(sshd:session): session closed for user deploy",
];

/* LogLevel INFO: no "Connection from"; a key login; the client just leaves */
const GOOD_KEY_LOGIN_INFO = [
  `Nov 25 11:50:04 srv sshd-session[28490]: Accepted publickey for deploy from ${LEGIT} port 48600 ssh2: ED25519 SHA256:o9d+Q0zkZ22QbxT7U93ejOff5l1U7AiEHfVDaJ2sKwQ`,
  "Nov 25 11:50:04 srv sshd-session[28490]: pam_unix(sshd:session): session opened for user deploy(uid=1003) by (uid=0)",
  `Nov 25 11:50:30 srv sshd-session[28490]: Connection closed by ${LEGIT} port 48600`,
  "Nov 25 11:50:30 srv sshd-session[28490]: pam_unix(sshd:session): session closed for user deploy",
];

/* a monitoring check of the same host: connects and leaves before authenticating (an aggressive-only rule's line) */
const PROBE = [`Nov 25 11:51:00 srv sshd-session[28500]: Connection closed by ${LEGIT} port 48700 [preauth]`];

/** One attacker connection under a reused pid: only lines without an address (banner garbage). */
function garbage(pid: number, n: number): string[] {
  const t = `Nov 25 11:5${2 + Math.floor(n / 6)}:${String(10 + (n % 6) * 8).padStart(2, "0")}`;
  return [
    `${t} srv sshd-session[${pid}]: kex_exchange_identification: client sent invalid protocol identifier "GET / HTTP/1.0" [preauth]`,
    `${t} srv sshd-session[${pid}]: kex_exchange_identification: banner line contains invalid characters [preauth]`,
    `${t} srv sshd-session[${pid}]: error: Protocol major versions differ: 2 vs. 1 [preauth]`,
  ];
}

const block = (lines: string[]) => `${lines.join("\n")}\n`;

describe("a reused pid frames nobody", () => {
  for (const mode of MODES) {
    test(`${mode} mode: five garbage connections under the pid of a finished good login count against nobody (the daemon)`, async () => {
      /* what the user's own lines count (in aggressive mode, the probe is one affair of its own) */
      const alone = openModule(rootFor(mode), "LG");
      await runtime(alone).rt.processBlock(block([...GOOD_LOGIN, ...GOOD_KEY_LOGIN_INFO, ...PROBE]));
      const own = alone.store.getHost(LEGIT)?.affairs ?? 0;
      expect(own).toBe(mode === "aggressive" ? 1 : 0);
      await alone.close();

      const ctx = openModule(rootFor(mode), "LG");
      const { rt, bans } = runtime(ctx);
      const lines = [...GOOD_LOGIN, ...GOOD_KEY_LOGIN_INFO, ...PROBE];
      for (let n = 0; n < 5; n++) lines.push(...garbage(28481, n), ...garbage(28483, n), ...garbage(28490, n), ...garbage(28500, n));
      await rt.processBlock(block(lines));
      expect(bans).toEqual([]);
      expect(ctx.store.getHost(LEGIT)?.affairs ?? 0).toBe(own);
      expect(ctx.store.getHost(LEGIT)?.bannedUntil ?? 0).toBe(0);
      await ctx.close();
    });

    test(`${mode} mode: the same through rules test: the garbage lines show no address, and are counted unattributed`, () => {
      const lines = [...GOOD_LOGIN, ...GOOD_KEY_LOGIN_INFO, ...PROBE];
      const firstGarbage = lines.length + 1;
      for (let n = 0; n < 5; n++) lines.push(...garbage(28481, n), ...garbage(28483, n), ...garbage(28490, n), ...garbage(28500, n));
      const result = testRules(loadRules("LG", RULES, mode), block(lines));
      const garbageMatches = result.matches.filter((m) => m.line >= firstGarbage);
      expect(garbageMatches.length).toBe(60);
      expect(garbageMatches.filter((m) => m.host !== null)).toEqual([]);
      /* still waiting when the log ends, then dropped: counted as unattributed, never against anybody */
      expect(result.unattributed).toBe(60);
    });

    test(`${mode} mode: a garbage connection that names itself is counted against itself, its pid's next connection is not`, async () => {
      const ctx = openModule(rootFor(mode), "LG");
      const { rt } = runtime(ctx);
      const own = `Nov 25 11:53:29 srv sshd-session[28481]: banner exchange: Connection from ${ATTACKER} port 37892: invalid format [preauth]`;
      await rt.processBlock(block([...GOOD_LOGIN, ...garbage(28481, 0), own, ...garbage(28481, 1)]));
      expect(ctx.store.getHost(LEGIT)?.affairs ?? 0).toBe(0);
      /* its three garbage lines (one stream: three affairs) and the banner line (another stream of the same attempts) */
      expect(ctx.store.getHost(ATTACKER)?.affairs).toBe(3);
      const shown = testRules(loadRules("LG", RULES, mode), block([...GOOD_LOGIN, ...garbage(28481, 0), own, ...garbage(28481, 1)]));
      const byLine = new Map(shown.matches.map((m) => [m.line, m]));
      const hosts = shown.matches.filter((m) => m.line > GOOD_LOGIN.length).map((m) => affairHost(m, byLine));
      expect(hosts).toEqual([ATTACKER, ATTACKER, ATTACKER, ATTACKER, null, null, null]);
      await ctx.close();
    });
  }

  test("a new Connection from under the pid starts a new session: lines before it are not the new client's, lines after it are", () => {
    const lines = [
      ...garbage(28481, 0),
      `Nov 25 11:55:00 srv sshd-session[28481]: Connection from ${LEGIT} port 48900 on 198.51.100.1 port 22 rdomain ""`,
      "Nov 25 11:55:01 srv sshd-session[28481]: input_userauth_request: invalid user oracle [preauth]",
    ];
    const result = testRules(loadRules("LG", RULES, "normal"), block(lines));
    expect(result.matches.map((m) => [m.rule, m.host])).toEqual([
      ["kex-invalid-identifier", null],
      ["kex-banner-invalid", null],
      ["protocol-major-mismatch", null],
      ["connection-from", LEGIT],
      ["invalid-user-preauth", LEGIT],
    ]);
    expect(result.unattributed).toBe(3);
  });
});

/* fail2ban's annotated sshd samples: lines 132, 135, 137 and 144 read two ways; their neighbours of
   the same pid (12946: 126, 129; 12947: none; 2737: 140, 142) are unambiguous */
const FAIL2BAN_SSHD = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs/sshd";
const AMBIGUOUS: Record<number, string> = { 132: "127.0.0.1", 135: "127.0.0.1", 137: "aaaa:bbbb:cccc:1234::1:1", 144: "127.0.0.1" };
const NEIGHBOURS: Record<number, string> = { 126: "127.0.0.1", 129: "127.0.0.1", 140: "127.0.0.1", 142: "127.0.0.1" };
const INJECTED = ["1.2.3.4", "10.10.1.1", "10.10.1.2"];
/* read at test time from the Debian package (GPL: never copied here); scripts/test.sh installs it */
if (!existsSync(FAIL2BAN_SSHD)) throw new Error(`${FAIL2BAN_SSHD} is missing: apt-get install fail2ban (scripts/test.sh does as root)`);

describe("lines that read two ways (fail2ban's sshd samples)", () => {
  const text = readFileSync(FAIL2BAN_SSHD, "utf8");
  const lines = text.split("\n");

  for (const mode of MODES) {
    test(`${mode} mode, rules test: each yields its session's address or none, never the injected one`, () => {
      /* the samples are where the issue says: injected text, annotated with the session's address */
      for (const [n, host] of Object.entries(AMBIGUOUS)) {
        expect(lines[Number(n) - 2]).toContain(`"host": "${host}"`);
        expect(lines[Number(n) - 2]).toContain("njecting");
      }
      const result = testRules(loadRules("LG", RULES, mode), text);
      const byLine = new Map(result.matches.map((m) => [m.line, m]));
      for (const [n, host] of Object.entries(NEIGHBOURS)) expect([Number(n), byLine.get(Number(n))?.host]).toEqual([Number(n), host]);
      for (const [n, host] of Object.entries(AMBIGUOUS)) {
        const m = byLine.get(Number(n));
        expect(m?.rule).toBe("failed-auth");
        expect(m?.ambiguous).toBe(true);
        /* 12946 and 2737 have an earlier unambiguous line; 12947 has none */
        expect([Number(n), m?.host]).toEqual([Number(n), Number(n) === 137 ? null : host]);
      }
      for (const m of result.matches) if (/sshd\[(12946|12947|2737)\]:/.test(lines[m.line - 1]!)) expect(INJECTED).not.toContain(m.host);
    });
  }

  test("the daemon counts them against their session's address (the samples' loopback moved to 203.0.113.50 and 2001:db8:cccc:1234::1:1), never the injected one", async () => {
    /* loopback is never counted, so the daemon would prove nothing with it: the same lines, other addresses */
    const pids = /sshd\[(12946|12947|2737)\]:/;
    const own = lines
      .filter((l) => pids.test(l))
      .map((l) => l.replaceAll("127.0.0.1", "203.0.113.50").replaceAll("aaaa:bbbb:cccc:1234::1:1", "2001:db8:cccc:1234::1:1"));
    expect(own.length).toBe(8);
    const ctx = openModule(rootFor("normal"), "LG");
    const { rt, bans } = runtime(ctx);
    await rt.processBlock(block(own));
    for (const address of INJECTED) expect([address, ctx.store.getHost(address)]).toEqual([address, null]);
    /* 12946: four failed attempts, 2737: three; 12947's only line has no session address */
    expect(ctx.store.getHost("203.0.113.50")?.affairs ?? 0).toBe(2); /* after the ban at 5: 7 - 5 */
    expect(bans.map((b) => b.address)).toEqual(["203.0.113.50"]);
    expect(ctx.store.getHost("2001:db8:cccc:1234::1:1")).toBeNull();
    await ctx.close();
  });
});
