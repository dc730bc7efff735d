/**
 * report, stat and expire on databases filled through the real pipeline: log lines through
 * ModuleRuntime (real rules, real SQLite, the dry-run firewall, a stub resolver for host
 * classes), with the clock set to each line's time so that every figure is known in advance.
 */
import { Database } from "bun:sqlite";
import { beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/core/config";
import type { HostClass } from "../../src/core/dns";
import { DryRunFirewall } from "../../src/core/firewall/dryrun";
import { moduleSet, moduleSetName } from "../../src/core/firewall/types";
import { parseIp } from "../../src/core/ip";
import { nowSeconds } from "../../src/core/duration";
import { openModule } from "../../src/modules/context";
import { SourceFormat } from "../../src/pipeline/formats";
import { ModuleRuntime, partsOf } from "../../src/pipeline/run";
import { FOREVER, manualBan } from "../../src/ops/ban";
import { expire as expireHosts } from "../../src/ops/expire";
import { PERMANENT_UNTIL } from "../../src/store/module-db";
import { layout, renderReport, sparkline } from "../../src/report/render";
import { gatherReport, type Report, ReportSchema } from "../../src/report/report";
import { csvField, parseDate, STAT_COLUMNS, statRows, toCsv } from "../../src/report/stat";
import { BUN, TestNet } from "../helpers/netns";
import { timeoutForHangsOnly, waitFor } from "../helpers/wait";

timeoutForHangsOnly();

const REPO = join(import.meta.dir, "..", "..");
const EXPECTED = join(import.meta.dir, "report-100.expected.txt");
const NOW = Date.UTC(2026, 10, 25, 12, 0, 0) / 1000;
const at = (iso: string) => Date.parse(iso) / 1000;

/* LG: one connection (pid) per line, so every line is one affair */
const LG_LINES: [string, string][] = [
  ["2026-10-01T08:00:00Z", "Failed password for root from 192.0.2.99 port 40000 ssh2"],
  ["2026-11-24T20:00:00Z", "Failed password for root from 198.51.100.20 port 40001 ssh2"],
  ["2026-11-24T20:00:05Z", "Failed password for root from 198.51.100.20 port 40002 ssh2"],
  ["2026-11-25T09:10:00Z", "Invalid user bob from 2001:db8::7 port 40003"],
  ["2026-11-25T09:11:00Z", "Invalid user bob from 2001:db8::7 port 40004"],
  ["2026-11-25T09:12:00Z", "Invalid user bob from 2001:db8::7 port 40005"],
  /* NXDOMAIN: the counter is preset to maxAffairs - 1, so the second affair bans */
  ["2026-11-25T11:50:00Z", "Failed password for root from 203.0.113.5 port 40006 ssh2"],
  ["2026-11-25T11:50:01Z", "Failed password for root from 203.0.113.5 port 40007 ssh2"],
];
const CLASSES: Record<string, HostClass> = { "203.0.113.5": "NXDOMAIN", "2001:db8::7": "TRUEHOST", "198.51.100.20": "UNKNOWN", "192.0.2.99": "TRUEHOST" };

/* WB: nginx access lines with $server_name first; 198.51.100.9 attacks both vhosts */
const web = (vhost: string, address: string, request: string, agent = "Mozilla/5.0") =>
  `${vhost} ${address} - - [25/Nov/2026:10:00:00 +0000] "${request} HTTP/1.1" 404 196 "-" "${agent}"`;
const WB_LINES: [string, string][] = [
  ["2026-11-25T10:00:00Z", web("shop.example.com", "192.0.2.44", "GET /.git/config")],
  ["2026-11-25T10:00:10Z", web("shop.example.com", "192.0.2.44", "GET /.env")],
  ...[0, 1, 2, 3, 4].map((i): [string, string] => [`2026-11-25T11:00:0${i}Z`, web("www.example.com", "198.51.100.9", "GET /.env")]),
  ["2026-11-25T11:30:00Z", web("www.example.com", "203.0.113.77", "GET /", "sqlmap/1.7.2#stable (https://sqlmap.org)")],
  ["2026-11-25T11:45:00Z", web("shop.example.com", "198.51.100.9", "GET /.aws/credentials")],
];

function makeRoot(): string {
  const root = mkdtempSync(join(tmpdir(), "watcher-report-"));
  mkdirSync(join(root, "etc"));
  /* CI runs as root: the dry-run firewall, and no real DNS */
  writeFileSync(join(root, "etc", "watcher.toml"), 'firewall = "dryrun"\n[modules.LG]\ndns = false\n[modules.WB]\nenabled = true\ndns = false\n');
  return root;
}

/** The dry-run firewall of a root, its clock fixed at `now`. */
function firewallOf(root: string, now = () => NOW): DryRunFirewall {
  return new DryRunFirewall(join(root, "var", "db", "firewall-dryrun.db"), join(root, "var", "log", "firewall-dryrun.log"), now);
}

async function fill(root: string): Promise<void> {
  for (const [module, lines] of [["LG", LG_LINES], ["WB", WB_LINES]] as const) {
    const ctx = openModule(root, module);
    let now = NOW;
    const firewall = firewallOf(root, () => now);
    const runtime = new ModuleRuntime({
      ...partsOf(ctx),
      config: { ...ctx.moduleConfig, dns: module === "LG" },
      firewall,
      clock: () => now,
      useLineTime: true,
      dns: {
        client: { classify: async (ip) => CLASSES[ip.text] ?? "UNKNOWN" },
        options: { concurrency: 4, queueSize: 100, cacheSize: 100, positiveTtl: 86400 * 365, negativeTtl: 86400 * 365 },
      },
    });
    await firewall.ensure([moduleSet(module)]);
    for (const [i, [time, text]] of lines.entries()) {
      now = at(time);
      await runtime.processBlock(module === "LG" ? `${time} srv sshd-session[${100 + i}]: ${text}\n` : `${text}\n`, module === "WB" ? new SourceFormat("nginx-access") : undefined);
      await Bun.sleep(1); /* the host class arrives between chunks, as in the resident loop */
    }
    await firewall.close();
    await ctx.close();
  }
}

/** The report and stat commands as an operator runs them: dist/watcher once src/cli.ts registers them, else a small runner of the same command modules. */
function cliRunner(dir: string): string[] {
  const binary = join(REPO, "dist", "watcher");
  if (existsSync(binary) && Bun.spawnSync([binary, "--help"]).stdout.toString().match(/^ +watcher stat /m)) return [binary];
  const runner = join(dir, "runner.ts");
  writeFileSync(
    runner,
    `import yargs from "yargs";
import { reportCommand } from "${REPO}/commands/report";
import { statCommand } from "${REPO}/commands/stat";
import { expireCommand } from "${REPO}/commands/expire";
import { WatcherError } from "${REPO}/src/core/errors";
try {
  await yargs(process.argv.slice(2)).option("root", { type: "string", global: true })
    .command(reportCommand).command(statCommand).command(expireCommand).strict()
    .fail((m, e) => { if (e) throw e; console.error(m); process.exit(2); }).parseAsync();
} catch (e) {
  if (!(e instanceof WatcherError)) throw e;
  console.error("watcher: " + e.message);
  process.exit(e.exitCode);
}
`,
  );
  return [BUN, runner];
}

/** RFC 4180, strictly: CRLF records, quoted fields with doubled quotes; throws on anything else. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let i = 0;
  for (;;) {
    let field = "";
    if (text[i] === '"') {
      for (i++; ; i++) {
        if (i >= text.length) throw new Error("unterminated quoted field");
        if (text[i] === '"') {
          if (text[i + 1] !== '"') break;
          i++;
        }
        field += text[i];
      }
      i++;
    } else {
      while (i < text.length && text[i] !== "," && text[i] !== "\r" && text[i] !== "\n") {
        if (text[i] === '"') throw new Error(`quote inside an unquoted field at ${i}`);
        field += text[i++];
      }
    }
    record.push(field);
    if (text[i] === ",") {
      i++;
      continue;
    }
    if (text.startsWith("\r\n", i)) {
      records.push(record);
      record = [];
      i += 2;
      if (i === text.length) return records;
      continue;
    }
    throw new Error(`expected a comma or CRLF at ${i}, got ${JSON.stringify(text.slice(i, i + 10))}`);
  }
}

let root: string;
let cli: string[];
const run = (...args: string[]) => {
  const p = Bun.spawnSync([...cli, "--root", root, ...args], { stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
};

beforeAll(async () => {
  root = makeRoot();
  await fill(root);
  cli = cliRunner(root);
});

async function reportAt(vhost: string | null = null): Promise<Report> {
  const fw = firewallOf(root);
  try {
    return await gatherReport(loadConfig(root), { now: NOW, since: NOW - 86400, vhost }, fw);
  } finally {
    await fw.close();
  }
}

describe("report", () => {
  test("the text report at 100 columns reads as expected", async () => {
    const text = renderReport(await reportAt(), 100);
    if (process.env.UPDATE_EXPECTED) writeFileSync(EXPECTED, text);
    expect(text).toBe(readFileSync(EXPECTED, "utf8"));
  });

  test("a narrow terminal stacks the tables and drops optional columns", async () => {
    const text = renderReport(await reportAt(), 72);
    expect(Math.max(...text.split("\n").map((l) => l.length))).toBeLessThanOrEqual(72);
    expect(text).toContain("by class\n"); /* by rule no longer beside it */
    expect(text).not.toContain("until"); /* an optional column of the latest bans */
  });

  test("sparkline and layout", () => {
    expect(sparkline([0, 1, 2, 4, 8, 0])).toBe("·▁▂▄█·");
    expect(layout(["a\nbb", "ccc"], 10)).toBe("a    ccc\nbb");
    expect(layout(["a\nbb", "ccc"], 5)).toBe("a\nbb\n\nccc");
  });

  test("the JSON document has the schema's shape and the known figures", async () => {
    const report = ReportSchema.parse(JSON.parse(JSON.stringify(await reportAt())));
    expect(report.firewall).toEqual({
      backend: "dryrun",
      sets: [
        { set: "watcher_white", entries: 0 },
        { set: "watcher_black", entries: 0 },
        { set: "watcher_LG", entries: 1 },
        { set: "watcher_WB", entries: 1 },
      ],
    });
    const [lg, wb] = report.modules;
    expect(lg).toMatchObject({ module: "LG", tracked: 4, banned: 1, affairsToday: 5, affairs: 7, bans: 1 });
    expect(lg!.byClass).toEqual([
      { class: "NXDOMAIN", addresses: 1, affairs: 1 },
      { class: "FAKEHOST", addresses: 0, affairs: 0 },
      { class: "TRUEHOST", addresses: 1, affairs: 2 },
      { class: "ALLOWED", addresses: 0, affairs: 0 },
      { class: "UNKNOWN", addresses: 1, affairs: 1 },
      { class: "unclassified", addresses: 3, affairs: 3 },
    ]);
    expect(lg!.byRule).toEqual([
      { rule: "failed-auth", affairs: 4, addresses: 2, bans: 1 },
      { rule: "invalid-user", affairs: 3, addresses: 1, bans: 0 },
    ]);
    expect(lg!.latestBans).toEqual([{ time: "2026-11-25T11:50:01Z", address: "203.0.113.5", rule: "failed-auth", seconds: 3600, until: "2026-11-25T12:50:01Z", permanent: false, lifted: false, vhost: null }]);
    expect(lg!.hourly.start).toBe("2026-11-24T13:00:00Z");
    expect(lg!.hourly.affairs[7]).toBe(2); /* 20:00Z */
    expect(lg!.hourly.affairs[20]).toBe(3); /* 09:00Z */
    expect(lg!.hourly.affairs[22]).toBe(2); /* 11:00Z */
    expect(wb).toMatchObject({ module: "WB", tracked: 3, banned: 1, affairs: 9, bans: 1 });
    expect(wb!.topAttackers.map((a) => [a.address, a.affairs, a.bans])).toEqual([
      ["198.51.100.9", 6, 1],
      ["192.0.2.44", 2, 0],
      ["203.0.113.77", 1, 0],
    ]);
  });

  test("--module limits the report, and a module without a database reports zeros", async () => {
    const r = await gatherReport(loadConfig(root), { now: NOW, since: NOW - 86400, modules: ["MB"] }, firewallOf(root));
    expect(r.modules.map((m) => [m.module, m.tracked, m.affairs])).toEqual([["MB", 0, 0]]);
    expect(existsSync(join(root, "var", "db", "MB.db"))).toBe(false);
  });
});

describe("per-vhost reports", () => {
  /* what only www.example.com saw: its name, its own attacker, its rule, its ban */
  const OTHER = ["www.example.com", "203.0.113.77", "bad-bot", "watcher_", "LG"];

  test("a vhost's report holds its own figures and nothing of another vhost", async () => {
    const shop = await reportAt("shop.example.com");
    expect(shop.firewall).toBeNull();
    expect(shop.modules).toHaveLength(1);
    /* 198.51.100.9 is banned because of www: shop sees its one affair, not the ban */
    expect(shop.modules[0]).toMatchObject({ module: "WB", vhost: "shop.example.com", tracked: 2, banned: 0, affairsToday: 3, affairs: 3, bans: 0, latestBans: [] });
    expect(shop.modules[0]!.topAttackers.map((a) => [a.address, a.affairs, a.bans])).toEqual([
      ["192.0.2.44", 2, 0],
      ["198.51.100.9", 1, 0],
    ]);
    const text = renderReport(shop, 100);
    const json = JSON.stringify(shop);
    for (const leak of OTHER) {
      expect(text).not.toContain(leak);
      expect(json).not.toContain(leak);
    }
  });

  test("--out --per-vhost writes one isolated report per vhost; --quiet prints nothing", () => {
    const out = join(root, "reports");
    const r = run("report", "--out", out, "--per-vhost", "--quiet", "--since", "3650d");
    expect([r.code, r.out, r.err]).toEqual([0, "", ""]);
    expect(readdirSync(out).sort()).toEqual(["report-shop.example.com.json", "report-shop.example.com.txt", "report-www.example.com.json", "report-www.example.com.txt"]);
    const shop = readFileSync(join(out, "report-shop.example.com.txt"), "utf8") + readFileSync(join(out, "report-shop.example.com.json"), "utf8");
    for (const leak of OTHER) expect(shop).not.toContain(leak);
    const www = readFileSync(join(out, "report-www.example.com.txt"), "utf8") + readFileSync(join(out, "report-www.example.com.json"), "utf8");
    for (const leak of ["shop.example.com", "192.0.2.44"]) expect(www).not.toContain(leak);
    expect(ReportSchema.parse(JSON.parse(readFileSync(join(out, "report-www.example.com.json"), "utf8"))).modules[0]!.bans).toBe(1);
  });
});

describe("report from the command line", () => {
  test("--json is the schema's document; --quiet is silent when the period saw nothing", () => {
    const r = run("report", "--json", "--since", "3650d");
    expect(r.code).toBe(0);
    expect(ReportSchema.parse(JSON.parse(r.out)).modules.map((m) => m.module)).toEqual(["LG", "WB"]);
    /* the future: the fixed-date data is over a second old */
    const quiet = run("report", "--quiet", "--since", "1s");
    expect([quiet.code, quiet.out]).toEqual([0, ""]);
  });

  test("a ban lifted by unban shows as lifted, ended when it was lifted, and no longer counts as banned", () => {
    const fresh = makeRoot();
    const watcher = (...args: string[]) => Bun.spawnSync([join(REPO, "dist", "watcher"), "--root", fresh, ...args], { stdout: "pipe", stderr: "pipe" });
    expect(watcher("ban", "LG", "203.0.113.61", "--time", "7d").exitCode).toBe(0);
    const before = ReportSchema.parse(JSON.parse(watcher("report", "--json", "--module", "LG").stdout.toString())).modules[0]!;
    expect(before.banned).toBe(1);
    expect(before.latestBans[0]).toMatchObject({ address: "203.0.113.61", lifted: false });
    expect(watcher("unban", "LG", "203.0.113.61").exitCode).toBe(0);
    const after = ReportSchema.parse(JSON.parse(watcher("report", "--json", "--module", "LG").stdout.toString())).modules[0]!;
    expect(after.banned).toBe(0);
    expect(after.latestBans[0]).toMatchObject({ address: "203.0.113.61", lifted: true });
    expect(Date.parse(after.latestBans[0]!.until!)).toBeLessThanOrEqual(Date.now());
    expect(watcher("report", "--module", "LG", "--width", "160").stdout.toString()).toContain("(lifted)");

    expect(watcher("ban", "LG", "203.0.113.62", "--time", "forever").exitCode).toBe(0);
    const forever = ReportSchema.parse(JSON.parse(watcher("report", "--json", "--module", "LG").stdout.toString())).modules[0]!;
    expect(forever.latestBans[0]).toMatchObject({ address: "203.0.113.62", until: null, lifted: false });
    expect(watcher("report", "--module", "LG", "--width", "160").stdout.toString()).toContain("until unbanned");
  });

  test("a permanent ban is permanent in the report, not a length of millions of days, lifted or not", () => {
    const fresh = makeRoot();
    const watcher = (...args: string[]) => Bun.spawnSync([join(REPO, "dist", "watcher"), "--root", fresh, ...args], { stdout: "pipe", stderr: "pipe" });
    const latestBan = () => ReportSchema.parse(JSON.parse(watcher("report", "--json", "--module", "LG").stdout.toString())).modules[0]!.latestBans[0];
    const banRow = () => watcher("report", "--module", "LG", "--width", "160").stdout.toString().split("\n").find((l) => /^│ \S+Z +│ 192\.0\.2\.77 /.test(l)); /* latest bans: time first */
    expect(watcher("ban", "LG", "192.0.2.77", "--time", "forever").exitCode).toBe(0);
    expect(latestBan()).toMatchObject({ address: "192.0.2.77", seconds: null, until: null, permanent: true, lifted: false });
    expect(banRow()).toMatch(/│ forever │ until unbanned │$/);
    expect(watcher("unban", "LG", "192.0.2.77").exitCode).toBe(0);
    expect(latestBan()).toMatchObject({ seconds: null, permanent: true, lifted: true });
    expect(banRow()).toMatch(/│ forever │ \S+ \(lifted\) │$/);
  });

  test("a blocklist never fetched reads never, due at the next run, not 1970; its count is its set's", () => {
    const fresh = makeRoot();
    appendFileSync(join(fresh, "etc", "watcher.toml"), '[dynload.lists.own]\nenabled = true\nurls = ["http://127.0.0.1:9/own.txt"]\nformat = "spamhaus-txt"\n');
    const watcher = (...args: string[]) => Bun.spawnSync([join(REPO, "dist", "watcher"), "--root", fresh, ...args], { stdout: "pipe", stderr: "pipe" });
    const report = ReportSchema.parse(JSON.parse(watcher("report", "--json").stdout.toString()));
    expect(report.blocklists).toEqual([{ list: "own", enabled: true, lastFetch: null, lastSuccess: null, entries: 0, nextDue: null, lastError: null }]);
    const text = watcher("report", "--width", "160").stdout.toString();
    const row = text.split("\n").find((l) => l.includes(" own "))!;
    expect(row).toMatch(/own +│ +0 │ never +│ next dynload run │ -/);
    expect(text).not.toContain("1970");
  });

  test("bad options exit 2 and say what was expected", () => {
    expect(run("report", "--since", "yesterday")).toMatchObject({ code: 2, err: expect.stringContaining('--since: expected a duration such as "24h"') });
    expect(run("report", "--per-vhost")).toMatchObject({ code: 2, err: expect.stringContaining("--out DIR") });
    expect(run("report", "--vhost", "shop.example.com", "--module", "LG")).toMatchObject({ code: 2 });
    expect(run("stat", "--from", "25.11.2026")).toMatchObject({ code: 2, err: expect.stringContaining("--from: expected a date") });
  });
});

describe("stat", () => {
  test("CSV parsed back by an RFC 4180 parser gives the known counts", () => {
    const out = join(root, "stat.csv");
    expect(run("stat", "--out", out).code).toBe(0);
    const [head, ...rows] = parseCsv(readFileSync(out, "utf8"));
    expect(head).toEqual([...STAT_COLUMNS]);
    expect(rows).toEqual([
      ["2026-10-01", "LG", "failed-auth", "", "", "1", "1", "1", "0"],
      ["2026-11-24", "LG", "failed-auth", "", "", "1", "1", "1", "0"],
      ["2026-11-24", "LG", "failed-auth", "UNKNOWN", "", "1", "1", "1", "0"],
      ["2026-11-25", "LG", "failed-auth", "", "", "1", "1", "1", "0"],
      ["2026-11-25", "LG", "failed-auth", "NXDOMAIN", "", "1", "1", "1", "1"],
      ["2026-11-25", "LG", "invalid-user", "", "", "1", "1", "1", "0"],
      ["2026-11-25", "LG", "invalid-user", "TRUEHOST", "", "2", "2", "1", "0"],
      ["2026-11-25", "WB", "bad-bot", "", "www.example.com", "1", "1", "1", "0"],
      ["2026-11-25", "WB", "scanner-probe", "", "shop.example.com", "3", "3", "2", "0"],
      ["2026-11-25", "WB", "scanner-probe", "", "www.example.com", "5", "5", "1", "1"],
    ]);
  });

  test("--by hour, --from/--to (a whole last day) and --module", () => {
    const r = run("stat", "--by", "hour", "--from", "2026-11-24", "--to", "2026-11-24", "--module", "lg");
    expect(r.code).toBe(0);
    expect(parseCsv(r.out).slice(1)).toEqual([
      ["2026-11-24T20:00:00Z", "LG", "failed-auth", "", "", "1", "1", "1", "0"],
      ["2026-11-24T20:00:00Z", "LG", "failed-auth", "UNKNOWN", "", "1", "1", "1", "0"],
    ]);
    expect(parseDate("2026-11-25T10:00", "--from")).toBe(at("2026-11-25T10:00:00Z"));
    expect(parseDate("2026-11-25T10:00+01:00", "--from")).toBe(at("2026-11-25T09:00:00Z"));
  });

  test("fields with commas, quotes and line breaks are quoted and come back intact", () => {
    const tricky = { period: "2026-11-25", module: "LG" as const, rule: 'say "hi", then\r\nleave', class: "", vhost: "a,b", events: 1, affairs: 2, addresses: 1, bans: 0 };
    expect(csvField('a"b')).toBe('"a""b"');
    expect(parseCsv(toCsv([tricky]))[1]).toEqual(["2026-11-25", "LG", 'say "hi", then\r\nleave', "", "a,b", "1", "2", "1", "0"]);
  });
});

describe("expire", () => {
  test("--dry-run lists, the real run forgets; statistics and other hosts stay; a second run does nothing", async () => {
    const stat = () => toCsv(statRows(loadConfig(root), { by: "day", from: null, to: null }));
    const before = stat();
    const expire = (module: "LG" | undefined, now: number, dryRun: boolean) => expireHosts(loadConfig(root), { module, now, dryRun });
    const dry = await expire(undefined, NOW, true);
    expect(dry.map((r) => [r.module, r.dryRun, r.expired])).toEqual([
      ["LG", true, [{ address: "192.0.2.99", lastSeen: Date.parse("2026-10-01T08:00:00Z") / 1000, lastRule: "failed-auth" }]],
      ["WB", true, []],
    ]);
    expect((await expire("LG", NOW, true))[0]!.expired).toHaveLength(1); /* the dry run changed nothing */
    expect((await expire("LG", NOW, false))[0]!.expired.map((h) => h.address)).toEqual(["192.0.2.99"]);
    expect((await expire("LG", NOW, false))[0]!.expired).toEqual([]);
    expect(stat()).toBe(before);
    const lg = (await reportAt()).modules[0]!;
    expect([lg.tracked, lg.banned]).toEqual([3, 1]);
  });

  test("a running ban keeps its host and its set element however short expireAfter is; a permanent one for ever", async () => {
    const fresh = makeRoot();
    writeFileSync(join(fresh, "etc", "watcher.toml"), 'firewall = "dryrun"\n[modules.LG]\ndns = false\nexpireAfter = "10s"\n');
    /* real time: the dry-run firewall times its elements out by the clock */
    const bannedAt = nowSeconds();
    const ctx = openModule(fresh, "LG");
    try {
      const hour = await manualBan(ctx, parseIp("203.0.113.121")!, undefined, bannedAt);
      expect(hour.seconds).toBe(3600); /* banTime's default */
      await manualBan(ctx, parseIp("192.0.2.77")!, FOREVER, bannedAt);
      const expireAt = async (now: number) => (await expireHosts(loadConfig(fresh), { module: "LG", now, dryRun: false }))[0]!.expired.map((h) => h.address);
      const setAt = async (now: number) => {
        const fw = firewallOf(fresh, () => now);
        try {
          return (await fw.list(moduleSetName("LG"))).map((e) => e.address).sort();
        } finally {
          await fw.close();
        }
      };

      expect(await expireAt(bannedAt + 11)).toEqual([]);
      expect(ctx.store.getHost("203.0.113.121")).toMatchObject({ bannedUntil: hour.until, banCount: 1 });
      expect(await setAt(bannedAt + 11)).toEqual(["192.0.2.77", "203.0.113.121"]);

      /* the hour is over: forgotten, ban count and all; the permanent ban stays */
      expect(await expireAt(hour.until)).toEqual(["203.0.113.121"]);
      expect(ctx.store.getHost("203.0.113.121")).toBeNull();
      expect(await expireAt(hour.until + 400 * 86400)).toEqual([]);
      expect(ctx.store.getHost("192.0.2.77")).toMatchObject({ bannedUntil: PERMANENT_UNTIL });
      /* the dry-run set times its element out by its own clock, which may have read the next second when it was banned */
      expect(await setAt(hour.until + 2)).toEqual(["192.0.2.77"]);
    } finally {
      await ctx.close();
    }
  });
});

describe("expire in a network namespace, with the nftables backend", () => {

  /* root and nft: the suite runs as root (scripts/test.sh), so this always runs */
  test("a running ban older than expireAfter stays in the kernel set and keeps its host; an ended one is forgotten; --dry-run only lists", async () => {
    const watcher = join(REPO, "dist", "watcher");
    if (!existsSync(watcher)) throw new Error("dist/watcher is missing: run npm run build (npm test does)");
    const net = new TestNet().setup();
    try {
      const nsRoot = mkdtempSync(join(tmpdir(), "watcher-expire-"));
      mkdirSync(join(nsRoot, "etc"));
      writeFileSync(join(nsRoot, "etc", "watcher.toml"), 'firewall = "nftables"\n[modules.LG]\ndns = false\nexpireAfter = "1h"\n');
      const inNs = (argv: string[]) => net.exec(net.server, argv);
      const expireCli = (...args: string[]) => inNs([...cliRunner(nsRoot), "--root", nsRoot, "expire", ...args]);
      const kernelSet = (): string[] => {
        const doc = JSON.parse(inNs(["nft", "-j", "list", "set", "inet", "watcher", "watcher_LG_v4"]).out);
        return doc.nftables.flatMap((i: { set?: { elem?: { elem: { val: string } }[] } }) => i.set?.elem ?? []).map((e: { elem: { val: string } }) => e.elem.val).sort();
      };

      expect(inNs([watcher, "--root", nsRoot, "ban", "LG", "203.0.113.5", "--time", "1d"]).code).toBe(0);
      expect(inNs([watcher, "--root", nsRoot, "ban", "LG", "203.0.113.6", "--time", "2s"]).code).toBe(0);
      expect(kernelSet()).toEqual(["203.0.113.5", "203.0.113.6"]);
      /* last seen two hours ago: the hosts' records are made older, rather than the test waiting for expireAfter to pass */
      const db = new Database(join(nsRoot, "var", "db", "LG.db"));
      db.run("UPDATE hosts SET first_seen = first_seen - 7200, last_seen = last_seen - 7200");
      db.close();
      await waitFor("the 2 s ban's end", () => kernelSet().length === 1);

      const dry = expireCli("--dry-run", "--json");
      expect(dry.code).toBe(0);
      expect(JSON.parse(dry.out)).toMatchObject([{ module: "LG", dryRun: true, expired: [{ address: "203.0.113.6", lastRule: "manual" }] }]);

      const done = expireCli();
      expect(done.code).toBe(0);
      /* a new database gives back the pages its migrations freed (a table made and dropped) */
      expect(done.out.split("\n")[0]).toMatch(/^LG: forgot 1 host not seen for 1h; deleted 0 events older than 90d(, \d+ kB given back)?$/);
      expect(done.out).toContain("203.0.113.6");
      expect(done.out).not.toContain("203.0.113.5");
      expect(kernelSet()).toEqual(["203.0.113.5"]);
      expect(expireCli("--quiet")).toMatchObject({ code: 0, out: "" });
      expect(expireCli().out).toBe("LG: forgot 0 hosts not seen for 1h; deleted 0 events older than 90d\n");
      expect(kernelSet()).toEqual(["203.0.113.5"]);
    } finally {
      net.cleanup();
    }
  });
});
