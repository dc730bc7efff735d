/**
 * Log files written on a test machine by the real programs (test/fixtures/real/README.md says
 * how): every line that records a failure must be counted by some rule, with the address the
 * server wrote; the decoy 192.0.2.9 that clients put in user names, helos, requests and
 * headers must never be extracted from any line.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ModuleName } from "../../src/core/config";
import { loadRules } from "../../src/modules/registry";
import { testRules } from "../../src/modules/ruletest";

const REAL = join(import.meta.dir, "..", "fixtures", "real");
const RULES = join(import.meta.dir, "..", "..", "rules");
const DECOY = "192.0.2.9";

interface Sample {
  file: string;
  module: ModuleName;
  /** header-less files of a web server */
  program: string | null;
  /** lines that record a client's failure */
  failure: RegExp;
  /** failures deliberately not counted, with why */
  exempt?: RegExp;
  /** the mode its rules count these lines in (default normal) */
  mode?: "aggressive";
}

const SAMPLES: Sample[] = [
  {
    file: "postfix.log",
    module: "MX",
    program: null,
    failure: /: reject: |PREGREET|too many errors|limit exceeded|lost connection after AUTH|auth=0\/|DNSBL rank|NON-SMTP|non-SMTP|PIPELINING/,
    /* temporary (the sender's DNS may be down); and the sample machine's own policy against a legitimate user */
    exempt: /: 4\d\d 4\.\d\.\d+ <[^>]*>: Sender address rejected: Domain not found|outbound delivery disabled in fixture sandbox/,
  },
  { file: "postfix.rfc3339.log", module: "MX", program: null, failure: /: reject: 5|PREGREET|too many errors|auth=0\// },
  { file: "postfix.log", module: "MB", program: null, failure: /SASL \w+ authentication failed: (?!Connection lost)/ },
  {
    file: "dovecot.log",
    module: "MB",
    program: null,
    failure: /\(auth failed, |Password mismatch|: unknown user|disallowed plaintext|disallowed cleartext/,
    exempt: /^.{0,40} dovecot: auth: Warning: |leak/ /* the old auth process's warnings after it was killed */,
  },
  { file: "dovecot.rfc3339.log", module: "MB", program: null, failure: /\(auth failed, |Password mismatch/, exempt: /auth: Warning: |leak/ },
  /* nginx's own file: a client can write a line of it whole (rules/WB/nginx-error.rule, forgeable) */
  { file: "nginx-error.log", module: "WB", program: "nginx-error", failure: /password mismatch|was not found in|limiting (requests|connections)/, mode: "aggressive" },
  { file: "nginx-error-info.log", module: "WB", program: "nginx-error", failure: /password mismatch|was not found in|limiting (requests|connections)/, mode: "aggressive" },
  {
    file: "apache-error.log",
    module: "WB",
    program: "apache-error",
    failure: / AH0(1617|1618|1614|1790|1794|1630|1797): /,
  },
  { file: "apache-access.log", module: "WB", program: "apache-access", failure: /"GET \/\.env|"GET \/\.git\/|sqlmap\/|Nikto/ },
  { file: "apache-access-vhost.log", module: "WB", program: "apache-access", failure: /"GET \/\.env|"GET \/\.git\/|sqlmap\/|Nikto/ },
  { file: "nginx-access.log", module: "WB", program: "nginx-access", failure: /"GET \/\.env|"GET \/\.git\/|sqlmap\/|Nikto/ },
];

describe("real log files", () => {
  for (const s of SAMPLES) {
    test(`${s.module} on ${s.file}: every failure counted, never the decoy`, () => {
      const text = readFileSync(join(REAL, s.file), "latin1");
      const result = testRules(loadRules(s.module, RULES, s.mode ?? "normal"), text, { program: s.program });
      const counted = new Map(result.matches.filter((m) => m.action === "count" || m.action === "ban").map((m) => [m.line, m]));
      expect(result.matches.filter((m) => m.host === DECOY)).toEqual([]);
      const missed = text
        .split("\n")
        .map((line, i) => ({ line, n: i + 1 }))
        .filter(({ line, n }) => s.failure.test(line) && !(s.exempt?.test(line) ?? false) && !counted.has(n))
        .map(({ line, n }) => `${s.file}:${n}: ${line}`);
      expect(missed).toEqual([]);
      expect(counted.size).toBeGreaterThan(0);
    });
  }
});
