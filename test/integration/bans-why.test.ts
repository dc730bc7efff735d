/**
 * `watcher bans` and `watcher why` through the built binary on the state a real module run
 * leaves (issue 20, items 1 and 2): a resident module reading stdin, a DNS server on loopback
 * classifying its hosts, the dry-run firewall. Lifted bans never show as current.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { TestDnsServer } from "../helpers/dns-server";
import { makeRoot, WATCHER, watcher } from "../helpers/root";
import { timeoutForHangsOnly, waitFor } from "../helpers/wait";

timeoutForHangsOnly();

const NXHOST = "203.0.113.77"; /* no reverse name: NXDOMAIN, counter preset */
const TRUEHOST = "198.51.100.44"; /* a name that resolves back */
const QUIET = "203.0.113.20"; /* one affair, never banned */
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

const stamp = () => new Date().toISOString().replace(/\.\d+Z$/, "+00:00");
const invalid = (address: string, user: string, pid: number) => `${stamp()} srv sshd[${pid}]: Invalid user ${user} from ${address} port ${4000 + pid}\n`;

let dns: TestDnsServer;
let root: string;
let module: Bun.Subprocess<"pipe", "ignore", "pipe">;
let log = "";

async function feed(text: string): Promise<void> {
  module.stdin.write(text);
  await module.stdin.flush();
}

const json = <T>(...args: string[]): T => {
  const r = watcher(root, ...args, "--json");
  if (r.code !== 0) throw new Error(`watcher ${args.join(" ")}: ${r.err}`);
  return JSON.parse(r.out) as T;
};

interface BanJson {
  address: string;
  where: string;
  since: string | null;
  until: string | null;
  rule: string | null;
  reason: string | null;
  class: string | null;
  permanent: boolean;
}

interface Why {
  address: string;
  asOf: string;
  droppedBy: string[];
  lists: { protection: string | null; blacklist: string | null };
  modules: {
    module: string;
    class: { class: string; meaning: string };
    window: { affairs: number; maxAffairs: number; findTime: number } | null;
    bans: { time: string; until: string | null; rule: string; reason: string; length: string }[];
    events: { time: string; kind: string; rule: string; user: string | null }[];
    countedLines: { time: string; rule: string; line: string }[];
  }[];
}

beforeAll(async () => {
  dns = await new TestDnsServer({
    ptr: { "44.100.51.198.in-addr.arpa": ["mail.example.org"] },
    a: { "mail.example.org": [TRUEHOST] },
  }).start();
  root = makeRoot("bans-why", {
    "etc/watcher.toml": `firewall = "dryrun"\n[dns]\nservers = ["${dns.address}"]\ntimeout = 1\n[modules.LG]\nmaxAffairs = 3\nfindTime = "1h"\n`,
  });
  module = Bun.spawn([WATCHER, "--root", root, "module", "LG", "--stdin"], { stdin: "pipe", stdout: "ignore", stderr: "pipe" });
  void (async () => {
    for await (const chunk of module.stderr) log += new TextDecoder().decode(chunk);
  })();
  /* the NXDOMAIN host: its first affair asks DNS, the class presets its counter, its second bans */
  await feed(invalid(NXHOST, "admin", 101));
  await waitFor("the NXDOMAIN class in the database", () => json<{ modules: { class: { class: string } }[] }>("why", NXHOST).modules[0]?.class.class === "NXDOMAIN");
  await feed(invalid(NXHOST, "oracle", 102));
  await waitFor("the NXDOMAIN host's ban", () => log.includes(`ban ${NXHOST}`));
  /* the TRUEHOST: three affairs; a line longer than an excerpt keeps its first 512 bytes */
  await feed(invalid(TRUEHOST, "a", 201) + invalid(TRUEHOST, "ü".repeat(400), 202) + invalid(TRUEHOST, "c", 203));
  await waitFor("the TRUEHOST's ban", () => log.includes(`ban ${TRUEHOST}`));
  /* its class comes from DNS between chunks and is written with the next commit (or within 2 s): at the end of stdin one still on its way is not waited for */
  await waitFor("the TRUEHOST class in the database", () => json<{ modules: { class: { class: string } }[] }>("why", TRUEHOST).modules[0]?.class.class === "TRUEHOST");
  /* more lines than the excerpts kept; and a quiet host */
  await feed([4, 5, 6, 7, 8].map((i) => invalid(TRUEHOST, `u${i}`, 200 + i)).join("") + invalid(QUIET, "x", 301));
  module.stdin.end();
  expect(await module.exited).toBe(0);
}, 180_000);

afterAll(() => {
  if (module.exitCode === null) module.kill();
  dns.stop();
});

describe("watcher bans", () => {
  test("lists every ban in force, newest first, with since, until, rule, class and reason", () => {
    const bans = json<BanJson[]>("bans");
    expect(bans.map((b) => b.address)).toEqual([TRUEHOST, NXHOST]);
    const [t, nx] = bans;
    expect(t).toMatchObject({ where: "LG", rule: "invalid-user", class: "TRUEHOST", permanent: false, reason: "3 affairs within 1h, last by rule invalid-user" });
    expect(nx!.class).toBe("NXDOMAIN");
    expect(nx!.reason).toBe("2 affairs (NXDOMAIN: counter preset to 2), last by rule invalid-user");
    for (const b of bans) {
      expect(b.since).toMatch(ISO);
      expect(b.until).toMatch(ISO);
      expect(Date.parse(b.until!) - Date.parse(b.since!)).toBe(3600_000);
    }
    const text = watcher(root, "bans");
    expect(text.code).toBe(0);
    expect(text.out).toContain(`│ ${TRUEHOST}`);
    expect(text.out).not.toContain(QUIET);
    /* a reason longer than its column is wrapped, never cut: whole on a wide enough table */
    expect(watcher(root, "bans", "--width", "300").out).toContain(nx!.reason!);
  });

  test("filters: an address or network, --module, --since; --sort until; --limit says how many more", () => {
    expect(json<BanJson[]>("bans", NXHOST).map((b) => b.address)).toEqual([NXHOST]);
    expect(json<BanJson[]>("bans", "203.0.113.0/24").map((b) => b.address)).toEqual([NXHOST]);
    expect(json<BanJson[]>("bans", QUIET)).toEqual([]);
    expect(watcher(root, "bans", QUIET).out).toBe(`no ban in force holds ${QUIET}\n`);
    expect(json<BanJson[]>("bans", "--module", "MB")).toEqual([]);
    expect(json<BanJson[]>("bans", "--module", "lg")).toHaveLength(2);
    expect(json<BanJson[]>("bans", "--since", "1h")).toHaveLength(2);
    expect(json<BanJson[]>("bans", "--since", "2099-01-01T00:00:00Z")).toEqual([]);
    /* a manual ban for less time than the others: newest, and the soonest to end */
    expect(watcher(root, "ban", "LG", "203.0.113.99", "--time", "10m").code).toBe(0);
    const newest = json<BanJson[]>("bans");
    expect(newest[0]).toMatchObject({ address: "203.0.113.99", rule: "manual" });
    expect(newest[0]!.reason).toMatch(/^manual ban by uid \d+ \(root\), for 10m as asked$/);
    const byUntil = json<BanJson[]>("bans", "--sort", "until");
    expect(byUntil[0]!.address).toBe("203.0.113.99");
    expect(byUntil.map((b) => Date.parse(b.until!))).toEqual(byUntil.map((b) => Date.parse(b.until!)).sort((a, b) => a - b));
    expect(watcher(root, "unban", "LG", "203.0.113.99").out).toBe("unbanned 203.0.113.99 in LG\n");
    expect(json<BanJson[]>("bans").map((b) => b.address)).toEqual([TRUEHOST, NXHOST]);
    const limited = watcher(root, "bans", "--limit", "1");
    expect(limited.out).toContain(TRUEHOST);
    expect(limited.out).not.toContain(NXHOST);
    expect(limited.out).toEndWith("1 more (--limit 0 shows all, --json gives every field)\n");
    for (const bad of [["--since", "yesterday"], ["--limit", "-1"], ["203.0.113.300"]]) {
      const r = watcher(root, "bans", ...bad);
      expect(r.code).toBe(2);
      expect(r.err).not.toBe("");
    }
  });
});

describe("watcher why", () => {
  test("a ban's story: class and what it did, the affairs, the ban's reason and length, the log lines", () => {
    const why = json<Why>("why", NXHOST);
    expect(why.asOf).toMatch(ISO);
    expect(why.droppedBy).toHaveLength(1);
    expect(why.droppedBy[0]).toMatch(/^LG ban until \d{4}-/);
    const [lg] = why.modules;
    expect(lg!.class.class).toBe("NXDOMAIN");
    expect(lg!.class.meaning).toContain("no reverse DNS name");
    expect(lg!.events.map((e) => `${e.kind}:${e.user ?? ""}`)).toEqual(["affair:admin", "affair:oracle", "ban:"]);
    expect(lg!.bans).toHaveLength(1);
    expect(lg!.bans[0]!.reason).toContain("NXDOMAIN: counter preset");
    expect(lg!.bans[0]!.length).toBe("1h: banTime 1h (a first ban)");
    expect(lg!.countedLines.map((l) => l.line.replace(/^\S+ /, ""))).toEqual([`srv sshd[101]: Invalid user admin from ${NXHOST} port 4101`, `srv sshd[102]: Invalid user oracle from ${NXHOST} port 4102`]);
    for (const l of lg!.countedLines) expect(l.time).toMatch(ISO);
  });

  test("the counted lines: the latest five, each at most 512 bytes", () => {
    const [lg] = json<Why>("why", TRUEHOST).modules;
    expect(lg!.events.filter((e) => e.kind === "affair")).toHaveLength(8);
    expect(lg!.countedLines.map((l) => /sshd\[(\d+)\]/.exec(l.line)![1])).toEqual(["204", "205", "206", "207", "208"]);
    const limited = json<Why>("why", TRUEHOST, "--limit", "3").modules[0]!;
    expect(limited.events).toHaveLength(3);
    expect(limited.bans).toHaveLength(1); /* every ban, whatever the limit */
    expect(json<Why>("why", TRUEHOST, "--limit", "0").modules[0]!.events).toHaveLength(9);
  });

  test("a line longer than an excerpt is cut at 512 bytes, on a character boundary", async () => {
    /* the long line above was pushed out by later ones: a module of its own */
    const other = makeRoot("why-long", { "etc/watcher.toml": 'firewall = "dryrun"\n[modules.LG]\ndns = false\n' });
    const p = Bun.spawn([WATCHER, "--root", other, "module", "LG", "--stdin"], { stdin: "pipe", stdout: "ignore", stderr: "ignore" });
    p.stdin.write(invalid("198.51.100.45", "ü".repeat(400), 1));
    p.stdin.end();
    expect(await p.exited).toBe(0);
    const [lg] = (JSON.parse(watcher(other, "why", "198.51.100.45", "--json").out) as Why).modules;
    const line = lg!.countedLines[0]!.line;
    expect(Buffer.byteLength(line)).toBeLessThanOrEqual(512);
    expect(Buffer.byteLength(line)).toBeGreaterThan(500);
    expect(line).not.toContain("\uFFFD");
    expect(line).toContain("Invalid user üü");
  });

  test("text: the story reads top to bottom", () => {
    const r = watcher(root, "why", TRUEHOST);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(new RegExp(`^${TRUEHOST.replaceAll(".", "\\.")}: dropped by LG ban until `));
    expect(r.out).toContain("class: TRUEHOST — a reverse DNS name resolves back to it");
    expect(r.out).toContain("why: 3 affairs within 1h, last by rule invalid-user");
    expect(r.out).toContain("length: 1h: banTime 1h (a first ban)");
    expect(r.out).toContain("log lines that counted (the latest 5):");
  });

  test("an address never seen, a protected one, a bad one", () => {
    expect(watcher(root, "why", "203.0.113.250").out).toContain("no module has a record of it");
    expect(watcher(root, "why", "127.0.0.1").out).toContain("protected (loopback or reserved): never counted or banned");
    expect(watcher(root, "why", "not-an-address").code).toBe(2);
  });
});

describe("unban lifts, and a lifted ban is no longer current", () => {
  test("unban without a module: gone from bans, its story says who lifted it", () => {
    const r = watcher(root, "unban", NXHOST);
    expect(r.code).toBe(0);
    expect(r.out).toBe(`unbanned ${NXHOST} in LG\n`);
    expect(json<BanJson[]>("bans").map((b) => b.address)).toEqual([TRUEHOST]);
    const why = json<Why>("why", NXHOST);
    expect(why.droppedBy).toEqual([]);
    expect(why.modules[0]!.events.at(-1)).toMatchObject({ kind: "unban", rule: "manual" });
    expect(watcher(root, "why", NXHOST).out).toMatch(/unban: manual unban by uid \d+/);
    expect(readFileSync(join(root, "var", "log", "watcher.log"), "utf8")).toMatch(new RegExp(`watcher: manual unban ${NXHOST.replaceAll(".", "\\.")} everywhere \\(LG\\): lifted ${NXHOST.replaceAll(".", "\\.")} in LG; by uid \\d+`));
  });
});
