import { describe, expect, test } from "bun:test";
import { type Ip, parseIp } from "../../src/core/ip";
import { type CompiledRule, RuleSet } from "../../src/core/rules";
import { HeaderScan, scanSyslog } from "../../src/core/syslog";
import { PAIR_SECONDS, SessionKeys, SessionTable } from "../../src/pipeline/sessions";
import { testRules } from "../../src/modules/ruletest";

function rule(name: string, extra: Partial<CompiledRule> = {}): CompiledRule {
  return { name, file: "t", index: 0, action: "count", mode: "normal", group: "attempt", stream: name, once: false, session: null, pair: null, forgiven: false, held: false, connections: true, sessionOnly: false, patterns: [name], patternIsPrefix: false, scoped: false, pathScoped: false, rate: null, heads: [], templates: [], ...extra };
}
const ip = (s: string): Ip => parseIp(s)!;
const A = ip("203.0.113.5");
const B = ip("198.51.100.9");
const weights = (out: { weight: number }[]) => out.map((a) => a.weight);

describe("merging the lines of one connection", () => {
  test("PAM failure + Failed password for each of three tries, then PAM's summary: 3 affairs", () => {
    const s = new SessionTable();
    const pam = rule("pam");
    const failed = rule("failed");
    const got = [
      s.attribute("sshd[1]", A, pam, 1, 0),
      s.attribute("sshd[1]", A, failed, 1, 0),
      s.attribute("sshd[1]", A, failed, 1, 1),
      s.attribute("sshd[1]", A, failed, 1, 2),
      s.attribute("sshd[1]", A, pam, 2, 3), /* PAM 2 more authentication failures */
    ].flatMap(weights);
    expect(got).toEqual([1, 0, 1, 1, 0]);
  });
  test("Invalid user, PAM failure, Failed password, Connection closed: one try, one affair", () => {
    const s = new SessionTable();
    const got = ["invalid", "pam", "failed", "closed"].flatMap((n) => weights(s.attribute("sshd[2]", A, rule(n), 1, 0)));
    expect(got).toEqual([1, 0, 0, 0]);
  });
  test("a once-rule counts one affair per connection however often it repeats", () => {
    const s = new SessionTable();
    const key = rule("publickey", { once: true });
    expect([1, 2, 3].flatMap(() => weights(s.attribute("sshd[3]", A, key, 1, 0)))).toEqual([1, 0, 0]);
  });
  test("rules without a group are never merged; other sessions are separate", () => {
    const s = new SessionTable();
    const drop = rule("drop", { group: null });
    expect([...s.attribute("sshd[9]", A, drop, 1, 0), ...s.attribute("sshd[9]", A, drop, 1, 0)].map((a) => a.weight)).toEqual([1, 1]);
    expect(weights(s.attribute("sshd[4]", A, rule("failed"), 1, 0))).toEqual([1]);
    expect(weights(s.attribute("sshd[5]", A, rule("failed"), 1, 0))).toEqual([1]);
  });
});

describe("attributing lines without an address", () => {
  test("a later line of the session brings the address for the waiting ones", () => {
    const s = new SessionTable();
    expect(s.attribute("sshd[6]", null, rule("kex"), 1, 0)).toEqual([]);
    const out = s.attribute("sshd[6]", A, rule("banner"), 1, 0);
    expect(out.map((a) => [a.host.text, a.rule.name, a.weight])).toEqual([
      [A.text, "kex", 1],
      [A.text, "banner", 0],
    ]);
  });
  test("an earlier line's address is used", () => {
    const s = new SessionTable();
    s.attribute("sshd[7]", A, rule("from", { action: "ignore" }), 1, 0);
    expect(s.attribute("sshd[7]", null, rule("too-many"), 1, 0).map((a) => a.host.text)).toEqual([A.text]);
  });
  test("no pid, no address: nothing to count", () => {
    expect(new SessionTable().attribute("", null, rule("x"), 1, 0)).toEqual([]);
  });
  test("a reused pid with another address starts a new session; so does one after the ttl", () => {
    const s = new SessionTable(100, 600);
    s.attribute("sshd[8]", A, rule("failed"), 1, 0);
    expect(weights(s.attribute("sshd[8]", B, rule("failed"), 1, 1))).toEqual([1]);
    s.attribute("sshd[9]", A, rule("x", { action: "ignore" }), 1, 0);
    expect(s.attribute("sshd[9]", null, rule("y"), 1, 601)).toEqual([]);
  });
  test("the table is bounded: the oldest session goes", () => {
    const s = new SessionTable(3, 600);
    for (let pid = 0; pid < 10; pid++) s.attribute(`sshd[${pid}]`, A, rule("x", { action: "ignore" }), 1, 0);
    expect(s.size).toBeLessThanOrEqual(3);
    expect(s.attribute("sshd[0]", null, rule("y"), 1, 0)).toEqual([]);
    expect(s.attribute("sshd[9]", null, rule("y"), 1, 0)).toHaveLength(1);
  });
});

describe("forgiveness", () => {
  test("forgive returns what the session counted, once (forgiveOnSuccess: everything)", () => {
    const s = new SessionTable();
    s.attribute("sshd[10]", A, rule("failed"), 1, 0, 1);
    s.attribute("sshd[10]", A, rule("failed"), 1, 0, 2);
    expect(s.forgive("sshd[10]", true)).toEqual({ affairs: 2, tags: [1, 2] });
    expect(s.forgive("sshd[10]", true)).toEqual({ affairs: 0, tags: [] });
    expect(s.forgive("sshd[11]", true)).toEqual({ affairs: 0, tags: [] });
  });
  /* issue 18, item 4: rules marked `forgiven` (sshd's `error: PAM:` lines) */
  const publickey = rule("failed-publickey", { forgiven: true, once: true });
  const pam = rule("pam-auth-failure", { forgiven: true, stream: "pam" });
  const failed = rule("failed-auth");
  test("without forgiveOnSuccess: refused keys before a good one are withdrawn, the lines that counted them named", () => {
    const s = new SessionTable();
    s.attribute("sshd[12]", A, publickey, 1, 0, 1);
    s.attribute("sshd[12]", A, publickey, 1, 0, 2);
    expect(s.forgive("sshd[12]", false)).toEqual({ affairs: 1, tags: [1, 2] });
    expect(s.forgive("sshd[12]", false)).toEqual({ affairs: 0, tags: [] });
  });
  test("without forgiveOnSuccess: a mistyped password (PAM's line and Failed password) stays; PAM lines alone go", () => {
    const s = new SessionTable();
    s.attribute("sshd[13]", A, pam, 1, 0, 1);
    s.attribute("sshd[13]", A, failed, 1, 0, 2);
    expect(s.forgive("sshd[13]", false)).toEqual({ affairs: 0, tags: [] });
    const t = new SessionTable();
    t.attribute("sshd[14]", A, pam, 1, 0, 1);
    t.attribute("sshd[14]", A, pam, 1, 0, 2);
    t.attribute("sshd[14]", A, failed, 1, 0, 3);
    /* two PAM failures, one Failed password: the session's attempts fall from 2 to 1 */
    expect(t.forgive("sshd[14]", false)).toEqual({ affairs: 1, tags: [1, 2] });
    /* a later failure of the same connection counts from there */
    expect(weights(t.attribute("sshd[14]", A, failed, 1, 1, 4))).toEqual([1]);
  });
  test("a forgiven rule outside any group: its own lines' affairs", () => {
    const s = new SessionTable();
    s.attribute("sshd[15]", A, rule("probe", { forgiven: true, group: null }), 1, 0, 1);
    s.attribute("sshd[15]", A, rule("other", { group: null }), 1, 0, 2);
    expect(s.forgive("sshd[15]", false)).toEqual({ affairs: 1, tags: [1] });
  });
});

describe("held lines wait for their connection's verdict (issue 18, item 4)", () => {
  const key = rule("failed-publickey", { held: true, once: true });
  const pam = rule("pam-auth-failure", { held: true, stream: "pam" });
  const failed = rule("failed-auth");
  const accepted = rule("accepted", { action: "success" });
  const closed = rule("session-end", { action: "ignore", session: "end" });
  const start = rule("connection-from", { action: "ignore", session: "start" });
  const shown = (out: { rule: CompiledRule; weight: number; tag: number; at: number }[]) => out.map((a) => [a.rule.name, a.weight, a.tag, a.at]);

  test("counted on the connection's end, merged as one attempt", () => {
    const s = new SessionTable();
    expect(s.attribute("sshd[40]", A, key, 1, 0, 1, "git")).toEqual([]);
    expect(s.attribute("sshd[40]", A, key, 1, 0, 2, "git")).toEqual([]);
    expect(shown(s.attribute("sshd[40]", A, closed, 1, 1, 3))).toEqual([
      ["failed-publickey", 1, 1, 3],
      ["failed-publickey", 0, 2, 3],
      ["session-end", 1, 3, 3],
    ]);
  });
  test("a login for the same account forgets them; forgive names the lines", () => {
    const s = new SessionTable();
    s.attribute("sshd[41]", A, pam, 1, 0, 1, "deploy");
    expect(shown(s.attribute("sshd[41]", A, accepted, 1, 1, 2, "deploy"))).toEqual([["accepted", 1, 2, 2]]);
    expect(s.forgive("sshd[41]", false)).toEqual({ affairs: 0, tags: [1] });
    /* nothing left for the end */
    expect(shown(s.attribute("sshd[41]", A, closed, 1, 2, 3))).toEqual([["session-end", 1, 3, 3]]);
  });
  test("a login for another account counts them on the login line", () => {
    const s = new SessionTable();
    s.attribute("sshd[42]", A, pam, 1, 0, 1, "root");
    s.attribute("sshd[42]", A, pam, 1, 0, 2, "root");
    expect(shown(s.attribute("sshd[42]", A, accepted, 1, 1, 3, "known"))).toEqual([
      ["pam-auth-failure", 1, 1, 3],
      ["pam-auth-failure", 1, 2, 3],
      ["accepted", 1, 3, 3],
    ]);
  });
  test("a held line for another account is the verdict: both count on it", () => {
    const s = new SessionTable();
    s.attribute("sshd[43]", A, pam, 1, 0, 1, "root");
    expect(shown(s.attribute("sshd[43]", A, pam, 1, 0, 2, "sudoer"))).toEqual([
      ["pam-auth-failure", 1, 1, 2],
      ["pam-auth-failure", 1, 2, 2],
    ]);
  });
  test("a further failure counts them on its line, as one attempt with it", () => {
    const s = new SessionTable();
    s.attribute("sshd[44]", A, pam, 1, 0, 1, null);
    expect(shown(s.attribute("sshd[44]", A, failed, 1, 0, 2, "root"))).toEqual([
      ["pam-auth-failure", 1, 1, 2],
      ["failed-auth", 0, 2, 2],
    ]);
  });
  test("a connection that ends without a verdict (a new one under its pid, ttl) counts them on themselves", () => {
    const s = new SessionTable(8192, 600);
    s.attribute("sshd[45]", A, key, 1, 0, 1, "git");
    expect(shown(s.attribute("sshd[45]", B, start, 1, 5, 2))).toEqual([
      ["connection-from", 1, 2, 2],
      ["failed-publickey", 1, 1, 1],
    ]);
    s.attribute("sshd[46]", A, key, 1, 10, 3, "git");
    /* any later line finds the quiet connection's held line past the ttl */
    expect(shown(s.attribute("sshd[47]", B, failed, 1, 700, 4))).toEqual([
      ["failed-auth", 1, 4, 4],
      ["failed-publickey", 1, 3, 3],
    ]);
  });
  test("20,000 other connections do not wash an attacker's held lines away", () => {
    const s = new SessionTable(1024);
    s.attribute("sshd[48]", A, key, 1, 0, 1, "git");
    for (let pid = 1000; pid < 21000; pid++) s.attribute(`sshd[${pid}]`, B, failed, 1, 1, pid);
    /* the connection's end still finds the line it held */
    expect(shown(s.attribute("sshd[48]", A, closed, 1, 2, 2))).toEqual([
      ["failed-publickey", 1, 1, 2],
      ["session-end", 1, 2, 2],
    ]);
  });
  test("the log is over: what is still held counts on itself", () => {
    const s = new SessionTable();
    s.attribute("sshd[49]", A, key, 1, 0, 7, "git");
    expect(shown(s.endOfLog())).toEqual([["failed-publickey", 1, 7, 7]]);
    expect(s.endOfLog()).toEqual([]);
  });
});

describe("a session ends where the server ends it (issue 16, item 1)", () => {
  const end = (name: string, extra: Partial<CompiledRule> = {}) => rule(name, { action: "ignore", session: "end", ...extra });
  const start = rule("connection-from", { action: "ignore", session: "start" });

  test("after its end, a line without an address is nobody's: counted as unattributed", () => {
    const s = new SessionTable();
    s.attribute("sshd[20]", A, start, 1, 0);
    s.attribute("sshd[20]", A, rule("accepted", { action: "success" }), 1, 0);
    s.attribute("sshd[20]", null, end("pam-session-closed"), 1, 1);
    expect(s.attribute("sshd[20]", null, rule("kex"), 1, 2)).toEqual([]);
    /* the reused pid's later address is the new connection's, and takes its waiting line */
    expect(s.attribute("sshd[20]", B, rule("banner"), 1, 3).map((a) => [a.host.text, a.rule.name, a.current])).toEqual([
      [B.text, "kex", false],
      [B.text, "banner", true],
    ]);
    expect(s.stats.unattributed).toBe(0);
  });

  test("an end without an address: the lines that waited for one are unattributed", () => {
    const s = new SessionTable();
    s.attribute("sshd[21]", null, rule("kex"), 1, 0);
    s.attribute("sshd[21]", null, end("pam-session-closed"), 1, 0);
    expect(s.attribute("sshd[21]", A, rule("banner"), 1, 1).map((a) => [a.rule.name, a.weight])).toEqual([["banner", 1]]);
    expect(s.stats.unattributed).toBe(1);
  });

  test("an end with the address gives it to the lines that waited, then the session is over", () => {
    const s = new SessionTable();
    s.attribute("sshd[22]", null, rule("kex", { stream: "kex" }), 1, 0, 7);
    expect(s.attribute("sshd[22]", A, end("closed", { action: "count", stream: "probe" }), 1, 0, 8).map((a) => [a.host.text, a.tag, a.weight])).toEqual([
      [A.text, 7, 1],
      [A.text, 8, 0],
    ]);
    expect(s.attribute("sshd[22]", null, rule("kex"), 1, 1)).toEqual([]);
  });

  test("the connection's last lines after its end carry its own address: still its session, merged", () => {
    const s = new SessionTable();
    const failed = rule("failed");
    expect(weights(s.attribute("sshd[23]", A, failed, 1, 0))).toEqual([1]);
    /* Received disconnect ... [preauth], then Disconnected from invalid user ... [preauth]: one try */
    expect(weights(s.attribute("sshd[23]", A, end("received-disconnect", { action: "count", stream: "probe" }), 1, 0))).toEqual([0]);
    expect(weights(s.attribute("sshd[23]", A, end("disconnected", { action: "count", stream: "preauth-disconnect" }), 1, 0))).toEqual([0]);
  });

  test("a start line begins a new session: the pid's waiting lines are not the new client's", () => {
    const s = new SessionTable();
    s.attribute("sshd[24]", null, rule("kex"), 1, 0);
    expect(s.attribute("sshd[24]", A, start, 1, 1).map((a) => [a.rule.name, a.current])).toEqual([["connection-from", true]]);
    expect(s.stats.unattributed).toBe(1);
    expect(s.attribute("sshd[24]", null, rule("invalid-preauth"), 1, 2).map((a) => a.host.text)).toEqual([A.text]);
    /* Connection from the same address again: a new connection, its attempts counted afresh */
    s.attribute("sshd[24]", A, start, 1, 3);
    expect(weights(s.attribute("sshd[24]", null, rule("invalid-preauth"), 1, 4))).toEqual([1]);
  });

  test("a line that reads two ways (no address of its own) takes the open session's, or waits for it", () => {
    const s = new SessionTable();
    s.attribute("sshd[25]", A, rule("pam", { stream: "pam" }), 1, 0);
    expect(s.attribute("sshd[25]", null, rule("failed"), 1, 0).map((a) => [a.host.text, a.weight])).toEqual([[A.text, 0]]);
    expect(s.attribute("sshd[26]", null, rule("failed"), 1, 0)).toEqual([]);
    expect(s.attribute("sshd[26]", B, rule("closed", { stream: "closed" }), 1, 0).map((a) => [a.host.text, a.rule.name])).toEqual([
      [B.text, "failed"],
      [B.text, "closed"],
    ]);
  });

  test("address-less lines without a pid are unattributed", () => {
    const s = new SessionTable();
    expect(s.attribute("", null, rule("kex"), 1, 0)).toEqual([]);
    expect(s.attribute("", null, rule("note", { action: "ignore" }), 1, 0)).toEqual([]);
    expect(s.stats.unattributed).toBe(1);
  });
});

describe("a pid that is no connection", () => {
  test("in a rule file that marks no session start or end, a line without its own address is nobody's", () => {
    /* Dovecot's auth process serves many clients at once: the address of its last line is not the next line's */
    const s = new SessionTable();
    s.attribute("dovecot[30]", A, rule("mismatch", { connections: false }), 1, 0);
    expect(s.attribute("dovecot[30]", null, rule("mismatch", { connections: false }), 1, 0)).toEqual([]);
    expect(s.stats.unattributed).toBe(1);
  });
});

describe("a flood of sessions (issue 16, item 7)", () => {
  test("20,000 other connections do not wash away an attacker's lines that wait for its address", () => {
    const s = new SessionTable();
    const banner = rule("banner", { group: null });
    const failed = rule("failed", { group: null });
    expect(s.attribute("sshd[1]", null, banner, 1, 0)).toEqual([]); /* no address yet: it waits */
    for (let i = 0; i < 20_000; i++) s.attribute(`sshd[${1000 + i}]`, B, failed, 1, 1);
    const released = s.attribute("sshd[1]", A, failed, 1, 2);
    expect(released.map((a) => [a.host.text, a.rule.name, a.weight])).toEqual([
      ["203.0.113.5", "banner", 1],
      ["203.0.113.5", "failed", 1],
    ]);
    expect(s.stats.unattributed).toBe(0);
    expect(s.size).toBeLessThanOrEqual(8192 + 2048);
  });
});

describe("pairs: one attempt written by two programs (issue 18, item 2)", () => {
  /* pam_unix's line (dovecot-pam.rule) and Dovecot's pam(...) line (dovecot.rule): no session in common */
  const pamUnix = rule("dovecot-pam-failure", { file: "dovecot-pam.rule", group: null, connections: false, pair: "pam" });
  const dovecotPam = rule("auth23-worker-pam", { file: "dovecot.rule", group: "login", stream: "password", connections: false, pair: "pam" });
  test("both lines of one attempt, in either order: one affair", () => {
    const s = new SessionTable();
    expect([...s.attribute("", A, pamUnix, 1, 100), ...s.attribute("dovecot[7]", A, dovecotPam, 1, 101)].map((a) => a.weight)).toEqual([1, 0]);
    expect([...s.attribute("dovecot[7]", B, dovecotPam, 1, 200), ...s.attribute("", B, pamUnix, 1, 202)].map((a) => a.weight)).toEqual([1, 0]);
  });
  test("n attempts from one address, both logs read: n affairs; one log only: n too", () => {
    const s = new SessionTable();
    const both = [0, 3, 6].flatMap((t) => [...s.attribute("", A, pamUnix, 1, t), ...s.attribute("dovecot[7]", A, dovecotPam, 1, t + 1)]);
    expect(both.reduce((n, a) => n + a.weight, 0)).toBe(3);
    const one = [20, 21, 22].flatMap((t) => s.attribute("", B, pamUnix, 1, t));
    expect(one.map((a) => a.weight)).toEqual([1, 1, 1]);
  });
  test("lines of one file never pair with each other; nor across addresses, nor beyond PAIR_SECONDS", () => {
    const s = new SessionTable();
    expect([...s.attribute("", A, pamUnix, 1, 0), ...s.attribute("", A, pamUnix, 1, 1)].map((a) => a.weight)).toEqual([1, 1]);
    const t = new SessionTable();
    expect([...t.attribute("", A, pamUnix, 1, 0), ...t.attribute("dovecot[7]", B, dovecotPam, 1, 1)].map((a) => a.weight)).toEqual([1, 1]);
    const u = new SessionTable();
    expect([...u.attribute("", A, pamUnix, 1, 0), ...u.attribute("dovecot[7]", A, dovecotPam, 1, PAIR_SECONDS + 1)].map((a) => a.weight)).toEqual([1, 1]);
  });
  test("a line its session merged already (weight 0) still pairs: the attempt is counted once", () => {
    const s = new SessionTable();
    const summary = rule("login-auth-failed", { group: "login", stream: "summary", connections: false });
    /* the login summary first (its session counted the attempt), then Dovecot's pam line of that session, then pam_unix's */
    const got = [...s.attribute("dovecot:S1", A, summary, 1, 0), ...s.attribute("dovecot:S1", A, dovecotPam, 1, 0), ...s.attribute("", A, pamUnix, 1, 1)];
    expect(got.map((a) => a.weight)).toEqual([1, 0, 0]);
  });
});

describe("session keys", () => {
  const keyOf = (keys: SessionKeys, line: string, serviceSession: string | null = null) => {
    const h = new HeaderScan();
    expect(scanSyslog(line, 0, line.length, h)).toBe(true);
    return keys.of(line, h, serviceSession);
  };

  test("one key for one program and pid as written, whatever else the line says", () => {
    const keys = new SessionKeys();
    const k = (tag: string) => keyOf(keys, `Nov 24 10:00:01 srv ${tag}: Failed password for root from 203.0.113.5 port 22 ssh2`);
    expect(k("sshd[42]")).toBe(k("sshd[42]"));
    const distinct = ["sshd[42]", "sshd[43]", "sshd-session[42]", "sshd[042]", "sshd[0]", "sshd[1234567890]", "sshd[12a]", "sshdx[42]"].map(k);
    expect(new Set(distinct).size).toBe(distinct.length);
    /* a pid that does not fold into a number keeps its text */
    expect(k("sshd[042]")).toBe("sshd[042]");
    expect(k("sshd[1234567890]")).toBe("sshd[1234567890]");
    expect(k("sshd")).toBe("");
  });

  test("a service's own session id is the key where the rule found one", () => {
    const keys = new SessionKeys();
    expect(keyOf(keys, "Nov 24 10:00:01 srv dovecot[7]: auth failed", "S1")).toBe("dovecot:S1");
  });
});

describe("a service's session id without the address (OpenSMTPD: one pid for every session)", () => {
  const rules = new RuleSet(
    [
      {
        file: "ids.rule",
        text: `programs = ["smtpd"]
[[rule]]
name = "connected"
pattern = " smtp connected "
host = "^<SESSION> smtp connected address=<HOST> host=<ANY>$"
action = "ignore"
session = "start"
[[rule]]
name = "refused"
pattern = " smtp refused "
host = ["^<SESSION> smtp refused <ANY>$", "^<ANY> by session <SESSION>$"]
[[rule]]
name = "pid-line"
pattern = "pid line from "
host = "^pid line from <HOST>$"
action = "ignore"
[[rule]]
name = "disconnected"
pattern = " smtp disconnected"
host = "^<SESSION> smtp disconnected<ANY>$"
action = "ignore"
session = "end"
`,
      },
    ],
    "normal",
  );
  const hosts = (log: string[]) => testRules(rules, log.map((l) => `Dec  6 09:19:26 srv smtpd[833]: ${l}`).join("\n")).matches.map((m) => `${m.rule} ${m.host ?? "-"}`);

  test("interleaved sessions of one pid: each line takes the address of its own id's connected line", () => {
    expect(
      hosts([
        "00000000000000a1 smtp connected address=203.0.113.5 host=<unknown>",
        "00000000000000b2 smtp connected address=198.51.100.9 host=<unknown>",
        "00000000000000b2 smtp refused RCPT",
        "00000000000000a1 smtp refused RCPT",
        "00000000000000b2 smtp disconnected reason=quit",
        "00000000000000a1 smtp refused RCPT",
      ]),
    ).toEqual(["connected 203.0.113.5", "connected 198.51.100.9", "refused 198.51.100.9", "refused 203.0.113.5", "disconnected 198.51.100.9", "refused 203.0.113.5"]);
  });
  test("an id never seen, or seen only after its end, yields no address: never the pid's last client", () => {
    const out = testRules(
      rules,
      [
        "00000000000000a1 smtp connected address=203.0.113.5 host=<unknown>",
        "00000000000000c3 smtp refused RCPT",
        "00000000000000a1 smtp disconnected reason=quit",
        "00000000000000a1 smtp refused RCPT",
      ]
        .map((l) => `Dec  6 09:19:26 srv smtpd[833]: ${l}`)
        .join("\n"),
    );
    expect(out.matches.map((m) => `${m.rule} ${m.host ?? "-"}`)).toEqual(["connected 203.0.113.5", "refused -", "disconnected 203.0.113.5", "refused -"]);
    expect(out.unattributed).toBe(2);
  });
  test("the client cannot choose the address: a connected line in its text, an id read two ways", () => {
    expect(
      hosts([
        "00000000000000a1 smtp connected address=203.0.113.5 host=00000000000000d4 smtp connected address=192.0.2.7 host=x",
        "00000000000000d4 smtp refused RCPT",
        "00000000000000a1 smtp refused x 00000000000000d4 smtp connected address=192.0.2.7 host=x",
        "00000000000000d4 smtp refused RCPT",
        /* the client wrote " by session a1": the id reads two ways, and the line is nobody's, not its pid's */
        "pid line from 198.51.100.9",
        "00000000000000e5 smtp refused x by session 00000000000000a1",
      ]),
    ).toEqual(["connected 203.0.113.5", "refused -", "refused 203.0.113.5", "refused -", "pid-line 198.51.100.9", "refused -"]);
  });
});
