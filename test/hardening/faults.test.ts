/**
 * Faults around a resident module (`dist/watcher --root R module LG`, dry-run firewall): kill -9
 * in the middle of a 100k-line flood and a restart; loggers that close the FIFO and open it
 * again; a DNS server that never answers, or goes away. Every process started here is ended by
 * its PID; DNS goes only to loopback. A full disk and a flood against a busy firewall are in
 * storage.test.ts.
 */
import { Database } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DryRunFirewall } from "../../src/core/firewall/dryrun";
import { TestDnsServer } from "../helpers/dns-server";
import { fifoHasReader, timeoutForHangsOnly, waitFor } from "../helpers/wait";
import { WATCHER } from "../helpers/root";

timeoutForHangsOnly();

const started: Bun.Subprocess[] = [];

afterAll(() => {
  for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
});

function newRoot(toml: string): string {
  const root = mkdtempSync(join(tmpdir(), "watcher-faults-"));
  mkdirSync(join(root, "etc"));
  writeFileSync(join(root, "etc", "watcher.toml"), `firewall = "dryrun"\n${toml}`);
  return root;
}

/** `watcher module LG`, reading its FIFO; ready when it has the FIFO open (a killed one's status file may linger). */
async function startModule(root: string): Promise<Bun.Subprocess<"ignore", "ignore", "pipe">> {
  const p = Bun.spawn([WATCHER, "--root", root, "module", "LG"], { stdin: "ignore", stdout: "ignore", stderr: "pipe", env: { ...process.env, WATCHER_ROOT: "" } });
  started.push(p);
  const fifo = join(root, "var", "fifo", "WatchLG");
  await waitFor("the module reading its FIFO", () => p.exitCode === null && fifoHasReader(fifo));
  return p;
}

/** startModule, with its log read as it comes: `text()` what it said so far, `log` all of it once it exits. */
async function startModuleLogged(root: string): Promise<{ module: Bun.Subprocess<"ignore", "ignore", "pipe">; text: () => string; log: Promise<string> }> {
  const module = await startModule(root);
  let said = "";
  const log = (async () => {
    const decoder = new TextDecoder();
    for await (const bytes of module.stderr) said += decoder.decode(bytes, { stream: true });
    return said;
  })();
  return { module, text: () => said, log };
}

async function stopModule(p: Bun.Subprocess<"ignore", "ignore", "pipe">): Promise<string> {
  p.kill("SIGTERM");
  expect(await p.exited).toBe(0);
  return new Response(p.stderr).text();
}

/** what injectFifo says when the lines went in (compared whole, so a failure shows its message) */
const INJECTED = { code: 0, err: "" };

/** `watcher inject LG` (into the FIFO) with this text on stdin. */
async function injectFifo(root: string, text: string): Promise<{ code: number; err: string }> {
  const file = join(root, `chunk-${Math.random().toString(36).slice(2)}.log`);
  writeFileSync(file, text);
  const p = Bun.spawn([WATCHER, "--root", root, "inject", "LG"], { stdin: Bun.file(file), stdout: "ignore", stderr: "pipe", env: { ...process.env, WATCHER_ROOT: "" } });
  started.push(p);
  const code = await p.exited;
  rmSync(file);
  return { code, err: await new Response(p.stderr).text() };
}

function openDb(root: string): Database {
  return new Database(join(root, "var", "db", "LG.db"), { readonly: true });
}

function query<T>(root: string, sql: string): T[] {
  if (!existsSync(join(root, "var", "db", "LG.db"))) return [];
  const db = openDb(root);
  try {
    return db.query(sql).all() as T[];
  } finally {
    db.close();
  }
}

const bannedInDb = (root: string) => new Set(query<{ address: string }>(root, "SELECT address FROM hosts WHERE banned_until > unixepoch()").map((r) => r.address));
const affairEvents = (root: string) => query<{ n: number }>(root, "SELECT COUNT(*) AS n FROM events WHERE kind = 'affair'")[0]?.n ?? 0;

function integrity(path: string): string {
  const db = new Database(path, { readonly: true });
  try {
    return (db.query("PRAGMA integrity_check").get() as { integrity_check: string }).integrity_check;
  } finally {
    db.close();
  }
}

async function firewallSet(root: string): Promise<Set<string>> {
  const fw = new DryRunFirewall(join(root, "var", "db", "firewall-dryrun.db"), join(root, "var", "log", "firewall-dryrun.log"));
  try {
    return new Set((await fw.list("watcher_LG")).map((e) => e.address));
  } finally {
    await fw.close();
  }
}

function stamp(): string {
  const d = new Date();
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.toLocaleString("en-US", { month: "short" })} ${String(d.getDate()).padStart(2, " ")} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function failedPassword(address: string, pid: number): string {
  return `${stamp()} srv sshd-session[${pid}]: Failed password for invalid user admin from ${address} port ${40000 + (pid % 20000)} ssh2\n`;
}

/** attacker n of the flood: IPv4 from two documentation nets, IPv6 from 2001:db8:f::/48 */
function attacker(n: number): string {
  if (n < 254) return `203.0.113.${n + 1}`;
  if (n < 508) return `198.51.100.${n - 253}`;
  return `2001:db8:f::${(n - 507).toString(16)}`;
}

/**
 * The flood: `attackers` addresses with `each` failed passwords apiece, each attacker's lines
 * spread over a window of about 20k lines that slides through the flood, so that bans fall due
 * all along it (and losing a few thousand lines in a crash cannot save anyone).
 */
function flood(attackers: number, each: number): string[] {
  const lines: { at: number; text: string }[] = [];
  let x = 12345;
  const rand = (n: number) => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x % n;
  };
  const total = attackers * each;
  const step = Math.floor(20000 / each);
  for (let a = 0; a < attackers; a++) {
    const start = (a * (total - 20000)) / attackers;
    for (let k = 0; k < each; k++) lines.push({ at: start + k * step + rand(step), text: failedPassword(attacker(a), 10000 + ((a * each + k) % 60000)) });
  }
  return lines.sort((p, q) => p.at - q.at).map((l) => l.text);
}

describe("faults", () => {
  test("kill -9 of the module in the middle of a 100k-line flood, then a restart: no committed ban lost, database sound, firewall holds every ban", async () => {
    const root = newRoot("[modules.LG]\ndns = false\nipv6Prefix = 0\nmaxAffairs = 5\nfindTime = \"1h\"\nbanTime = \"1h\"\n");
    const ATTACKERS = 2000;
    const lines = flood(ATTACKERS, 50);
    expect(lines.length).toBe(100000);
    const CHUNK = 5000;
    const chunks: string[] = [];
    for (let i = 0; i < lines.length; i += CHUNK) chunks.push(lines.slice(i, i + CHUNK).join(""));

    let module = await startModule(root);
    const KILL_AT = 9; /* the tenth chunk is on its way when the module dies */
    for (let c = 0; c < KILL_AT; c++) expect(await injectFifo(root, chunks[c]!)).toEqual(INJECTED);
    const before = KILL_AT * CHUNK;
    await waitFor("the first chunks read", () => affairEvents(root) === before);
    expect(bannedInDb(root).size).toBeGreaterThan(100);
    const writing = injectFifo(root, chunks[KILL_AT]!);
    /* kill while the tenth chunk is being read: some of it committed, not all (polled often: its blocks commit one by one) */
    await waitFor("the tenth chunk under way", () => affairEvents(root) > before, undefined, 1);
    module.kill("SIGKILL");
    expect(await module.exited).not.toBe(0);
    const atKill = affairEvents(root);
    expect(atKill).toBeGreaterThan(before);
    expect(atKill).toBeLessThan(before + CHUNK);
    await writing; /* its writes fail once no one reads the FIFO: lines then in flight are lost, as with any logger */

    /* right after the crash: the database is sound and every ban it committed is in the firewall */
    const dbFile = join(root, "var", "db", "LG.db");
    expect(integrity(dbFile)).toBe("ok");
    const committed = bannedInDb(root);
    expect(committed.size).toBeGreaterThan(100);
    const fwAfterKill = await firewallSet(root);
    expect([...committed].filter((a) => !fwAfterKill.has(a))).toEqual([]);

    /* restart and finish the flood; a sentinel attacker at the end says everything was read */
    module = await startModule(root);
    for (let c = KILL_AT + 1; c < chunks.length; c++) expect(await injectFifo(root, chunks[c]!)).toEqual(INJECTED);
    const SENTINEL = "2001:db8:5e::1";
    expect(await injectFifo(root, Array.from({ length: 5 }, (_, i) => failedPassword(SENTINEL, 3000 + i)).join(""))).toEqual(INJECTED);
    await waitFor("the sentinel's ban", () => bannedInDb(root).has(SENTINEL));
    const log = await stopModule(module);
    expect(log).toContain("stopped:");

    expect(integrity(dbFile)).toBe("ok");
    expect(integrity(join(root, "var", "db", "firewall-dryrun.db"))).toBe("ok");
    const banned = bannedInDb(root);
    /* no committed ban lost */
    expect([...committed].filter((a) => !banned.has(a))).toEqual([]);
    /* the firewall set matches the database (a ban the crash kept from its commit was made again) */
    const fw = await firewallSet(root);
    expect([...banned].filter((a) => !fw.has(a))).toEqual([]);
    expect([...fw].filter((a) => !banned.has(a))).toEqual([]);
    /* each attacker made 50 tries: the few lines lost in the crash cannot save any of them */
    expect(banned.size).toBe(ATTACKERS + 1);
    /* and each was banned once: one ban event per banned host, none twice */
    const events = query<{ address: string; n: number }>(root, "SELECT address, COUNT(*) AS n FROM events WHERE kind = 'ban' GROUP BY address HAVING n > 1");
    expect(events).toEqual([]);
  });

  test("loggers closing the FIFO and opening it again, one after the other with pauses: no line written after a reopen is lost", async () => {
    const root = newRoot("[modules.LG]\ndns = false\nmaxAffairs = 1000\n");
    const module = await startModule(root);
    const fifo = join(root, "var", "fifo", "WatchLG");
    let written = 0;
    let pid = 20000;
    const batch = (n: number) => {
      let text = "";
      for (let i = 0; i < n; i++, written++) text += failedPassword(attacker(written % 1500), pid++);
      return text;
    };
    for (let writer = 0; writer < 6; writer++) {
      /* as rsyslog's ompipe does: open for writing, write whole lines, close */
      const fd = openSync(fifo, constants.O_WRONLY);
      const text = batch(300);
      const bytes = new TextEncoder().encode(text);
      for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off);
      closeSync(fd);
      /* no one holds the write end now; the module must not take that for the end */
      await Bun.sleep(writer % 2 === 0 ? 250 : 50);
    }
    /* two writers through `watcher inject`, and a last single line after a long pause */
    expect(await injectFifo(root, batch(500))).toEqual(INJECTED);
    expect(await injectFifo(root, batch(500))).toEqual(INJECTED);
    await Bun.sleep(600);
    expect(await injectFifo(root, batch(1))).toEqual(INJECTED);
    await waitFor(`${written} affairs`, () => affairEvents(root) >= written);
    await Bun.sleep(200);
    expect(affairEvents(root)).toBe(written);
    const log = await stopModule(module);
    expect(log).toContain(`stopped: ${written} lines, ${written} matched, ${written} affairs`);
  });

  test("the FIFO removed while the module runs: made again within seconds as the master makes it, read, and nothing written into the old one is lost", async () => {
    const root = newRoot('fifoMode = "0600"\n[modules.LG]\ndns = false\nmaxAffairs = 5\n');
    const { module, log } = await startModuleLogged(root);
    const fifo = join(root, "var", "fifo", "WatchLG");
    const old = statSync(fifo);
    /* a logger that keeps the FIFO open, as rsyslog's ompipe does */
    const held = openSync(fifo, constants.O_WRONLY);
    const send = (fd: number, text: string) => {
      const bytes = new TextEncoder().encode(text);
      for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off);
    };
    /* lines written into the old FIFO just before its removal, while the module cannot read them */
    module.kill("SIGSTOP");
    send(held, [1, 2, 3].map((i) => failedPassword("203.0.113.70", 4000 + i)).join(""));
    rmSync(fifo);
    module.kill("SIGCONT");
    await waitFor("the FIFO made again", () => statSync(fifo, { throwIfNoEntry: false })?.isFIFO());
    const made = statSync(fifo);
    expect(made.ino).not.toBe(old.ino);
    expect(made.mode & 0o777).toBe(0o600); /* fifoMode, as the master makes it */
    /* the held logger writes on into the old FIFO, then goes; a new writer opens the path, writes and closes */
    send(held, [4, 5].map((i) => failedPassword("203.0.113.70", 4000 + i)).join(""));
    closeSync(held);
    const writer = openSync(fifo, constants.O_WRONLY);
    send(writer, [1, 2, 3, 4, 5].map((i) => failedPassword("203.0.113.71", 5000 + i)).join(""));
    closeSync(writer);
    await waitFor("both bans", () => ["203.0.113.70", "203.0.113.71"].every((a) => bannedInDb(root).has(a)));
    module.kill("SIGTERM");
    expect(await module.exited).toBe(0);
    const text = await log;
    expect(text).toContain(`${fifo} was removed; made it again and reading it`);
    expect(text).toContain("stopped: 10 lines, 10 matched, 10 affairs, 2 bans");
  });

  test("a file put where the FIFO was: said once, left alone, refused by inject; the FIFO is made again once the path is free", async () => {
    const root = newRoot("[modules.LG]\ndns = false\nmaxAffairs = 5\n");
    const { module, log, text } = await startModuleLogged(root);
    const fifo = join(root, "var", "fifo", "WatchLG");
    rmSync(fifo);
    writeFileSync(fifo, "the operator's\n");
    const notFifo = `${fifo} exists but is not a FIFO; move it away`;
    await waitFor("the error", () => text().includes(notFifo));
    const inject = await injectFifo(root, failedPassword("203.0.113.72", 6000));
    expect(inject.code).not.toBe(0);
    expect(inject.err).toContain(`${fifo} is not a FIFO: move it away, then "watcher restart" makes it`);
    /* two more checks (3 s apart) with the file there, by the module's clock in its status file */
    const saidAt = Date.now() / 1000;
    const updatedAt = () => (JSON.parse(readFileSync(join(root, "var", "run", "LG.json"), "utf8")) as { updatedAt: number }).updatedAt;
    await waitFor("two more checks", () => updatedAt() >= saidAt + 7);
    expect(readFileSync(fifo, "utf8")).toBe("the operator's\n");
    rmSync(fifo);
    expect((await waitFor("the FIFO made again", () => statSync(fifo, { throwIfNoEntry: false }))).isFIFO()).toBe(true);
    /* the error, found at each check while the file stood there, was said once */
    expect(text().split(notFifo).length - 1).toBe(1);
    expect(await injectFifo(root, [1, 2, 3, 4, 5].map((i) => failedPassword("203.0.113.72", 6000 + i)).join(""))).toEqual(INJECTED);
    await waitFor("the ban", () => bannedInDb(root).has("203.0.113.72"));
    module.kill("SIGTERM");
    expect(await module.exited).toBe(0);
    expect(await log).toContain("stopped: 5 lines, 5 matched, 5 affairs, 1 bans");
  });

  test("inject into a FIFO that is gone names it and says what makes it again", async () => {
    const root = newRoot("[modules.LG]\ndns = false\n");
    const { err, code } = await injectFifo(root, failedPassword("203.0.113.73", 7000));
    expect(code).not.toBe(0);
    expect(err).toContain(`${join(root, "var", "fifo", "WatchLG")} does not exist: "watcher restart" makes it (a running module makes it again within seconds)`);
  });

  test("the DNS server never answers (its queries are dropped): the module keeps reading and banning, and presumes no guilt", async () => {
    /* a socket that takes queries and never answers; each lookup fails after 10 s, so a line that waited for one would be seen */
    const silent = await Bun.udpSocket({ hostname: "127.0.0.1", port: 0, socket: { data: () => {} } });
    try {
      const root = newRoot(`[dns]\nservers = ["127.0.0.1:${silent.port}"]\ntimeout = 10\nretries = 0\n[modules.LG]\ndns = true\nmaxAffairs = 3\n`);
      const module = await startModule(root);
      const attackers = Array.from({ length: 20 }, (_, i) => `203.0.113.${200 + i}`);
      const classOf = () => new Map(query<{ address: string; class: string | null }>(root, "SELECT address, class FROM hosts").map((r) => [r.address, r.class]));
      let pid = 30000;
      for (let round = 0; round < 3; round++) {
        expect(await injectFifo(root, attackers.map((a) => failedPassword(a, pid++)).join(""))).toEqual(INJECTED);
        await Bun.sleep(150);
      }
      await waitFor("all bans", () => attackers.every((a) => bannedInDb(root).has(a)));
      /* a line never waits for DNS: every attacker was banned before its lookup (from the first round) ended */
      const atBan = classOf();
      expect(attackers.filter((a) => atBan.get(a) !== null)).toEqual([]);
      expect(module.exitCode).toBeNull();
      /* our resolver's trouble is not the attacker's guilt: the lookups fail as UNKNOWN, no class that presets the counter */
      await waitFor("the lookups to fail", () => attackers.every((a) => classOf().get(a) === "UNKNOWN"));
      const classes = query<{ class: string | null }>(root, "SELECT DISTINCT class FROM hosts").map((r) => r.class);
      expect(classes.filter((c) => c === "NXDOMAIN" || c === "FAKEHOST")).toEqual([]);
      /* and it goes on: a new attacker after the lookups have failed */
      for (let i = 0; i < 3; i++) expect(await injectFifo(root, failedPassword("198.51.100.200", pid++))).toEqual(INJECTED);
      await waitFor("the late attacker's ban", () => bannedInDb(root).has("198.51.100.200"));
      const fw = await firewallSet(root);
      expect([...bannedInDb(root)].filter((a) => !fw.has(a))).toEqual([]);
      await stopModule(module);
    } finally {
      silent.close();
    }
  });

  test("the DNS server goes away while the module runs: lookups before answer, lookups after fail, banning goes on", async () => {
    const dns = await new TestDnsServer({ ptr: {} }).start(); /* every name NXDOMAIN while it runs */
    try {
      /* a timeout no loaded machine reaches for an answer over loopback; without a server each lookup fails after it */
      const root = newRoot(`[dns]\nservers = ["${dns.address}"]\ntimeout = 5\nretries = 0\n[modules.LG]\ndns = true\nmaxAffairs = 3\n`);
      const module = await startModule(root);
      let pid = 40000;
      /* one affair of a first attacker: its lookup answers NXDOMAIN, which presets its counter */
      expect(await injectFifo(root, failedPassword("203.0.113.230", pid++))).toEqual(INJECTED);
      await waitFor("the first classification", () => query<{ class: string | null }>(root, "SELECT class FROM hosts WHERE address = '203.0.113.230'")[0]?.class === "NXDOMAIN");
      dns.stop();
      /* the server is gone: new attackers are counted and banned as unclassified hosts */
      const later = Array.from({ length: 10 }, (_, i) => `2001:db8:d::${i + 1}`);
      for (let round = 0; round < 3; round++) {
        expect(await injectFifo(root, later.map((a) => failedPassword(a, pid++)).join(""))).toEqual(INJECTED);
        await Bun.sleep(100);
      }
      await waitFor("the later bans", () => later.every((a) => bannedInDb(root).has(a)));
      /* the addresses' classes (their /64's prefix row has none) */
      const laterClasses = () => query<{ class: string | null }>(root, `SELECT DISTINCT class FROM hosts WHERE address LIKE '2001:db8:d::%' AND address NOT LIKE '%/%'`).map((r) => r.class);
      await waitFor("the later lookups to fail", () => laterClasses().every((c) => c !== null));
      expect(laterClasses()).toEqual(["UNKNOWN"]);
      /* the first attacker's preset counter still works: its second affair bans */
      expect(await injectFifo(root, failedPassword("203.0.113.230", pid++))).toEqual(INJECTED);
      await waitFor("the preset ban", () => bannedInDb(root).has("203.0.113.230"));
      expect(module.exitCode).toBeNull();
      await stopModule(module);
    } finally {
      dns.stop();
    }
  });
});
