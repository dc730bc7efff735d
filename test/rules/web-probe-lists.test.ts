/**
 * One list for one job: the paths of admin tools and webmails that count as probes in normal mode
 * are written once per log format (rule files have no includes), and must stay the same list.
 * access-probes.rule's admin-probe holds it (URL prefixes, as the access log writes the request);
 * nginx's error log reads the same prefixes in `request:`; Apache's error log names a file, so
 * there each name must end the file (see apache-error.rule): `/NAME$`, `/NAME/$`, and with the
 * Referer Apache appends, `/NAME, referer: `; a PHP script's also in mod_php's `script '...'` text.
 * access.rule's scanner-probe list (secrets, repositories: any status) and access-probes.rule's
 * stack-probe list (other stacks' tools: refused or absent) are read as they are, anywhere in the
 * line, by both error logs (whose lines are of files that are not there).
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseRuleFile } from "../../src/core/rules";

const WB = join(import.meta.dir, "..", "..", "rules", "WB");

function patternsOf(file: string, rule: string): string[] {
  const spec = parseRuleFile(file, readFileSync(join(WB, file), "utf8")).rules.find((r) => r.name === rule);
  if (!spec) throw new Error(`${file}: no rule ${rule}`);
  return typeof spec.pattern === "string" ? [spec.pattern] : spec.pattern;
}

const adminList = patternsOf("access-probes.rule", "admin-probe");
/* the names as Apache's file ends with them: one slash (scanners' `//x` is the same file), no folder inside */
const names = adminList
  .filter((p) => !p.startsWith(" //"))
  .map((p) => p.slice(2).replace(/\/$/, ""))
  .filter((n) => !n.includes("/"));
const scriptForms = (n: string, tail: string) => (n.endsWith(".php") ? [`/${n}' not found or unable to stat${tail}`] : []);

describe("the admin-probe list is one list", () => {
  test("it is what this test thinks it is", () => {
    expect(names).toContain("phpmyadmin");
    expect(names).toContain("roundcube");
    expect(names).not.toContain("manager/html");
  });
  test("access logs: a 401 reads the same paths", () => expect(patternsOf("access-probes.rule", "admin-probe-unauthorised")).toEqual(adminList));
  test("nginx's error log: the same paths in the request line", () => expect(patternsOf("nginx-error.rule", "nginx-admin-probe")).toEqual(adminList));
  test("Apache's error log without a referer: the names end the file", () =>
    expect(patternsOf("apache-error.rule", "apache-admin-probe")).toEqual(names.flatMap((n) => [`/${n}$`, `/${n}/$`, ...scriptForms(n, "$")])));
  test("Apache's error log with a referer: the names end the file before it", () =>
    expect(patternsOf("apache-error.rule", "apache-admin-probe-referred")).toEqual(names.flatMap((n) => [`/${n}, referer: `, `/${n}/, referer: `, ...scriptForms(n, ", referer: ")])));
});

describe("the scanner-probe and stack-probe lists are one list each", () => {
  const scannerList = [...patternsOf("access.rule", "scanner-probe"), ...patternsOf("access-probes.rule", "stack-probe")];
  test("it is what this test thinks it is", () => {
    expect(scannerList).toContain("/.env");
    expect(scannerList).toContain("/owa/auth/");
  });
  test("nginx's error log", () => expect(patternsOf("nginx-error.rule", "nginx-scanner-probe")).toEqual(scannerList));
  test("Apache's error log", () => expect(patternsOf("apache-error.rule", "apache-scanner-probe")).toEqual(scannerList));
});
