/**
 * The master with the dry-run firewall (no kernel touched): supervision of a crashed module,
 * SIGHUP reloading lists and lifting the ban of a newly whitelisted address, FIFO permissions,
 * and refusing a bad rule file before anything starts.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { appendFileSync, closeSync, constants, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { DryRunFirewall } from "../../src/core/firewall/dryrun";
import { makeRoot, watcher } from "../helpers/root";
import { readJson } from "../../src/core/runfiles";
import type { ModuleStatus } from "../../src/modules/loop";
import type { MasterStatus } from "../../src/master/control";
import { fifoHasReader, timeoutForHangsOnly, waitFor } from "../helpers/wait";
import { TestDnsServer } from "../helpers/dns-server";
import { positionFileFor, statusFile } from "../../src/core/layout";

timeoutForHangsOnly();

const roots: string[] = [];

function newRoot(files: Record<string, string> = {}): string {
  const root = makeRoot("master", files);
  roots.push(root);
  return root;
}

const master = (root: string) => readJson<MasterStatus>(statusFile(join(root, "var", "run"), "master"));
/** The master's LG module is up: it wrote its status, and so handles SIGHUP (a signal before that would end it). */
const lgRunning = (root: string) => {
  const pid = master(root)?.modules.LG?.pid;
  return pid !== undefined && readJson<ModuleStatus>(statusFile(join(root, "var", "run"), "LG"))?.pid === pid;
};
const banned = async (root: string) => {
  const fw = new DryRunFirewall(join(root, "var", "db", "firewall-dryrun.db"), join(root, "var", "log", "firewall-dryrun.log"));
  const list = (await fw.list("watcher_LG")).map((e) => e.address);
  await fw.close();
  return list;
};

afterEach(() => {
  for (const root of roots.splice(0)) watcher(root, "stop");
});

describe("the master", () => {
  test("restarts a module that died", async () => {
    const root = newRoot();
    expect(watcher(root, "start").code).toBe(0);
    const first = master(root)!.modules.LG!.pid!;
    process.kill(first, "SIGKILL");
    const status = await waitFor("a new module", () => {
      const m = master(root)?.modules.LG;
      return m?.pid && m.pid !== first && m.restarts === 1 ? m : null;
    });
    expect(status.lastExit).not.toBe(0);
    expect(watcher(root, "stop").code).toBe(0);
  });

  test("status says a module that keeps failing is down and exits 1; repaired, it exits 0 again", async () => {
    const root = newRoot();
    expect(watcher(root, "start").code).toBe(0);
    await waitFor("the LG module to run", () => lgRunning(root));
    const healthy = watcher(root, "status", "--json");
    expect(healthy.code).toBe(0);
    expect(JSON.parse(healthy.out)).toMatchObject({ modulesDown: [], modules: [{ module: "LG", running: true, lastExit: null }] });

    /* its database set aside (with its WAL) and garbage in its place: each new module process exits at once */
    const dbDir = join(root, "var", "db");
    const aside = join(root, "db-aside");
    mkdirSync(aside);
    const databaseFiles = (dir: string) => readdirSync(dir).filter((f) => f.startsWith("LG.db"));
    for (const f of databaseFiles(dbDir)) renameSync(join(dbDir, f), join(aside, f));
    writeFileSync(join(dbDir, "LG.db"), "this is not a database\n");
    process.kill(master(root)!.modules.LG!.pid!, "SIGKILL");

    /* exit 1 of a process that found the garbage, not the SIGKILL's */
    const json = await waitFor("status --json to say LG is down", () => {
      const r = watcher(root, "status", "--json");
      const status = JSON.parse(r.out);
      return r.code === 1 && status.modules[0].lastExit === 1 ? status : null;
    });
    expect(json).toMatchObject({ running: true, modulesDown: ["LG"], modules: [{ module: "LG", running: false, lastExit: 1 }] });
    expect(json.modules[0].restarts).toBeGreaterThanOrEqual(2);
    const text = await waitFor("status to say LG is down", () => {
      const r = watcher(root, "status");
      return r.code === 1 ? r.out : null;
    });
    expect(text).toStartWith("watcher is running");
    expect(text).toMatch(/\n│ LG +│ - +│ down +│/);
    expect(text).toMatch(/\nwarning: module LG is not running \(exited with status 1, restarted \d+ times\): its log lines wait, nothing is counted or banned\n/);

    /* the database back: the next restart runs */
    for (const f of databaseFiles(dbDir)) rmSync(join(dbDir, f));
    for (const f of databaseFiles(aside)) renameSync(join(aside, f), join(dbDir, f));
    const recovered = await waitFor("status to exit 0", () => {
      const r = watcher(root, "status", "--json");
      return r.code === 0 ? JSON.parse(r.out) : null;
    });
    expect(recovered).toMatchObject({ modulesDown: [], modules: [{ module: "LG", running: true, lastExit: 1 }] });
    expect(watcher(root, "status").out).not.toContain("warning");
    expect(watcher(root, "stop").code).toBe(0);
  });

  test("restart leaves the running watcher alone when start would fail: a plain file at the FIFO's path, a damaged database", async () => {
    const root = newRoot();
    expect(watcher(root, "start").code).toBe(0);
    const pid = master(root)!.pid;
    const fifo = join(root, "var", "fifo", "WatchLG");
    rmSync(fifo);
    writeFileSync(fifo, "a log line where the FIFO belongs\n");
    let r = watcher(root, "restart");
    expect(r.code).toBe(2);
    expect(r.err).toContain("watcher was not restarted");
    expect(r.err).toContain(`${fifo} exists but is not a FIFO`);
    expect(watcher(root, "status").out).toContain(`watcher is running (pid ${pid}`);
    rmSync(fifo);

    /* every page after the header overwritten: the header reads, the pages do not */
    const db = join(root, "var", "db", "LG.db");
    await waitFor("LG's database", () => existsSync(db) && statSync(db).size >= 8192);
    const bytes = readFileSync(db);
    bytes.fill(0x5a, 4096);
    writeFileSync(join(root, "damaged.db"), bytes);
    r = watcher(root, "check");
    expect(r.code).toBe(0); /* the database in use is whole */
    renameSync(join(root, "damaged.db"), db);
    r = watcher(root, "restart");
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${db}: `);
    expect(watcher(root, "status").out).toContain(`watcher is running (pid ${pid}`);
  });

  test("a module runs with JavaScriptCore's last compiler tier off (its peak RSS, see master.ts)", () => {
    const root = newRoot();
    expect(watcher(root, "start").code).toBe(0);
    const pid = master(root)!.modules.LG!.pid!;
    const environment = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
    expect(environment).toContain("BUN_JSC_useFTLJIT=0");
  });

  test("SIGHUP: a newly whitelisted address loses its ban; modules reload their rules", async () => {
    const root = newRoot();
    expect(watcher(root, "start").code).toBe(0);
    expect(watcher(root, "ban", "LG", "203.0.113.44", "--time", "1h").code).toBe(0);
    expect(await banned(root)).toEqual(["203.0.113.44"]);
    writeFileSync(join(root, "etc", "whitelist"), "203.0.113.32/28\n");
    await waitFor("the LG module to run", () => lgRunning(root));
    process.kill(master(root)!.pid, "SIGHUP");
    await waitFor("the ban to be lifted", async () => (await banned(root)).length === 0);
    await waitFor("the lifted ban", () => (master(root)?.restore.lifted.includes("203.0.113.44") ? true : null));
    await waitFor("the module's reload", () => readFileSync(join(root, "var", "log", "watcher.log"), "utf8").includes("watcher module LG: SIGHUP: reloaded config, "));
    expect(watcher(root, "stop").code).toBe(0);
  });

  test("a whitelist gone from disk is not an empty one: SIGHUP, check and restart keep what runs; an empty file empties it", async () => {
    const root = newRoot({ "etc/whitelist": "203.0.113.32/28\n" });
    expect(watcher(root, "start").code).toBe(0);
    await waitFor("the LG module to run", () => lgRunning(root));
    const white = async () => {
      const fw = new DryRunFirewall(join(root, "var", "db", "firewall-dryrun.db"), join(root, "var", "log", "firewall-dryrun.log"));
      const list = (await fw.list("watcher_white")).map((e) => e.address);
      await fw.close();
      return list;
    };
    expect(await white()).toEqual(["203.0.113.32/28"]);
    const whitelist = join(root, "etc", "whitelist");
    rmSync(whitelist);
    const log = () => readFileSync(join(root, "var", "log", "watcher.log"), "utf8");
    process.kill(master(root)!.pid, "SIGHUP");
    await waitFor("the refused reload", () => log().includes(`SIGHUP: nothing changed: ${whitelist}: not there, but the configuration in force`));
    expect(await white()).toEqual(["203.0.113.32/28"]);
    const check = watcher(root, "check");
    expect(check.code).toBe(2);
    expect(check.err).toContain("put it back, or leave an empty file to whitelist nothing");
    expect(watcher(root, "restart").code).toBe(2);

    writeFileSync(whitelist, "");
    const reloads = log().split("SIGHUP: lists reloaded").length;
    process.kill(master(root)!.pid, "SIGHUP");
    await waitFor("the next reload", () => log().split("SIGHUP: lists reloaded").length > reloads);
    await waitFor("the emptied whitelist set", async () => (await white()).length === 0);
    expect(watcher(root, "stop").code).toBe(0);
  });

  test("a SIGHUP while a module starts is held until it listens: the module is not ended by it, and reloads", async () => {
    const root = newRoot();
    expect(watcher(root, "start").code).toBe(0);
    /* at once: the module process is still loading, with no handler for SIGHUP yet */
    process.kill(master(root)!.pid, "SIGHUP");
    const log = () => readFileSync(join(root, "var", "log", "watcher.log"), "utf8");
    await waitFor("the module's reload", () => log().includes("watcher module LG: SIGHUP: reloaded config, "));
    expect(log()).not.toContain("exited with status");
    expect(master(root)!.modules.LG!.restarts).toBe(0);
    expect(watcher(root, "stop").code).toBe(0);
  });

  test("SIGHUP: a module whose sources changed starts again and reads the new ones; settings that need a restart are named until it", async () => {
    const root = newRoot();
    const config = (log: string, keep: boolean) =>
      `firewall = "dryrun"\nkeepFirewallOnStop = ${keep}\n[modules.LG]\ndns = false\nmaxAffairs = 1\nsources = [{ type = "file", path = "${join(root, log)}" }]\n`;
    for (const f of ["old.log", "new.log"]) writeFileSync(join(root, f), "");
    writeFileSync(join(root, "etc", "watcher.toml"), config("old.log", false));
    expect(watcher(root, "start").code).toBe(0);
    await waitFor("LG to open old.log", () => readJson(positionFileFor(join(root, "var", "run"), "LG", join(root, "old.log"))));
    const first = master(root)!.modules.LG!.pid;
    const log = () => readFileSync(join(root, "var", "log", "watcher.log"), "utf8");

    writeFileSync(join(root, "etc", "watcher.toml"), config("new.log", true));
    process.kill(master(root)!.pid, "SIGHUP");
    await waitFor("LG to open new.log", () => readJson(positionFileFor(join(root, "var", "run"), "LG", join(root, "new.log"))));
    expect(log()).toContain("SIGHUP: sources changed, read only when the module starts: stopping after the chunk in hand to be started again");
    expect(log()).toContain("module LG exited to read its new settings; starting it now");
    expect(log()).toContain("SIGHUP: keepFirewallOnStop changed: they take effect at the next restart");
    const status = master(root)!.modules.LG!;
    expect(status.pid).not.toBe(first);
    expect(status.restarts).toBe(0); /* no failure */
    appendFileSync(join(root, "new.log"), "Nov 25 10:00:00 srv sshd[7]: Invalid user x from 203.0.113.77 port 4\n");
    await waitFor("the ban from new.log", async () => (await banned(root)).includes("203.0.113.77"));

    /* the file back to what runs: nothing waits for a restart any more */
    writeFileSync(join(root, "etc", "watcher.toml"), config("new.log", false));
    const reloads = log().split("SIGHUP: lists reloaded").length;
    process.kill(master(root)!.pid, "SIGHUP");
    await waitFor("the next reload", () => log().split("SIGHUP: lists reloaded").length > reloads);
    expect(log().split("keepFirewallOnStop changed").length).toBe(2);
    expect(watcher(root, "stop").code).toBe(0);
  });

  test("SIGHUP: new sources that a broken file keeps from the module at first are read once a SIGHUP loads them (the module knows what it runs with)", async () => {
    const root = newRoot();
    const config = (log: string) => `firewall = "dryrun"\n[modules.LG]\ndns = false\nmaxAffairs = 1\nsources = [{ type = "file", path = "${join(root, log)}" }]\n`;
    for (const f of ["auth.log", "auth2.log"]) writeFileSync(join(root, f), "");
    const toml = join(root, "etc", "watcher.toml");
    writeFileSync(toml, config("auth.log"));
    expect(watcher(root, "start").code).toBe(0);
    await waitFor("LG to open auth.log", () => readJson(positionFileFor(join(root, "var", "run"), "LG", join(root, "auth.log"))));
    const first = master(root)!.modules.LG!.pid!;
    const log = () => readFileSync(join(root, "var", "log", "watcher.log"), "utf8");

    /* the new sources, and the file broken before LG can read it again: it is held stopped while the master's SIGHUP reaches it */
    writeFileSync(toml, config("auth2.log"));
    process.kill(first, "SIGSTOP");
    process.kill(master(root)!.pid, "SIGHUP");
    await waitFor("the master's reload", () => log().includes("SIGHUP: lists reloaded and restored"));
    writeFileSync(toml, `${config("auth2.log")}[broken\n`);
    process.kill(first, "SIGCONT");
    await waitFor("LG on its configuration in force", () => readJson<ModuleStatus>(statusFile(join(root, "var", "run"), "LG"))?.configError);
    expect(readJson(positionFileFor(join(root, "var", "run"), "LG", join(root, "auth2.log")))).toBeNull();

    /* the file repaired: this SIGHUP brings the sources the module does not run with yet */
    writeFileSync(toml, config("auth2.log"));
    process.kill(master(root)!.pid, "SIGHUP");
    await waitFor("LG to open auth2.log", () => readJson(positionFileFor(join(root, "var", "run"), "LG", join(root, "auth2.log"))));
    expect(master(root)!.modules.LG!.restarts).toBe(0); /* no failure */
    appendFileSync(join(root, "auth2.log"), "Nov 25 10:00:00 srv sshd[7]: Invalid user x from 203.0.113.80 port 4\n");
    await waitFor("the ban from auth2.log", async () => (await banned(root)).includes("203.0.113.80"));
    expect(readJson<ModuleStatus>(statusFile(join(root, "var", "run"), "LG"))!.configError).toBeNull();
    expect(watcher(root, "stop").code).toBe(0);
  });

  test("doctor names the sources the module reads, not an edit of them no SIGHUP has loaded yet", async () => {
    const root = newRoot();
    const config = (log: string) => `firewall = "dryrun"\n[modules.LG]\ndns = false\nsources = [{ type = "file", path = "${join(root, log)}" }]\n`;
    for (const f of ["auth.log", "auth2.log"]) writeFileSync(join(root, f), "");
    writeFileSync(join(root, "etc", "watcher.toml"), config("auth.log"));
    expect(watcher(root, "start").code).toBe(0);
    await waitFor("LG to open auth.log", () => readJson(positionFileFor(join(root, "var", "run"), "LG", join(root, "auth.log"))));
    appendFileSync(join(root, "auth.log"), "Nov 25 10:00:00 srv sshd[7]: Server listening on 0.0.0.0 port 22.\n");
    await waitFor("the line read", () => (readJson<ModuleStatus>(statusFile(join(root, "var", "run"), "LG"))?.lines ?? 0) > 0);
    writeFileSync(join(root, "etc", "watcher.toml"), config("auth2.log"));
    const input = (JSON.parse(watcher(root, "doctor", "--json").out) as { checks: { check: string; ok: boolean; message: string }[] }).checks.find((c) => c.check === "input LG")!;
    expect(input.message).toStartWith(`${join(root, "auth.log")}: last line`);
    expect(watcher(root, "stop").code).toBe(0);
  });

  test("a storm of SIGHUPs mixing good, broken and sources-changing edits ends with the module on the last good file", async () => {
    const root = newRoot();
    const config = (log: string, dns: boolean) => `firewall = "dryrun"\n[dns]\nservers = ["127.0.0.1:9"]\n[modules.LG]\ndns = ${dns}\nmaxAffairs = 1\nsources = [{ type = "file", path = "${join(root, log)}" }]\n`;
    const logs = ["a.log", "b.log", "c.log"];
    for (const f of logs) writeFileSync(join(root, f), "");
    const toml = join(root, "etc", "watcher.toml");
    writeFileSync(toml, config("a.log", false));
    expect(watcher(root, "start").code).toBe(0);
    /* its configuration in force is saved: a module's first start on a broken file has none to fall back on */
    await waitFor("the LG module to run", () => lgRunning(root));
    let seed = 36;
    const next = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
    for (let i = 0; i < 60; i++) {
      /* saved whole, as an editor does: a half-written file would be an empty configuration with its defaults */
      writeFileSync(`${toml}.new`, next(4) === 0 ? "[broken\n" : config(logs[next(3)]!, next(2) === 0));
      renameSync(`${toml}.new`, toml);
      process.kill(master(root)!.pid, "SIGHUP");
      await Bun.sleep(next(60)); /* the storm's own pace, not a wait for a condition */
    }
    writeFileSync(toml, config("c.log", true));
    process.kill(master(root)!.pid, "SIGHUP");
    await waitFor("LG on c.log", () => {
      const s = readJson<ModuleStatus>(statusFile(join(root, "var", "run"), "LG"));
      return s?.sources?.[0]?.type === "file" && s.sources[0].path === join(root, "c.log") && !s.configError && readJson(positionFileFor(join(root, "var", "run"), "LG", join(root, "c.log")));
    });
    appendFileSync(join(root, "c.log"), "Nov 25 10:00:00 srv sshd[7]: Invalid user x from 203.0.113.90 port 4\n");
    await waitFor("the ban from c.log", async () => (await banned(root)).includes("203.0.113.90"));
    expect(master(root)!.modules.LG!.restarts).toBe(0);
    expect(watcher(root, "stop").code).toBe(0);
  });

  test("SIGHUP: dns = true, and new [dns] servers, start the module again on a DNS client that uses them; lines injected meanwhile are counted", async () => {
    const records = { ptr: { "81.113.0.203.in-addr.arpa": ["a.example"], "82.113.0.203.in-addr.arpa": ["b.example"] } };
    const [one, two] = await Promise.all([new TestDnsServer(records).start(), new TestDnsServer(records).start()]);
    try {
      const root = newRoot();
      const config = (dns: boolean, server: TestDnsServer) => `firewall = "dryrun"\n[dns]\nservers = ["${server.address}"]\n[modules.LG]\ndns = ${dns}\nmaxAffairs = 1\n`;
      const toml = join(root, "etc", "watcher.toml");
      writeFileSync(toml, config(false, one));
      expect(watcher(root, "start").code).toBe(0);
      await waitFor("the LG module to run", () => lgRunning(root));
      const line = (address: string) => `Nov 25 10:00:00 srv sshd[7]: Invalid user x from ${address} port 4`;
      const lgPid = () => readJson<ModuleStatus>(statusFile(join(root, "var", "run"), "LG"))?.pid;

      const first = lgPid();
      writeFileSync(toml, config(true, one));
      process.kill(master(root)!.pid, "SIGHUP");
      /* at once, while the module may be starting again: the line waits in the FIFO */
      expect(watcher(root, "inject", "LG", line("203.0.113.81")).code).toBe(0);
      await waitFor("the ban of the line injected during the restart", async () => (await banned(root)).includes("203.0.113.81"));
      await waitFor("LG started again", () => lgRunning(root) && lgPid() !== first);
      expect(watcher(root, "inject", "LG", line("203.0.113.82")).code).toBe(0);
      await waitFor("a lookup through the first server", () => one.queries.get("82.113.0.203.in-addr.arpa"));

      const second = lgPid();
      writeFileSync(toml, config(true, two));
      process.kill(master(root)!.pid, "SIGHUP");
      await waitFor("LG started again", () => lgRunning(root) && lgPid() !== second);
      expect(watcher(root, "inject", "LG", line("203.0.113.83")).code).toBe(0);
      await waitFor("a lookup through the second server", () => two.queries.get("83.113.0.203.in-addr.arpa"));
      expect(master(root)!.modules.LG!.restarts).toBe(0);
      expect(readFileSync(join(root, "var", "log", "watcher.log"), "utf8")).toContain("SIGHUP: dns changed, read only when the module starts");
      expect(watcher(root, "stop").code).toBe(0);
    } finally {
      one.stop();
      two.stop();
    }
  });

  test("SIGHUP: a line the logger writes while the module stops to start again (an action still in hand) is read by the next process", async () => {
    const root = newRoot();
    const config = (dns: boolean) => `firewall = "dryrun"\n[dns]\nservers = ["127.0.0.1:9"]\n[modules.LG]\ndns = ${dns}\nmaxAffairs = 1\n[[actions]]\nname = "slow"\ncommand = ["/bin/sleep", "3"]\n`;
    const toml = join(root, "etc", "watcher.toml");
    writeFileSync(toml, config(false));
    expect(watcher(root, "start").code).toBe(0);
    await waitFor("the LG module to run", () => lgRunning(root));
    const first = master(root)!.modules.LG!.pid!;
    const line = (address: string) => `Nov 25 10:00:00 srv sshd[7]: Invalid user x from ${address} port 4`;
    const log = () => readFileSync(join(root, "var", "log", "watcher.log"), "utf8");
    expect(watcher(root, "inject", "LG", line("203.0.113.84")).code).toBe(0);
    await waitFor("the ban whose action runs 3 s", async () => (await banned(root)).includes("203.0.113.84"));

    writeFileSync(toml, config(true));
    process.kill(master(root)!.pid, "SIGHUP");
    await waitFor("LG stopping", () => log().includes("stopping after the chunk in hand to be started again"));
    /* the old process waits for its action's run: its FIFO read must take nothing more */
    const fd = openSync(join(root, "var", "fifo", "WatchLG"), constants.O_WRONLY | constants.O_NONBLOCK);
    writeSync(fd, `${line("203.0.113.85")}\n`);
    closeSync(fd);
    expect(() => process.kill(first, 0)).not.toThrow();
    await waitFor("the ban of the line written while LG stopped", async () => (await banned(root)).includes("203.0.113.85"));
    expect(master(root)!.modules.LG!.pid).not.toBe(first);
    expect(watcher(root, "stop").code).toBe(0);
  });

  test("a module that reads a file has no FIFO held: inject refuses and keeps no line for later; once SIGHUP gives it its FIFO, inject reaches it", async () => {
    const root = newRoot();
    writeFileSync(join(root, "auth.log"), "");
    const fileSources = `sources = [{ type = "file", path = "${join(root, "auth.log")}" }]\n`;
    writeFileSync(join(root, "etc", "watcher.toml"), `firewall = "dryrun"\n[modules.LG]\ndns = false\nmaxAffairs = 1\n${fileSources}`);
    expect(watcher(root, "start").code).toBe(0);
    await waitFor("LG to open auth.log", () => readJson(positionFileFor(join(root, "var", "run"), "LG", join(root, "auth.log"))));
    const line = "Nov 25 10:00:00 srv sshd[7]: Invalid user x from 203.0.113.78 port 4";
    const refused = watcher(root, "inject", "LG", line);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('LG reads file (its sources in watcher.toml), not its FIFO: nothing would read these lines; use --direct, or add { type = "fifo" } to its sources');

    writeFileSync(join(root, "etc", "watcher.toml"), `firewall = "dryrun"\n[modules.LG]\ndns = false\nmaxAffairs = 1\n`);
    const first = master(root)!.modules.LG!.pid;
    process.kill(master(root)!.pid, "SIGHUP");
    await waitFor("LG started again on its FIFO", () => readJson<{ pid: number }>(statusFile(join(root, "var", "run"), "LG"))?.pid !== first && fifoHasReader(join(root, "var", "fifo", "WatchLG")));
    expect(watcher(root, "inject", "LG", line.replace("203.0.113.78", "203.0.113.79")).code).toBe(0);
    await waitFor("the ban of the line injected after SIGHUP", async () => (await banned(root)).includes("203.0.113.79"));
    /* the line refused before was never kept in a pipe to be read later */
    expect(await banned(root)).not.toContain("203.0.113.78");
    expect(watcher(root, "stop").code).toBe(0);
  });

  test("all four modules run, each with its own FIFO (but WB, which reads a file), database and firewall set; a web log file is followed", async () => {
    const root = newRoot();
    writeFileSync(join(root, "access.log"), "");
    writeFileSync(
      join(root, "etc", "watcher.toml"),
      `firewall = "dryrun"\n[modules.LG]\ndns = false\n[modules.MX]\nenabled = true\ndns = false\n[modules.MB]\nenabled = true\ndns = false\n` +
        `[modules.WB]\nenabled = true\nmaxAffairs = 1\nsources = [{ type = "file", path = "${join(root, "access.log")}", program = "nginx-access" }]\n`,
    );
    expect(watcher(root, "start").code).toBe(0);
    const status = JSON.parse(watcher(root, "status", "--json").out);
    expect(status.modules.map((m: { module: string }) => m.module)).toEqual(["LG", "MX", "MB", "WB"]);
    expect(status.firewall.map((f: { set: string }) => f.set)).toEqual(["watcher_white", "watcher_black", "watcher_LG", "watcher_MX", "watcher_MB", "watcher_WB"]);
    for (const m of ["LG", "MX", "MB"]) expect(statSync(join(root, "var", "fifo", `Watch${m}`)).isFIFO()).toBe(true);
    /* WB reads its file only: no FIFO that a logger could fill for nobody */
    expect(existsSync(join(root, "var", "fifo", "WatchWB"))).toBe(false);
    /* the file source starts at the end of the file: wait until it has opened it */
    await waitFor("WB to open the web log", () => readJson(positionFileFor(join(root, "var", "run"), "WB", join(root, "access.log"))));
    appendFileSync(join(root, "access.log"), '203.0.113.199 - - [25/Nov/2026:10:00:01 +0000] "GET /.env HTTP/1.1" 404 196 "-" "-"\n');
    const fw = new DryRunFirewall(join(root, "var", "db", "firewall-dryrun.db"), join(root, "var", "log", "firewall-dryrun.log"));
    await waitFor("the web ban", async () => (await fw.list("watcher_WB")).length === 1);
    await fw.close();
    expect(watcher(root, "stop").code).toBe(0);
  });

  test("the FIFO is made with the configured mode; a bad rule file stops start before anything runs", () => {
    const root = newRoot({ "etc/watcher.toml": 'firewall = "dryrun"\nfifoMode = "0600"\n[modules.LG]\ndns = false\n' });
    expect(watcher(root, "start").code).toBe(0);
    expect(statSync(join(root, "var", "fifo", "WatchLG")).mode & 0o777).toBe(0o600);
    expect(watcher(root, "stop").code).toBe(0);

    const bad = newRoot({ "rules/LG/sshd.rule": 'programs = ["sshd"]\n[[rule]]\nname = "x"\n' });
    const r = watcher(bad, "start");
    expect(r.code).toBe(2);
    expect(r.err).toContain('sshd.rule: rule "x", field pattern');
    expect(watcher(bad, "status").code).toBe(3);
  });
});
