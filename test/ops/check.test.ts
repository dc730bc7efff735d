/**
 * `watcher check` through the built binary (issue 20, item 3): a good root passes (exit 0); a root
 * with many problems at once lists every one of them, each naming its file and line or key
 * (exit 2); nothing under the root is created or changed either way. `start` refuses with the
 * same list. (The firewall-owner check, with a real master in a namespace, is in doctor.test.ts.)
 */
import { afterAll, describe, expect, test } from "bun:test";
import { readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { makeRoot, SAFE_CONFIG, watcher } from "../helpers/root";
import { timeoutForHangsOnly } from "../helpers/wait";

timeoutForHangsOnly();

const roots: string[] = [];
afterAll(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

function newRoot(files: Record<string, string>): string {
  const root = makeRoot("check", files);
  roots.push(root);
  return root;
}

/** Every path under the root with its size and modification time: what "nothing touched" is checked against. */
function tree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .sort()
    .map((p) => {
      const s = statSync(join(dir, p));
      return `${p} ${s.size} ${s.mtimeMs}`;
    });
}

const LOCAL_RULE = `programs = ["sshd"]
[[rule]]
name = "local-probe"
pattern = "Probe from "
host = "^Probe from <HOST>$"
`;

describe("watcher check", () => {
  test("a good root: exit 0, what was checked, nothing created", () => {
    const root = newRoot({
      "etc/watcher.toml": `${SAFE_CONFIG}[modules.MB]\nenabled = true\ndns = false\n[dynload.lists.spamhaus]\nenabled = true\n`,
      "etc/whitelist": "198.51.100.7\n2001:db8:7::/48\n",
      "etc/blacklist": "203.0.113.0/24\n",
      "rules/LG/local.rule": LOCAL_RULE,
    });
    const before = tree(root);
    const r = watcher(root, "check");
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toContain("ok  modules: LG, MB");
    /* the operator's rule file beside the shipped ones */
    const shipped = Number(/rules LG: \d+ rules in (\d+) files?/.exec(watcher(newRoot({}), "check").out)?.[1]);
    expect(r.out).toMatch(new RegExp(`ok {2}rules LG: \\d+ rules in ${shipped + 1} files \\(normal mode\\)`));
    expect(r.out).toMatch(/ok {2}rules MB: \d+ rules in \d+ files/);
    expect(r.out).toContain("ok  lists: whitelist 2 entries, blacklist 1 entry");
    expect(r.out).toContain("ok  blocklists: spamhaus");
    expect(r.out).toContain("ok  firewall: dryrun");
    expect(r.out).toContain("is good; nothing was changed");
    expect(tree(root)).toEqual(before);

    const json = JSON.parse(watcher(root, "check", "--json").out);
    expect(json.ok).toBe(true);
    expect(json.problems).toEqual([]);
    expect(tree(root)).toEqual(before);
  });

  test("a broken root: every problem at once, each naming file and line or key; exit 2; nothing touched", () => {
    const root = newRoot({
      "etc/watcher.toml": `firewall = "dryrun"
fifoMode = "0666"
colour = "blue"
[modules.LG]
dns = false
maxAffairs = 0
[modules.MB]
enabled = true
dns = false
[dynload.lists.mine]
format = "cidr-lines"
[fleet]
url = "redis://127.0.0.1:6379"
keyFile = "etc/no-such.key"
`,
      "etc/whitelist": "198.51.100.7\nnot-an-address\n0.0.0.0/1\n",
      "etc/blacklist": "# the server's own loopback\n127.0.0.1\n",
      "rules/LG/local.rule": 'programs = ["sshd"]\n[[rule]]\nname = "Bad Name"\npattern = "x"\n',
      "rules/LG/unanchored.rule": 'programs = ["sshd"]\n[[rule]]\nname = "loose"\npattern = "x"\nhost = "from <HOST>"\n',
      "rules/MB/broken.rule": "programs = [\n",
    });
    const before = tree(root);
    const r = watcher(root, "check");
    expect(r.code).toBe(2);
    const problems = r.err.trimEnd().split("\n");
    const expected = [
      `${root}/etc/watcher.toml: fifoMode: "0666" gives other users access to the FIFOs`,
      `${root}/etc/watcher.toml: (top level): unknown key(s) "colour"`,
      `${root}/etc/watcher.toml: modules.LG.maxAffairs: `,
      `${root}/rules/LG/local.rule: rule "Bad Name", field name: `,
      `${root}/rules/LG/unanchored.rule: rule "loose", field host: template "from <HOST>" must be anchored`,
      `${root}/rules/MB/broken.rule:2:1: not valid TOML`,
      `${root}/etc/whitelist:2: "not-an-address" is not an IPv4/IPv6 address or CIDR`,
      `${root}/etc/whitelist:3: "0.0.0.0/1" is wider than /8`,
      `${root}/etc/blacklist:2: "127.0.0.1" is within 127.0.0.0/8 (loopback)`,
      "etc/watcher.toml: dynload.lists.mine.urls: a list of your own needs its URLs or paths",
      `${root}/etc/no-such.key: cannot read the fleet key`,
    ];
    for (const e of expected) expect(problems.some((p) => p.startsWith(e))).toBe(true);
    expect(problems.at(-1)).toBe(`watcher check: ${expected.length} problems in ${root}; nothing was changed`);
    expect(problems.length).toBe(expected.length + 1);
    /* what is good is still said; watcher.toml, in error, is not "ok" */
    expect(r.out).toContain("ok  modules: LG, MB");
    expect(r.out).not.toContain("ok  configuration:");
    expect(tree(root)).toEqual(before);

    const json = JSON.parse(watcher(root, "check", "--json").out);
    expect(json.ok).toBe(false);
    expect(json.problems.length).toBe(expected.length);

    /* start refuses with the same list, and makes nothing */
    const start = watcher(root, "start");
    expect(start.code).toBe(2);
    expect(start.err).toContain(`watcher cannot start: ${expected.length} problems`);
    for (const e of expected) expect(start.err).toContain(e);
    expect(tree(root)).toEqual(before);
  });

  test("watcher.toml that is not TOML: named with its line, and the rest still checked", () => {
    const root = newRoot({ "etc/watcher.toml": 'firewall = "dryrun"\n[modules.LG\n', "etc/blacklist": "::1\n" });
    const r = watcher(root, "check");
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${root}/etc/watcher.toml:2:`);
    expect(r.err).toContain(`${root}/etc/blacklist:1: "::1"`);
    expect(r.err).toContain("2 problems");
  });

  test("the files start opens: a FIFO path that holds a plain file, a damaged database; a file source not there yet is noted", () => {
    const root = newRoot({
      "etc/watcher.toml": `${SAFE_CONFIG}[modules.MB]\nenabled = true\ndns = false\nsources = [{ type = "file", path = "/nonexistent/mail.log" }]\n`,
      "var/fifo/WatchLG": "a log line where the FIFO belongs\n",
      "var/db/MB.db": "SQLite format 3\u0000 and then nothing a database holds",
    });
    const r = watcher(root, "check");
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${root}/var/fifo/WatchLG exists but is not a FIFO; move it away`);
    expect(r.err).toContain(`${root}/var/db/MB.db: `);
    expect(r.err).toContain("move it away (start makes a new one)");
    expect(r.out).toContain("ok  files MB: /nonexistent/mail.log not there yet (read from its start once it appears)");
    expect(r.err).toContain("watcher check: 2 problems");
  });

  test("a root that is not one: said, exit 2", () => {
    const r = watcher(join(newRoot({}), "nowhere"), "check");
    expect(r.code).toBe(2);
    expect(r.err).toContain("is not a watcher root");
  });
});
