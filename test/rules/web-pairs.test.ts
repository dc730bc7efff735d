/**
 * One request, two logs: a web server writes a refused or missing request to its access log and
 * often to its error log too (nginx `open() ... failed`, Apache mod_cgid's `script not found`,
 * `AH10244`). Rules of both logs name the same `pair` (web-probe, web-bad-request), so one probe
 * stays one affair whether the access log, the error log or both are read. Lines captured from
 * Debian 12's nginx 1.22 and Apache 2.4.71 (test/fixtures/WB/*-requests*.log) go through the
 * daemon's pipeline (ModuleRuntime: real rules, real SQLite, the dry-run firewall).
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { openModule } from "../../src/modules/context";
import { ModuleRuntime, partsOf } from "../../src/pipeline/run";
import { makeRoot } from "../helpers/root";

const NOW = Date.UTC(2026, 11, 6, 9, 30, 0) / 1000;

/** the log lines of a fixture (its annotations and comments left out) that `keep` selects */
function logLines(name: string, keep: (line: string) => boolean): string[] {
  return readFileSync(join(import.meta.dir, "..", "fixtures", "WB", name), "utf8")
    .split("\n")
    .filter((l) => l !== "" && !l.startsWith("#") && keep(l));
}

/* maxAffairs high: no ban resets a count while the test reads it */
async function affairs(lines: string[], hosts: readonly string[]): Promise<Record<string, number>> {
  const ctx = openModule(makeRoot("web-pairs", { "etc/watcher.toml": 'firewall = "dryrun"\n[modules.WB]\nenabled = true\ndns = false\nmaxAffairs = 100\n' }), "WB");
  const rt = new ModuleRuntime({ ...partsOf(ctx), clock: () => NOW, useLineTime: true });
  await rt.processBlock(`${lines.join("\n")}\n`);
  const out = Object.fromEntries(hosts.map((a) => [a, ctx.store.getHost(a)?.affairs ?? 0]));
  await ctx.close();
  return out;
}

describe("nginx: a probe in the access log and the error log is one affair", () => {
  const hosts = ["203.0.113.66", "2001:db8::66"];
  /* the probes of 203.0.113.66 and 2001:db8::66: admin tools, webmails and /cgi-bin/ (404), as both logs wrote them */
  const access = logLines("access-requests-nginx.log", (l) => /^(203\.0\.113\.66|2001:db8::66) - - /.test(l));
  /* through syslog (program nginx, the header's time nginx's own): nginx's own error log file counts in aggressive mode only (rules/WB/nginx-error.rule, forgeable) */
  const error = logLines("nginx-error-requests.log", (l) => /(open\(\) "|" is not found).*, client: (203\.0\.113\.66|2001:db8::66), /.test(l)).map((l) => `Dec  6 ${l.slice(11, 19)} www nginx: ${l}`);
  const expected = { "203.0.113.66": 8, "2001:db8::66": 1 };
  test("the lines are what this test thinks they are", () => {
    expect(access.length).toBe(9);
    expect(error.length).toBe(9);
  });
  test("access log alone", async () => expect(await affairs(access, hosts)).toEqual(expected));
  test("error log alone", async () => expect(await affairs(error, hosts)).toEqual(expected));
  test("both, one after the other", async () => expect(await affairs([...access, ...error], hosts)).toEqual(expected));
  test("both, the error log first", async () => expect(await affairs([...error, ...access], hosts)).toEqual(expected));
});

describe("Apache: a CGI probe or a path above the root in both logs is one affair", () => {
  const hosts = ["203.0.113.66", "2001:db8::66", "203.0.113.68"];
  const access = logLines("access-requests-apache.log", (l) => /^(203\.0\.113\.66|2001:db8::66|203\.0\.113\.68) - - /.test(l));
  /* mod_cgid's missing programs and AH10244 of the same clients, written with those access lines
     (09:26; the fixture's later lines come from a second run whose access lines are not used here) */
  const error = logLines("apache-error-requests.log", (l) => /^\[Sun Dec 06 09:26:.*\[client (203\.0\.113\.66|2001:db8::66|203\.0\.113\.68):\d+\] AH(01264|10244): /.test(l));
  /* 203.0.113.66: 3 CGI probes, 3 of admin tools and 2 of webmails; 203.0.113.68: 4 request lines that are no HTTP, 2 paths above the root */
  const expected = { "203.0.113.66": 8, "2001:db8::66": 1, "203.0.113.68": 6 };
  test("the lines are what this test thinks they are", () => {
    expect(access.length).toBe(20);
    expect(error.length).toBe(6);
  });
  test("access log alone", async () => expect(await affairs(access, hosts)).toEqual(expected));
  test("error log alone counts what it sees", async () => expect(await affairs(error, hosts)).toEqual({ "203.0.113.66": 3, "2001:db8::66": 1, "203.0.113.68": 2 }));
  test("both, one after the other", async () => expect(await affairs([...access, ...error], hosts)).toEqual(expected));
});
