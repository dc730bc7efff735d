/**
 * The built binary (dist/watcher, made by `npm test` before bun test runs) end to end, with the
 * dry-run firewall: what a user types, what they see, the exit codes, and the FIFO path.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { appendFileSync, existsSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DryRunFirewall } from "../../src/core/firewall/dryrun";
import { readJson } from "../../src/core/runfiles";
import { makeRoot, WATCHER } from "../helpers/root";
import { fifoHasReader, timeoutForHangsOnly, waitFor } from "../helpers/wait";
import { positionFileFor } from "../../src/core/layout";

timeoutForHangsOnly();

const REPO = join(import.meta.dir, "..", "..");
const SAMPLE = join(REPO, "test", "fixtures", "LG", "sshd.log");
const started: Bun.Subprocess[] = [];

afterAll(() => {
  for (const p of started) if (p.exitCode === null) p.kill("SIGKILL");
});

const newRoot = (files: Record<string, string> = {}) => makeRoot("cli", files);

function run(args: string[], stdin?: string) {
  const p = Bun.spawnSync([WATCHER, ...args], { stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin), env: { ...process.env, WATCHER_ROOT: "" } });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

/** `run`, without blocking: many of them at once take the time of the slowest, not of all. */
async function runAsync(args: string[]) {
  const p = Bun.spawn([WATCHER, ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, WATCHER_ROOT: "" } });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

/** How far `watcher module LG --file <file>` has read and processed the file (null until it has opened it). */
function readUpTo(root: string, file: string): number | null {
  return readJson<{ position: number }>(positionFileFor(join(root, "var", "run"), "LG", file))?.position ?? null;
}

/** The module has processed the file up to its end. */
const readToEnd = (root: string, file: string) => readUpTo(root, file) === statSync(file).size;

/** Current-time syslog lines: n failed passwords from `address`, one connection each. */
function attack(address: string, n: number, pid = 4000): string {
  const now = new Date();
  const stamp = `${now.toLocaleString("en-US", { month: "short" })} ${String(now.getDate()).padStart(2, " ")} ${now.toTimeString().slice(0, 8)}`;
  let out = "";
  for (let i = 0; i < n; i++) out += `${stamp} srv sshd-session[${pid + i}]: Failed password for invalid user admin${i} from ${address} port ${41000 + i} ssh2\n`;
  return out;
}

function firewallOf(root: string): DryRunFirewall {
  return new DryRunFirewall(join(root, "var", "db", "firewall-dryrun.db"), join(root, "var", "log", "firewall-dryrun.log"));
}

describe("usage and exit codes", () => {
  test("--version, --help on every command", async () => {
    const commands = [[], ["start"], ["stop"], ["status"], ["restart"], ["module"], ["inject"], ["rules"], ["rules", "test"], ["ban"], ["unban"], ["report"], ["stat"], ["expire"], ["syslog-config"]];
    /* all at once: the test takes one start-up of the binary, not sixteen in a row */
    const [version, ...helps] = await Promise.all([runAsync(["--version"]), ...commands.map((cmd) => runAsync([...cmd, "--help"]))]);
    expect(version!.out.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    for (const [i, cmd] of commands.entries()) {
      expect({ cmd, code: helps[i]!.code }).toEqual({ cmd, code: 0 });
      expect(helps[i]!.out).toContain("watcher");
    }
  });
  test("bad usage exits 2 with a hint", () => {
    const r = run(["frobnicate"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`unknown command "frobnicate"`);
    expect(run(["rules", "test", "XX", SAMPLE]).code).toBe(2);
    expect(run([]).code).toBe(2);
  });
  test("a bad config exits 2 and names the key", () => {
    const root = newRoot({ "etc/watcher.toml": 'firewall = "dryrun"\n[modules.LG]\nmaxAffairs = -1\n' });
    const r = run(["--root", root, "inject", "LG", "--direct"], attack("203.0.113.5", 1));
    expect(r.code).toBe(2);
    expect(r.err).toContain("etc/watcher.toml: modules.LG.maxAffairs:");
  });
  test("a bad rule file exits 2, names file, rule and field, and touches nothing", () => {
    const root = newRoot({ "rules/LG/local.rule": 'programs = ["sshd"]\n[[rule]]\nname = "mine"\npattern = "x"\nhost = "from <HOST>"\n' });
    const r = run(["--root", root, "inject", "LG", "--direct"], attack("203.0.113.5", 10));
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${join(root, "rules/LG/local.rule")}: rule "mine", field host: template "from <HOST>" must be anchored`);
    expect(existsSync(join(root, "var"))).toBe(false);
  });
  test("a bad whitelist exits 2 and names file and line", () => {
    const root = newRoot({ "etc/whitelist": "192.0.2.1\n192.0.2.300\n" });
    const r = run(["--root", root, "ban", "LG", "203.0.113.5"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${join(root, "etc/whitelist")}:2: "192.0.2.300" is not an IPv4/IPv6 address or CIDR`);
  });
});

describe("rules test", () => {
  test("--json: lines, matched, seconds, hits per rule, matches with line, rule, host, action", () => {
    const r = run(["rules", "test", "LG", SAMPLE, "--json"]);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out);
    expect(doc.lines).toBe(readFileSync(SAMPLE, "utf8").split("\n").length - 1);
    expect(doc.matched).toBe(doc.matches.length);
    expect(doc.seconds).toBeGreaterThan(0);
    expect(doc.rules["failed-auth"]).toBeGreaterThan(0);
    expect(doc.matches[0]).toEqual({ line: expect.any(Number), rule: "connection-from", host: "198.51.100.7", action: "ignore" });
  });
  test("the table names every rule and ends with lines/s; stdin as -", () => {
    const r = run(["rules", "test", "LG", "-"], readFileSync(SAMPLE, "utf8"));
    expect(r.code).toBe(0);
    expect(r.out).toContain("invalid-user");
    expect(r.out).toMatch(/lines\/s\n$/);
  });
  test("the formats seen: a table, and formats in --json", () => {
    const table = run(["rules", "test", "LG", SAMPLE]);
    expect(table.out).toMatch(/│ format +│ lines │/);
    expect(table.out).toMatch(/│ syslog +│ \d+ +│/);
    const doc = JSON.parse(run(["rules", "test", "LG", SAMPLE, "--json"]).out);
    expect(Object.keys(doc.formats)).toContain("syslog");
  });
  test("--missed: the module's programs' lines no rule counted; --unparsed: lines in no format", () => {
    const log = [
      "Nov 24 10:00:01 srv sshd[1]: Failed password for root from 203.0.113.5 port 22 ssh2",
      "Nov 24 10:00:02 srv sshd[2]: Server listening on 0.0.0.0 port 22.",
      "Nov 24 10:00:03 srv CRON[3]: (root) CMD (true)",
      "  a continuation no format knows",
    ].join("\n");
    const r = run(["rules", "test", "LG", "-", "--missed", "--unparsed"], `${log}\n`);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/lines of [^\n]*sshd[^\n]* no rule counted: 1\n {6}2: Nov 24 10:00:02 srv sshd\[2\]: Server listening/);
    expect(r.out).toContain("lines in no format watcher knows: 1\n      4:   a continuation no format knows");
    const doc = JSON.parse(run(["rules", "test", "LG", "-", "--missed", "--unparsed", "--json"], `${log}\n`).out);
    expect(doc.missed).toEqual([{ line: 2, text: "Nov 24 10:00:02 srv sshd[2]: Server listening on 0.0.0.0 port 22." }]);
    expect(doc.unparsedLines).toEqual([{ line: 4, text: "  a continuation no format knows" }]);
    expect(doc.formats).toEqual({ syslog: 3, unrecognised: 1 });
  });
  test("--program where no file or stdin takes it is a usage error, exit 2", () => {
    const root = newRoot();
    expect(run(["--root", root, "module", "LG", "--program", "sshd"]).code).toBe(2);
    expect(run(["--root", root, "inject", "LG", "--program", "sshd", "x"]).code).toBe(2);
  });
  test("a missing file is a runtime error, exit 1", () => {
    const r = run(["rules", "test", "LG", "/nonexistent/auth.log"]);
    expect(r.code).toBe(1);
    expect(r.err).toContain("cannot read /nonexistent/auth.log");
  });
});

describe("inject --direct, ban, unban", () => {
  test("a journal export on stdin is read as one: its entries, never the forged ones inside a binary message", () => {
    const root = newRoot();
    const p = Bun.spawnSync([WATCHER, "--root", root, "inject", "LG", "--direct", "--json"], {
      stdin: readFileSync(join(REPO, "test", "fixtures", "formats", "journal.export")),
      env: { ...process.env, WATCHER_ROOT: "" },
    });
    expect(p.exitCode).toBe(0);
    const doc = JSON.parse(p.stdout.toString());
    expect(doc.formats).toEqual({ "journal export": 2 });
    expect(doc.matched).toBe(2);
    expect(p.stdout.toString()).not.toContain("203.0.113.9");
  });
  test("unban of an address a list drops says it stays dropped, and by which entry", () => {
    const root = newRoot({ "etc/blacklist": "203.0.113.77\n" });
    for (const args of [["unban", "203.0.113.77"], ["unban", "LG", "203.0.113.77"]]) {
      const r = run(["--root", root, ...args]);
      expect(r.code).toBe(0);
      expect(r.out).toContain("note: 203.0.113.77 is still dropped by blacklist entry 203.0.113.77: remove it from that list (and reload) to let it in");
    }
    expect(JSON.parse(run(["--root", root, "unban", "203.0.113.77", "--json"]).out).stillDroppedBy).toEqual(["blacklist entry 203.0.113.77"]);
    expect(JSON.parse(run(["--root", root, "unban", "203.0.113.78", "--json"]).out).stillDroppedBy).toEqual([]);
  });
  test("replays a log, says whom it banned and why, and the firewall has it", async () => {
    const root = newRoot({ "etc/whitelist": "198.51.100.0/24\n" });
    const r = run(["--root", root, "inject", "LG", "--direct", "--json"], attack("203.0.113.5", 5) + attack("198.51.100.5", 9) + attack("2001:db8::5", 2));
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out);
    expect(doc).toMatchObject({ lines: 16, matched: 16, affairs: 7, bans: [{ address: "203.0.113.5", seconds: 3600 }], protected: 9 });
    const fw = firewallOf(root);
    expect((await fw.list("watcher_LG")).map((e) => e.address)).toEqual(["203.0.113.5"]);
    await fw.close();
    const text = run(["--root", root, "inject", "LG", "--direct", `${attack("2001:db8::5", 3).trim()}`]);
    expect(text.out).toContain("banned 2001:db8::5 at ");
    expect(text.out).toContain("for 1h: 5 affairs within 1h, last by rule failed-auth");
  });
  test("ban and unban by hand; protected addresses refused", async () => {
    const root = newRoot();
    expect(run(["--root", root, "ban", "LG", "203.0.113.9", "--time", "10m"]).out).toMatch(/^banned 203.0.113.9 in LG for 10m \(until /);
    const fw = firewallOf(root);
    expect((await fw.list("watcher_LG")).map((e) => e.address)).toEqual(["203.0.113.9"]);
    expect(run(["--root", root, "unban", "LG", "203.0.113.9"]).out).toBe("unbanned 203.0.113.9 in LG\n");
    expect(await fw.list("watcher_LG")).toEqual([]);
    await fw.close();
    for (const address of ["127.0.0.1", "::1", "0.0.0.0"]) {
      const r = run(["--root", root, "ban", "LG", address]);
      expect(r.code).toBe(2);
      expect(r.err).toContain(`refusing to ban ${address}`);
    }
    expect(run(["--root", root, "ban", "LG", "203.0.113.300"]).code).toBe(2);
    expect(run(["--root", root, "ban", "LG", "203.0.113.9", "--time", "soon"]).code).toBe(2);
  });

  test("a negative or missing --time is refused, exit 2 naming the option, however written; nothing is banned", () => {
    const root = newRoot();
    /* "-1h" once read as the flags -1 -h: the help, exit 0, no ban */
    for (const time of [["--time", "-1h"], ["--time=-1h"], ["--time", "-1d"]]) {
      const r = run(["--root", root, "ban", "LG", "203.0.113.61", ...time]);
      expect([r.code, r.out]).toEqual([2, ""]);
      expect(r.err).toStartWith("watcher: --time: expected a duration");
    }
    for (const missing of [["--time"], ["--time", "--json"]]) {
      const r = run(["--root", root, "ban", "LG", "203.0.113.61", ...missing]);
      expect([r.code, r.out]).toEqual([2, ""]);
      expect(r.err).toStartWith("watcher: Not enough arguments following: time\n");
    }
    expect(run(["--root", root, "bans", "--json"]).out).toBe("[]\n");
  });
});

describe("the resident module", () => {
  test("reads its FIFO, bans, and stops cleanly on SIGTERM", async () => {
    const root = newRoot();
    expect(run(["--root", root, "inject", "LG", attack("203.0.113.20", 1).trim()]).err).toContain("WatchLG does not exist");
    const module = Bun.spawn([WATCHER, "--root", root, "module", "LG"], { stderr: "pipe", stdout: "ignore" });
    started.push(module);
    const fifo = join(root, "var", "fifo", "WatchLG");
    await waitFor("the module reading its FIFO", () => fifoHasReader(fifo));
    /* two writers, one after the other: the module keeps reading (no EOF between them) */
    expect(run(["--root", root, "inject", "LG"], attack("203.0.113.20", 3)).code).toBe(0);
    expect(run(["--root", root, "inject", "LG"], attack("203.0.113.20", 2, 5000)).code).toBe(0);
    const fw = firewallOf(root);
    await waitFor("the ban", async () => (await fw.list("watcher_LG")).some((e) => e.address === "203.0.113.20"));
    await fw.close();
    module.kill("SIGTERM");
    expect(await module.exited).toBe(0);
    const log = await new Response(module.stderr).text();
    expect(log).toContain("ban 203.0.113.20 for 3600s: 5 affairs within 1h");
    expect(log).toContain("stopped: 5 lines, 5 matched, 5 affairs, 1 bans");
  });

  test("a file source carries on where it stopped: nothing skipped, nothing read twice", async () => {
    const root = newRoot({ "etc/watcher.toml": 'firewall = "dryrun"\n[modules.LG]\ndns = false\nmaxAffairs = 100\n' });
    const file = join(root, "auth.log");
    writeFileSync(file, attack("203.0.113.40", 3)); /* the first time: history is not read */
    const affairs = () => {
      const { Database } = require("bun:sqlite") as typeof import("bun:sqlite");
      const db = new Database(join(root, "var", "db", "LG.db"), { readonly: true });
      const row = db.query("SELECT COUNT(*) AS n FROM events WHERE kind = 'affair'").get() as { n: number };
      db.close();
      return row.n;
    };
    const runModule = () => {
      const p = Bun.spawn([WATCHER, "--root", root, "module", "LG", "--file", file], { stderr: "pipe", stdout: "ignore" });
      started.push(p);
      return p;
    };
    let module = runModule();
    await waitFor("the module to open the file, at its end", () => readUpTo(root, file) !== null);
    expect(readUpTo(root, file)).toBe(statSync(file).size);
    appendFileSync(file, attack("203.0.113.40", 2, 5000));
    await waitFor("two affairs", () => existsSync(join(root, "var", "db", "LG.db")) && affairs() === 2);
    module.kill("SIGTERM");
    expect(await module.exited).toBe(0);
    appendFileSync(file, attack("203.0.113.40", 2, 6000)); /* written while watcher is down */
    module = runModule();
    /* the position is saved once a chunk is processed (and its affairs committed) */
    await waitFor("the module to process the file to its end", () => readToEnd(root, file));
    expect(affairs()).toBe(4);
    module.kill("SIGTERM");
    expect(await module.exited).toBe(0);
  });

  test("a file rotated or rewritten while the module was stopped: nothing skipped, nothing read twice", async () => {
    const root = newRoot({ "etc/watcher.toml": 'firewall = "dryrun"\n[modules.LG]\ndns = false\nmaxAffairs = 100\n' });
    const file = join(root, "auth.log");
    writeFileSync(file, "");
    const affairs = (address: string) => {
      const { Database } = require("bun:sqlite") as typeof import("bun:sqlite");
      const db = new Database(join(root, "var", "db", "LG.db"), { readonly: true });
      const row = db.query("SELECT COUNT(*) AS n FROM events WHERE kind = 'affair' AND address = ?").get(address) as { n: number };
      db.close();
      return row.n;
    };
    const session = async (while_stopped: () => void) => {
      const p = Bun.spawn([WATCHER, "--root", root, "module", "LG", "--file", file], { stderr: "pipe", stdout: "ignore" });
      started.push(p);
      await waitFor("the module to read the file to its end", () => {
        const at = readJson<{ ino: number; position: number }>(positionFileFor(join(root, "var", "run"), "LG", file));
        return at?.ino === statSync(file).ino && at.position === statSync(file).size;
      });
      /* SIGTERM before its handler is set would end it at once (exit 143), not after the chunk in hand */
      await waitFor("the module to catch SIGTERM", () => /^SigCgt:\s*[0-9a-f]*[4567cdef][0-9a-f]{3}$/m.test(readFileSync(`/proc/${p.pid}/status`, "utf8")));
      p.kill("SIGTERM");
      expect(await p.exited).toBe(0);
      while_stopped();
    };
    await session(() => appendFileSync(file, attack("203.0.113.50", 2, 5000)));
    /* read, then renamed away with a line more, and a new file */
    await session(() => {
      appendFileSync(file, attack("203.0.113.51", 1, 6000));
      renameSync(file, `${file}.1`);
      writeFileSync(file, attack("203.0.113.51", 2, 6100));
    });
    /* copytruncate: the old content copied away, the file emptied, and more written than was read before */
    await session(() => {
      writeFileSync(file, "");
      appendFileSync(file, attack("203.0.113.52", 5, 7000));
    });
    await session(() => {});
    expect([affairs("203.0.113.50"), affairs("203.0.113.51"), affairs("203.0.113.52")]).toEqual([2, 3, 5]);
  });

  test("follows a file across rotation (--file)", async () => {
    const root = newRoot();
    const file = join(root, "auth.log");
    writeFileSync(file, attack("203.0.113.30", 9)); /* already there at start: not re-read */
    const module = Bun.spawn([WATCHER, "--root", root, "module", "LG", "--file", file], { stderr: "pipe", stdout: "ignore" });
    started.push(module);
    await waitFor("the module to open the file, at its end", () => readToEnd(root, file));
    appendFileSync(file, attack("203.0.113.31", 3));
    await waitFor("the appended lines read before the rotation", () => readToEnd(root, file));
    renameSync(file, `${file}.1`);
    writeFileSync(file, attack("203.0.113.31", 2, 6000));
    const fw = firewallOf(root);
    await waitFor("the ban after rotation", async () => (await fw.list("watcher_LG")).some((e) => e.address === "203.0.113.31"));
    expect((await fw.list("watcher_LG")).map((e) => e.address)).toEqual(["203.0.113.31"]);
    await fw.close();
    module.kill("SIGTERM");
    expect(await module.exited).toBe(0);
  });
});
