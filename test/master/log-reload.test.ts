/**
 * The master's everyday signals, through the built binary: watcher.log opened again after
 * logrotate renamed it (SIGUSR1, in the master and its modules), and the master's own settings
 * (schedules) reloaded by SIGHUP, a bad watcher.toml keeping the old ones and saying so.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readJson } from "../../src/core/runfiles";
import { statusFile } from "../../src/core/layout";
import type { ModuleStatus } from "../../src/modules/loop";
import type { MasterStatus } from "../../src/master/control";
import { makeRoot, SAFE_CONFIG, WATCHER, watcher } from "../helpers/root";
import { timeoutForHangsOnly, waitFor } from "../helpers/wait";

timeoutForHangsOnly();

const roots: string[] = [];
afterEach(() => {
  for (const root of roots.splice(0)) watcher(root, "stop");
});

const runDir = (root: string) => join(root, "var", "run");
const master = (root: string) => readJson<MasterStatus>(statusFile(runDir(root), "master"));
/** The LG module wrote its status: it listens for the master's signals by then. */
const lgRunning = (root: string) => {
  const pid = master(root)?.modules.LG?.pid;
  return pid !== undefined && readJson<ModuleStatus>(statusFile(runDir(root), "LG"))?.pid === pid;
};
const read = (path: string) => (existsSync(path) ? readFileSync(path, "utf8") : "");

describe("watcher.log and logrotate", () => {
  test("renamed, then SIGUSR1: the master and its module write a new file", async () => {
    const root = makeRoot("logrotate");
    roots.push(root);
    expect(watcher(root, "start").code).toBe(0);
    await waitFor("the LG module to run", () => lgRunning(root));
    const log = join(root, "var", "log", "watcher.log");
    const rotated = `${log}.1`;
    renameSync(log, rotated);
    process.kill(master(root)!.pid, "SIGUSR1");
    await waitFor("the master's line in a new watcher.log", () => read(log).includes(`watcher: SIGUSR1: ${log} opened again`));
    await waitFor("the module's line in it", () => read(log).includes(`watcher module LG: SIGUSR1: ${log} opened again`));
    expect(watcher(root, "stop").code).toBe(0);
    expect(read(log)).toContain("watcher: stopped");
    expect(read(rotated)).toContain("watcher: running: LG");
    expect(read(rotated)).not.toContain("opened again");
    expect(read(rotated)).not.toContain("stopped");
  });
});

describe("SIGUSR1 under systemd", () => {
  test("a master logging to stderr (not watcher.log) and its module live on through SIGUSR1", async () => {
    const root = makeRoot("usr1-foreground");
    roots.push(root);
    const foreground = Bun.spawn([WATCHER, "--root", root, "start", "--foreground"], { stdout: "pipe", stderr: "pipe" });
    try {
      await waitFor("the LG module to run", () => lgRunning(root));
      const module = readJson<ModuleStatus>(statusFile(runDir(root), "LG"))!.pid;
      foreground.kill("SIGUSR1");
      expect(watcher(root, "status").code).toBe(0); /* one round trip later: still running */
      /* the module it forwarded the signal to is the one that ran before: never restarted */
      await waitFor("the module's next status write", () => (readJson<ModuleStatus>(statusFile(runDir(root), "LG"))?.updatedAt ?? 0) >= Math.floor(Date.now() / 1000));
      expect(master(root)!.modules.LG).toMatchObject({ pid: module, restarts: 0 });
      expect(watcher(root, "stop").code).toBe(0);
      expect(await foreground.exited).toBe(0);
      expect(existsSync(join(root, "var", "log", "watcher.log"))).toBe(false);
    } finally {
      foreground.kill("SIGKILL");
    }
  });
});

describe("SIGHUP and the master's own settings", () => {
  test("a new expire schedule is taken; a bad one keeps the one in force and says why", async () => {
    const root = makeRoot("reload-settings");
    roots.push(root);
    const toml = join(root, "etc", "watcher.toml");
    const log = join(root, "var", "log", "watcher.log");
    expect(watcher(root, "start").code).toBe(0);
    await waitFor("the LG module to run", () => lgRunning(root));
    const expireJob = () => master(root)?.jobs.find((j) => j.name === "expire")?.schedule;
    expect(expireJob()).toBe("17 * * * *");

    writeFileSync(toml, `${SAFE_CONFIG}[schedule]\nexpire = "15 4 * * *"\n`);
    process.kill(master(root)!.pid, "SIGHUP");
    await waitFor("the new schedule in force", () => expireJob() === "15 4 * * *");
    const next = new Date(master(root)!.jobs.find((j) => j.name === "expire")!.next!);
    expect([next.getHours(), next.getMinutes()]).toEqual([4, 15]); /* cron's local time */
    await waitFor("the reload said", () => read(log).includes(`SIGHUP: the master's settings reloaded: expire "15 4 * * *"`));

    writeFileSync(toml, `${SAFE_CONFIG}[schedule]\nexpire = "at four"\n`);
    process.kill(master(root)!.pid, "SIGHUP");
    const kept = await waitFor("the refusal said", () => read(log).split("\n").find((l) => l.includes("SIGHUP: kept the master's settings in force")) ?? null);
    expect(kept).toContain(toml);
    expect(kept).toContain("schedule.expire");
    expect(expireJob()).toBe("15 4 * * *");
    expect(watcher(root, "stop").code).toBe(0);
  });
});

