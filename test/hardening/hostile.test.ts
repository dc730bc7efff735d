/**
 * The hostile corpus (test/fixtures/hostile/, format in its README.md) and generated hostile
 * bytes (64 KiB and 1 MiB lines, invalid UTF-8, NUL and binary junk), line by line through the
 * rules and end to end through the real pipeline: `dist/watcher --root R inject <M> --direct
 * --json`, dry-run firewall, maxAffairs = 1 so that every counted affair bans. Nothing may ban a
 * wrong address (the 192.0.2.0/24 decoys), nor a loopback, unspecified, multicast, broadcast or
 * reserved one; every other address a counting rule reads must be banned; every line is handled
 * in bounded time.
 */
import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { type ModuleName, BUILTIN_MODULES } from "../../src/core/config";
import { DryRunFirewall } from "../../src/core/firewall/dryrun";
import type { Mode } from "../../src/core/rules";
import { loadRules } from "../../src/modules/registry";
import { testRules } from "../../src/modules/ruletest";
import { affairHost, type Expectation, rawProgramOf, readExpectations } from "../helpers/annotated";
import { WATCHER } from "../helpers/root";
import { timeoutForHangsOnly } from "../helpers/wait";

timeoutForHangsOnly();

const REPO = join(import.meta.dir, "..", "..");
const RULES = join(REPO, "rules");
const HOSTILE = join(REPO, "test", "fixtures", "hostile");

/* ---------------------------------------------------------------- the corpus */

interface Corpus {
  file: string;
  module: ModuleName;
  program: string | null;
  text: string;
  expectations: Expectation[];
}

function readCorpus(file: string): Corpus {
  const text = readFileSync(join(HOSTILE, file), "utf8");
  const module = /^#! module (\S+)/m.exec(text)?.[1];
  if (!module || !(BUILTIN_MODULES as readonly string[]).includes(module)) throw new Error(`${file}: no "#! module" line`);
  return { file, module: module as ModuleName, program: rawProgramOf(text), text, expectations: readExpectations(file, text) };
}

const CORPORA = readdirSync(HOSTILE)
  .filter((f) => f.endsWith(".log"))
  .sort()
  .map(readCorpus);

/* ---------------------------------------------------------------- what may never be banned */

function v4(text: string): number[] | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  return m ? m.slice(1).map(Number) : null;
}

/** Loopback, unspecified, multicast, broadcast, reserved (an independent reading, not src/core/ip.ts). */
function reserved(address: string): boolean {
  const b = v4(address);
  if (b) return b[0] === 0 || b[0] === 127 || b[0]! >= 224;
  const a = address.toLowerCase();
  return a === "::" || a === "::1" || a.startsWith("ff");
}

/** The decoys: text the attackers wrote. */
function decoy(address: string): boolean {
  return address.startsWith("192.0.2.") || address.startsWith("2001:db8:bad:");
}

const OWN = new Set(Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address)));

/* ---------------------------------------------------------------- running the binary */

function newRoot(): string {
  const root = mkdtempSync(join(tmpdir(), "watcher-hostile-"));
  mkdirSync(join(root, "etc"));
  let toml = 'firewall = "dryrun"\n';
  /* which addresses the text makes us ban, one by one: the corpora's IPv6 attackers share a
     /64, whose ban as a whole (test/safety/prefixes.test.ts) is not what is measured here */
  for (const m of BUILTIN_MODULES) toml += `[modules.${m}]\ndns = false\nmaxAffairs = 1\nmode = "aggressive"\nipv6Prefix = 0\n`;
  writeFileSync(join(root, "etc", "watcher.toml"), toml);
  return root;
}

function run(args: string[], stdin: Uint8Array | string) {
  const started = performance.now();
  const p = Bun.spawnSync([WATCHER, ...args], { stdin: typeof stdin === "string" ? new TextEncoder().encode(stdin) : stdin, env: { ...process.env, WATCHER_ROOT: "" } });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString(), ms: performance.now() - started };
}

interface InjectResult {
  lines: number;
  matched: number;
  affairs: number;
  protected: number;
  bans: { address: string; rule: string }[];
  skipped: { tooLong: number; invalid: number };
  seconds: number;
}

function inject(root: string, module: ModuleName, program: string | null, input: Uint8Array | string): InjectResult {
  const r = run(["--root", root, "inject", module, "--direct", "--json", ...(program ? ["--program", program] : [])], input);
  if (r.code !== 0) throw new Error(`inject ${module} exited ${r.code}: ${r.err}`);
  expect(r.ms).toBeLessThan(15000);
  return JSON.parse(r.out) as InjectResult;
}

/** What the module's database and the dry-run firewall hold afterwards. */
async function stateOf(root: string, module: ModuleName) {
  const db = new Database(join(root, "var", "db", `${module}.db`), { readonly: true });
  const hosts = db.query<{ address: string; banned: number }, []>("SELECT address, banned_until > unixepoch() AS banned FROM hosts ORDER BY address").all();
  const eventAddresses = db.query<{ address: string }, []>("SELECT DISTINCT address FROM events ORDER BY address").all().map((r) => r.address);
  const integrity = (db.query("PRAGMA integrity_check").get() as { integrity_check: string }).integrity_check;
  db.close();
  const fw = new DryRunFirewall(join(root, "var", "db", "firewall-dryrun.db"), join(root, "var", "log", "firewall-dryrun.log"));
  const firewall = (await fw.list(`watcher_${module}`)).map((e) => e.address).sort();
  await fw.close();
  return { hosts, eventAddresses, firewall, integrity };
}

/** Syslog timestamps of now (local time, as rsyslog writes them), so that bans still run when we look. */
function syslogStamp(d = new Date()): string {
  const month = d.toLocaleString("en-US", { month: "short" });
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${month} ${String(d.getDate()).padStart(2, " ")} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function restamp(text: string): string {
  const stamp = syslogStamp();
  return text.replace(/^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d /gm, `${stamp} `);
}

const sorted = (a: Iterable<string>) => [...new Set(a)].sort();

/* ---------------------------------------------------------------- line by line */

describe("hostile corpus, line by line (rules test)", () => {
  for (const c of CORPORA) {
    for (const mode of ["normal", "aggressive"] as Mode[]) {
      test(`${c.file} in ${mode} mode: every line as annotated`, () => {
        const result = testRules(loadRules(c.module, RULES, mode), c.text, { program: c.program });
        const byLine = new Map(result.matches.map((m) => [m.line, m]));
        const wrong: string[] = [];
        for (const e of c.expectations) {
          const active = e.rule !== null && (mode === "aggressive" || !e.aggressiveOnly);
          const got = byLine.get(e.line);
          const want = active ? `${e.rule} ${e.host ?? "-"}` : "no match";
          const have = got ? `${got.rule} ${affairHost(got, byLine) ?? "-"}` : "no match";
          if (want !== have) wrong.push(`${c.file}:${e.line}: want ${want}, got ${have}\n    ${e.text}`);
        }
        expect(wrong).toEqual([]);
        /* whatever else happens, a decoy is never read as the address */
        expect(result.matches.filter((m) => m.host !== null && decoy(m.host))).toEqual([]);
      });
    }
  }
});

/* ---------------------------------------------------------------- through the pipeline */

describe("hostile corpus through the pipeline (inject --direct, dry-run firewall)", () => {
  for (const c of CORPORA) {
    test(`${c.file}: exactly the attackers are banned, in the database and the firewall; no decoy, no reserved address`, async () => {
      const rules = loadRules(c.module, RULES, "aggressive");
      const counting = new Set(rules.rules.filter((r) => (r.action === "count" || r.action === "ban") && !r.rate).map((r) => r.name));
      const expected = sorted(c.expectations.filter((e) => e.rule && counting.has(e.rule) && e.host && !reserved(e.host) && !OWN.has(e.host)).map((e) => e.host!));
      const root = newRoot();
      const result = inject(root, c.module, c.program, restamp(c.text));
      const banned = sorted(result.bans.map((b) => b.address));
      expect(banned.filter((a) => decoy(a) || reserved(a) || OWN.has(a))).toEqual([]);
      expect(banned).toEqual(expected);
      const state = await stateOf(root, c.module);
      expect(state.integrity).toBe("ok");
      expect(sorted(state.hosts.map((h) => h.address))).toEqual(expected);
      expect(state.hosts.every((h) => h.banned === 1)).toBe(true);
      expect(state.eventAddresses).toEqual(expected);
      expect(state.firewall).toEqual(expected);
      expect(result.seconds).toBeLessThan(2);
    });
  }
});

/* ---------------------------------------------------------------- generated bytes */

/** A deterministic byte stream: a small LCG, so that the junk is the same on every run. */
function junkBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

function concat(parts: (string | Uint8Array)[]): Uint8Array {
  const enc = new TextEncoder();
  const chunks = parts.map((p) => (typeof p === "string" ? enc.encode(p) : p));
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Attacker text of exactly `length` characters: decoy addresses and fake sshd tails, over and over. */
function decoyFiller(length: number): string {
  const unit = "x from 192.0.2.7 port 22 ssh2 [preauth] rhost=192.0.2.8 user=<192.0.2.9> ";
  return unit.repeat(Math.ceil(length / unit.length)).slice(0, length);
}

const MAX_LINE = 64 * 1024;

/** sshd lines around the fit ones: 64 KiB and 1 MiB lines, invalid UTF-8, NUL bytes, binary junk, odd but valid text */
function sshdInput(): { input: Uint8Array; lines: number; expected: string[] } {
  const stamp = syslogStamp();
  const head = `${stamp} srv sshd-session[9001]: `;
  /** an "Invalid user" line of exactly `length` characters, the server's tail naming `host` */
  const invalidUser = (length: number, host: string) => {
    const tail = ` from ${host} port 40001`;
    const fill = length - head.length - "Invalid user ".length - tail.length;
    return `${head}Invalid user ${decoyFiller(fill)}${tail}`;
  };
  const line = (pid: number, message: string) => `${stamp} srv sshd-session[${pid}]: ${message}\n`;
  const parts: (string | Uint8Array)[] = [
    /* exactly 64 KiB: still a line to read */
    `${invalidUser(MAX_LINE, "203.0.113.221")}\n`,
    /* one character more: skipped as over-long, whatever its tail says */
    `${invalidUser(MAX_LINE + 1, "203.0.113.222")}\n`,
    /* 1 MiB: skipped; the line after it is read as usual (no loss of step) */
    `${invalidUser(1024 * 1024, "203.0.113.223")}\n`,
    line(9004, "Invalid user bob from 203.0.113.224 port 40004"),
    /* invalid UTF-8 (a Latin-1 name, lone continuation bytes, an overlong dot): read with U+FFFD in
       their place, so a byte of the client's hides nothing; a word of the address holding one is no address */
    concat([`${stamp} srv sshd-session[9005]: Invalid user J`, new Uint8Array([0xfc]), "rgen from 203.0.113.225 port 40005\n"]),
    concat([`${stamp} srv sshd-session[9006]: Invalid user `, new Uint8Array([0x80, 0xbf]), " from 192.0.2.7 port 22 from 203.0.113.226 port 40006\n"]),
    concat([`${stamp} srv sshd-session[9007]: Invalid user x from 203.0.113`, new Uint8Array([0xc0, 0xae]), "227 port 40007\n"]),
    line(9008, "Invalid user carol from 203.0.113.228 port 40008"),
    /* NUL bytes: skipped */
    `${stamp} srv sshd-session[9009]: Invalid user a\u0000b from 203.0.113.229 port 40009\n`,
    `${stamp} srv sshd-session[9010]: Invalid user a from 192.0.2.7\u0000 from 203.0.113.230 port 40010\n`,
    /* 8 KiB of binary junk (with newlines of its own), then a fit line */
    junkBytes(8192, 42),
    "\n",
    line(9011, "Invalid user dave from 203.0.113.231 port 40011"),
    /* valid but odd text: a BOM inside, a CRLF line end, non-ASCII digits where the address goes */
    line(9012, "Invalid user \uFEFF from 203.0.113.232 port 40012"),
    `${stamp} srv sshd-session[9013]: Invalid user erin from 203.0.113.233 port 40013\r\n`,
    line(9015, "Invalid user x from \uFF12\uFF10\uFF13.0.113.235 port 40015"),
    line(9016, "Invalid user x from \u0662\u0660\u0663.0.113.236 port 40016"),
    /* the input ends inside a 1 MiB line without a newline: skipped too */
    invalidUser(1024 * 1024, "203.0.113.237"),
  ];
  const input = concat(parts);
  /* lines in the input: its newlines, plus the unterminated last one */
  const lines = input.reduce((n, b) => n + (b === 10 ? 1 : 0), 0) + 1;
  return { input, lines, expected: ["203.0.113.221", "203.0.113.224", "203.0.113.225", "203.0.113.226", "203.0.113.228", "203.0.113.231", "203.0.113.232", "203.0.113.233"] };
}

/** nginx access lines: a 64 KiB request, a 1 MiB request, invalid UTF-8 and NUL in the user agent, junk */
function nginxInput(): { input: Uint8Array; lines: number; expected: string[] } {
  const access = (host: string, path: string, agent: string) => `${host} - - [25/Nov/2026:10:00:01 +0000] "GET ${path} HTTP/1.1" 404 1 "-" "${agent}"\n`;
  const fit = access("203.0.113.241", "/.env?", "-");
  const input = concat([
    access("203.0.113.241", `/.env?${decoyFiller(MAX_LINE - fit.length + 1)}`, "-"),
    access("203.0.113.242", `/.env?${decoyFiller(1024 * 1024)}`, "-"),
    access("203.0.113.243", "/.git/config", "-"),
    concat([`203.0.113.244 - - [25/Nov/2026:10:00:01 +0000] "GET /.env HTTP/1.1" 404 1 "-" "sqlmap `, new Uint8Array([0xff, 0xfe]), ` 192.0.2.7"\n`]),
    access("203.0.113.245", "/.env", "Nikto\u0000 192.0.2.7"),
    junkBytes(4096, 7),
    "\n",
    access("2001:db8::246", "/.aws/credentials", "192.0.2.7 - - [25/Nov/2026:10:00:00 +0000]"),
  ]);
  const lines = input.reduce((n, b) => n + (b === 10 ? 1 : 0), 0);
  return { input, lines, expected: ["2001:db8::246", "203.0.113.241", "203.0.113.243", "203.0.113.244"] };
}

describe("generated hostile bytes through the pipeline", () => {
  test("dovecot: a 60 KB user name of brackets is handled in bounded time, and its sender banned", async () => {
    /* Dovecot with auth_verbose and auth_username_chars emptied logs any user name in its auth lines */
    const stamp = syslogStamp();
    const input = `${stamp} mail dovecot: auth: passwd-file(${"(".repeat(60000)},203.0.113.251): unknown user\n`;
    const root = newRoot();
    const result = inject(root, "MB", null, input);
    expect(result.bans.map((b) => b.address)).toEqual(["203.0.113.251"]);
    expect(result.seconds).toBeLessThan(1);
  });

  const cases = [
    { name: "sshd", module: "LG" as ModuleName, program: null, make: sshdInput, tooLong: 3 },
    { name: "nginx access", module: "WB" as ModuleName, program: "nginx-access", make: nginxInput, tooLong: 1 },
  ];
  for (const c of cases) {
    const { input, lines, expected } = c.make();
    let root = "";
    let result: InjectResult | null = null;
    const once = () => {
      if (!result) {
        root = newRoot();
        result = inject(root, c.module, c.program, input);
      }
      return result;
    };

    test(`${c.name}: 64 KiB and 1 MiB lines, invalid UTF-8, NUL bytes and junk: only the senders of fit lines are banned, in bounded time`, async () => {
      const r = once();
      expect(sorted(r.bans.map((b) => b.address))).toEqual(expected);
      expect(r.seconds).toBeLessThan(5);
      const state = await stateOf(root, c.module);
      expect(state.integrity).toBe("ok");
      expect(sorted(state.hosts.map((h) => h.address))).toEqual(expected);
      expect(state.eventAddresses).toEqual(expected);
      expect(state.firewall).toEqual(expected);
    });

    test(`${c.name}: the report counts every line it was given, the over-long ones among the skipped`, () => {
      const r = once();
      expect(r.skipped.tooLong).toBe(c.tooLong);
      expect(r.skipped.invalid).toBeGreaterThanOrEqual(2);
      expect(r.lines).toBe(lines);
    });
  }
});

describe("manual bans of addresses in odd forms", () => {
  test("loopback, unspecified, broadcast, multicast and reserved addresses are refused in every notation; non-addresses too; the firewall stays empty", async () => {
    const root = newRoot();
    const reservedForms = ["::ffff:127.0.0.1", "127.1.2.3", "0:0:0:0:0:0:0:1", "::", "::ffff:0.0.0.0", "255.255.255.255", "::ffff:255.255.255.255", "224.0.0.1", "239.255.255.250", "240.0.0.1", "ff02::1", "FF05::1:3"];
    for (const address of reservedForms) {
      const r = run(["--root", root, "ban", "LG", address], "");
      expect({ address, code: r.code, refused: r.err.includes("refusing to ban") }).toEqual({ address, code: 2, refused: true });
    }
    for (const text of ["010.0.0.1", "203.0.113.0256", "fe80::1%eth0", "192.0.2.7.attacker.example", "[2001:db8::1]", "203.0.113.5:22", " 203.0.113.5"]) {
      const r = run(["--root", root, "ban", "LG", text], "");
      expect({ text, code: r.code, refused: r.err.includes("is not an IPv4 or IPv6 address") }).toEqual({ text, code: 2, refused: true });
    }
    expect(existsSync(join(root, "var", "db", "LG.db"))).toBe(false);
    if (existsSync(join(root, "var", "db", "firewall-dryrun.db"))) {
      const fw = new DryRunFirewall(join(root, "var", "db", "firewall-dryrun.db"), join(root, "var", "log", "firewall-dryrun.log"));
      expect(await fw.list("watcher_LG")).toEqual([]);
      await fw.close();
    }
  });
});
