/**
 * A count a line claims is bounded (issue 16, item 7): Dovecot's summary carries the number of
 * failed attempts, and a forged one (or a user name claiming one) cannot inflate the counts and
 * statistics beyond what a ban needs.
 */
import { describe, expect, test } from "bun:test";
import { makeRoot, WATCHER } from "../helpers/root";

const summary = (attempts: number, pid: number) =>
  `Nov 25 10:40:06 mail dovecot: imap-login: Login aborted: Connection closed (auth failed, ${attempts} attempts in 18 secs) (auth_failed): user=<admin>, method=PLAIN, rip=203.0.113.77, lip=192.0.2.1, TLS: Connection closed, session=<A143chdhBOvLAH${pid}>\n`;

describe("a claimed count", () => {
  test("999999 attempts count as maxAffairs affairs: one ban, statistics not inflated", () => {
    const root = makeRoot("claimed", { "etc/watcher.toml": 'firewall = "dryrun"\n[modules.MB]\nenabled = true\ndns = false\n' });
    const p = Bun.spawnSync([WATCHER, "--root", root, "inject", "MB", "--direct", "--json"], { stdin: new TextEncoder().encode(summary(999999, 1) + summary(3, 2)) });
    expect(p.exitCode).toBe(0);
    const r = JSON.parse(p.stdout.toString());
    expect(r.affairs).toBe(5 + 3);
    expect(r.bans.length).toBe(1);
  });
});
