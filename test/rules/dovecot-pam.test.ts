/**
 * Dovecot authenticating through PAM (issue 18, item 2): pam_unix's failure line (program `auth`,
 * auth.log) and Dovecot's own `pam(user,A): pam_authenticate() failed` (mail.log) describe one
 * attempt. Lines written by Debian 12's Dovecot 2.3.19 and PAM 1.5.2 (test/fixtures/real/dovecot.log,
 * their loopback clients moved to documentation addresses, which the daemon counts) go through the
 * daemon's pipeline (ModuleRuntime: real rules, real SQLite, the dry-run firewall): one attempt is
 * one affair whether auth.log, mail.log or both are read.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { openModule } from "../../src/modules/context";
import { ModuleRuntime, partsOf } from "../../src/pipeline/run";
import { makeRoot } from "../helpers/root";

const REAL = readFileSync(join(import.meta.dir, "..", "fixtures", "real", "dovecot.log"), "utf8").split("\n");
const NOW = Date.UTC(2026, 10, 25, 12, 0, 0) / 1000;
/* the real lines' clients: 127.0.0.6 tried twice (alice, mallory), 127.0.0.7 once (bob) */
const MOVED: Record<string, string> = { "127.0.0.6": "203.0.113.6", "127.0.0.7": "203.0.113.7" };

function real(from: number, to: number, program: RegExp): string[] {
  return REAL.slice(from - 1, to)
    .filter((l) => program.test(l))
    .map((l) => l.replace(/127\.0\.0\.[67]\b/g, (a) => MOVED[a]!));
}
/* lines 3-14: per attempt pam_unix's line (auth) and Dovecot's pam(...) line; passwd-file's lines
   (a second passdb on that machine) left out, so that only the pair is measured */
const AUTH_LOG = real(3, 14, / vm auth: pam_unix\(dovecot:auth\): authentication failure;/);
const MAIL_LOG = real(3, 14, / vm dovecot: auth-worker/);

async function affairs(lines: string[]): Promise<Record<string, number>> {
  const ctx = openModule(makeRoot("dovecot-pam", { "etc/watcher.toml": 'firewall = "dryrun"\n[modules.MB]\ndns = false\n' }), "MB");
  const rt = new ModuleRuntime({ ...partsOf(ctx), clock: () => NOW, useLineTime: true });
  await rt.processBlock(`${lines.join("\n")}\n`);
  const out = Object.fromEntries(Object.values(MOVED).map((a) => [a, ctx.store.getHost(a)?.affairs ?? 0]));
  await ctx.close();
  return out;
}

describe("Dovecot through PAM: one attempt, one affair", () => {
  test("the real lines are what this test thinks they are", () => {
    expect(AUTH_LOG.length).toBe(3);
    expect(MAIL_LOG.length).toBe(3);
    for (const l of AUTH_LOG) expect(l).toContain("pam_unix(dovecot:auth): authentication failure;");
    for (const l of MAIL_LOG) expect(l).toContain("pam_authenticate() failed");
  });
  const expected = { "203.0.113.6": 2, "203.0.113.7": 1 };
  test("auth.log alone", async () => expect(await affairs(AUTH_LOG)).toEqual(expected));
  test("mail.log alone", async () => expect(await affairs(MAIL_LOG)).toEqual(expected));
  test("both, in the order they were written", async () => expect(await affairs(real(3, 14, / vm (auth: pam_unix\(dovecot:auth\): authentication failure;|dovecot: auth-worker)/))).toEqual(expected));
  test("both, one log after the other (two sources read at their own pace)", async () => {
    /* mail.log's lines first: their partners come later, out of line-time order, within the pair window */
    expect(await affairs([...MAIL_LOG, ...AUTH_LOG])).toEqual(expected);
  });
});
