/**
 * What a legitimate user writes on the way to logging in costs nothing (issue 18, item 4): an
 * agent offering keys the server refuses, PAM's failure of one module of a stack that another
 * accepts. Those lines (`held` rules) wait for their connection's verdict: a login for their
 * account forgets them; a further failure, a login for another account or the connection's end
 * counts them. A password failure counts at once and stays unless forgiveOnSuccess, and `rules
 * test` marks the forgotten lines. Through the daemon's pipeline (ModuleRuntime: real rules, real
 * SQLite, the dry-run firewall).
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { openModule } from "../../src/modules/context";
import { loadRules } from "../../src/modules/registry";
import { testRules } from "../../src/modules/ruletest";
import { type BanReport, ModuleRuntime, partsOf } from "../../src/pipeline/run";
import { ModuleStore } from "../../src/store/module-db";
import { makeRoot, WATCHER } from "../helpers/root";

const RULES = join(import.meta.dir, "..", "..", "rules");
const NOW = Date.UTC(2026, 10, 25, 12, 0, 0) / 1000;
const USER = "203.0.113.60";

/* OpenSSH 10.5 shapes (shared/samples): an agent offers two keys the server refuses, then one it accepts */
const KEYS_THEN_LOGIN = [
  `Nov 25 11:40:01 srv sshd-session[5001]: Connection from ${USER} port 40100 on 198.51.100.1 port 22 rdomain ""`,
  `Nov 25 11:40:01 srv sshd-session[5001]: Failed publickey for deploy from ${USER} port 40100 ssh2: ECDSA SHA256:Qm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg`,
  `Nov 25 11:40:01 srv sshd-session[5001]: Failed publickey for deploy from ${USER} port 40100 ssh2: RSA SHA256:cXV1eHF1dXhxdXV4cXV1eHF1dXhCb29iYXJiYXpxdXg`,
  `Nov 25 11:40:02 srv sshd-session[5001]: Accepted publickey for deploy from ${USER} port 40100 ssh2: ED25519 SHA256:o9d+Q0zkZ22QbxT7U93ejOff5l1U7AiEHfVDaJ2sKwQ`,
];
/* pam_unix fails, pam_ldap (the next module of the stack) accepts: no Failed password line */
const PAM_STACK_THEN_LOGIN = [
  `Nov 25 11:41:00 srv sshd-session[5002]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=${USER}  user=deploy`,
  `Nov 25 11:41:01 srv sshd-session[5002]: Accepted password for deploy from ${USER} port 40102 ssh2`,
];
/* a mistyped password: PAM's line and sshd's Failed password, then the right one */
const MISTYPE_THEN_LOGIN = [
  `Nov 25 11:42:00 srv sshd-session[5003]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=${USER}  user=deploy`,
  `Nov 25 11:42:02 srv sshd-session[5003]: Failed password for deploy from ${USER} port 40104 ssh2`,
  `Nov 25 11:42:05 srv sshd-session[5003]: Accepted password for deploy from ${USER} port 40104 ssh2`,
];
/* PAM fails for root, then the client logs in as another account it owns: root's failure is no one's mistake */
const ROOT_THEN_OTHER_LOGIN = [
  `Nov 25 11:44:00 srv sshd-session[5005]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser=root rhost=${USER}`,
  `Nov 25 11:44:02 srv sshd-session[5005]: Accepted password for deploy from ${USER} port 40108 ssh2`,
];
/* refused keys and no login: the connection's failure stays */
const KEYS_THEN_LEAVE = [
  `Nov 25 11:43:00 srv sshd-session[5004]: Failed publickey for deploy from ${USER} port 40106 ssh2: RSA SHA256:cXV1eHF1dXhxdXV4cXV1eHF1dXhCb29iYXJiYXpxdXg`,
  `Nov 25 11:43:05 srv sshd-session[5004]: Connection closed by authenticating user deploy ${USER} port 40106 [preauth]`,
];

async function run(lines: string[], config = "") {
  const root = makeRoot("withdraw", { "etc/watcher.toml": `firewall = "dryrun"\n[modules.LG]\ndns = false\n${config}` });
  const ctx = openModule(root, "LG");
  const bans: BanReport[] = [];
  const rt = new ModuleRuntime({ ...partsOf(ctx), clock: () => NOW, useLineTime: true, onBan: (b) => bans.push(b) });
  await rt.processBlock(`${lines.join("\n")}\n`);
  const affairs = ctx.store.getHost(USER)?.affairs ?? 0;
  await ctx.close();
  return { affairs, bans: bans.map((b) => b.address) };
}

describe("refused keys and PAM's lines wait for their connection's verdict", () => {
  test("refused keys, then a key accepted: nothing stays", async () => expect((await run(KEYS_THEN_LOGIN)).affairs).toBe(0));
  test("PAM's failure of one module, then a login: nothing stays", async () => expect((await run(PAM_STACK_THEN_LOGIN)).affairs).toBe(0));
  test("a mistyped password stays counted, unless forgiveOnSuccess", async () => {
    expect((await run(MISTYPE_THEN_LOGIN)).affairs).toBe(1);
    expect((await run(MISTYPE_THEN_LOGIN, "forgiveOnSuccess = true\n")).affairs).toBe(0);
  });
  test("refused keys without a login count when the connection ends", async () => expect((await run(KEYS_THEN_LEAVE)).affairs).toBe(1));
  test("a login for another account counts the failures, and a ban follows at once", async () => {
    expect((await run(ROOT_THEN_OTHER_LOGIN)).affairs).toBe(1);
    expect((await run(ROOT_THEN_OTHER_LOGIN, "maxAffairs = 1\n")).bans).toEqual([USER]);
  });
  test("refused keys before a login ban nobody, even with maxAffairs = 1", async () => {
    const r = await run(KEYS_THEN_LOGIN, "maxAffairs = 1\n");
    expect(r.bans).toEqual([]);
  });
  test("a password failure still bans at once", async () => {
    const r = await run(MISTYPE_THEN_LOGIN, "maxAffairs = 1\n");
    expect(r.bans).toEqual([USER]);
  });
  test("rules test shows where each line counts: held lines, the line that counts them, forgotten ones", () => {
    const result = testRules(loadRules("LG", RULES, "normal"), `${[...KEYS_THEN_LOGIN, ...MISTYPE_THEN_LOGIN, ...KEYS_THEN_LEAVE, ...ROOT_THEN_OTHER_LOGIN].join("\n")}\n`);
    expect(result.matches.map((m) => [m.line, m.rule, m.action, m.withdrawn ?? false, m.countedOn ?? null, m.counts ?? null])).toEqual([
      [1, "connection-from", "ignore", false, null, null],
      [2, "failed-publickey", "held", true, null, null],
      [3, "failed-publickey", "held", true, null, null],
      [4, "accepted", "success", false, null, null],
      [5, "pam-auth-failure", "held", false, 6, null],
      [6, "failed-auth", "count", false, null, [5]],
      [7, "accepted", "success", false, null, null],
      [8, "failed-publickey", "held", false, 9, null],
      [9, "preauth-closed", "count", false, null, [8]],
      [10, "pam-auth-failure", "held", false, 11, null],
      [11, "accepted", "count", false, null, [10]],
    ]);
  });
  test("a stdin module that reaches the end of its input counts what its sessions still held", () => {
    const root = makeRoot("withdraw-stdin", { "etc/watcher.toml": 'firewall = "dryrun"\n[modules.LG]\ndns = false\n' });
    const r = Bun.spawnSync([WATCHER, "--root", root, "module", "LG", "--stdin"], { stdin: new TextEncoder().encode(`${KEYS_THEN_LEAVE[0]}\n`), stderr: "pipe" });
    expect([r.exitCode, r.stderr.toString()]).toEqual([0, expect.any(String)]);
    const store = new ModuleStore(join(root, "var", "db", "LG.db"));
    expect(store.getHost(USER)?.affairs).toBe(1);
    store.close();
  });
  test("a log that ends before the verdict: held lines count on themselves", () => {
    const result = testRules(loadRules("LG", RULES, "normal"), `${KEYS_THEN_LEAVE[0]}\n`);
    expect(result.matches.map((m) => [m.rule, m.action, m.host])).toEqual([["failed-publickey", "count", USER]]);
  });
});
