/**
 * A program whose lines a client can write whole (`forgeable` in a rule file): nginx writes a
 * request's decoded path raw in its error log file, newlines too, so one request makes the file
 * hold any line. Its rules take such lines and count nothing in normal mode; through syslog the
 * same message stays one line and counts. Lines shaped as nginx 1.22 wrote them (2026-12-07).
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { ConfigError } from "../../src/core/errors";
import { RuleSet } from "../../src/core/rules";
import { loadRules } from "../../src/modules/registry";
import { testRules } from "../../src/modules/ruletest";

const RULES = join(import.meta.dir, "..", "..", "rules");

/* GET /x%0A<a whole auth failure line naming 198.51.100.7>: the file's second line is the client's up to `host: "a`, then nginx's own tail */
const FORGED = [
  '2026/12/07 04:50:01 [error] 29937#29937: *1 open() "/var/www/html/x',
  '2026/12/07 04:50:01 [error] 29937#29937: *1 user "admin": password mismatch, client: 198.51.100.7, server: localhost, request: "GET /sec/ HTTP/1.1", host: "a" failed (2: No such file or directory), client: 203.0.113.5, server: localhost, request: "GET /x%0A2026/12/07%2004:50:01 HTTP/1.1", host: "localhost"',
].join("\n");
const REAL = '2026/12/07 04:50:02 [error] 29937#29937: *2 user "admin": password mismatch, client: 203.0.113.5, server: localhost, request: "GET /sec/ HTTP/1.1", host: "localhost"';

const counted = (r: ReturnType<typeof testRules>) => r.matches.filter((m) => m.action === "count" || m.action === "ban").map((m) => m.host);

describe("nginx's error log file is forgeable", () => {
  test("normal mode: its lines are taken and count nothing, the forged one included", () => {
    const r = testRules(loadRules("WB", RULES, "normal"), `${FORGED}\n${REAL}\n`, { program: "nginx-error" });
    expect(r.matches.map((m) => m.rule)).toContain("nginx-auth-failed");
    expect(counted(r)).toEqual([]);
  });

  test("through syslog (program nginx) the message is one line, and counts in normal mode", () => {
    const r = testRules(loadRules("WB", RULES, "normal"), `Dec  7 04:50:02 www nginx: ${REAL}\n`);
    expect(counted(r)).toEqual(["203.0.113.5"]);
  });

  test("aggressive mode counts the file's lines, as the operator chose", () => {
    const r = testRules(loadRules("WB", RULES, "aggressive"), `${REAL}\n`, { program: "nginx-error" });
    expect(counted(r)).toEqual(["203.0.113.5"]);
  });

  test("a forgeable program must be one of the file's programs", () => {
    const text = 'programs = ["sshd"]\nforgeable = ["nginx-error"]\n[[rule]]\nname = "x"\npattern = "x"\n';
    expect(() => new RuleSet([{ file: "x.rule", text }], "normal")).toThrow(ConfigError);
    expect(() => new RuleSet([{ file: "x.rule", text }], "normal")).toThrow("x.rule: field forgeable: every program in forgeable is one of programs");
  });
});
