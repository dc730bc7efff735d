/**
 * Safety: a restarted module runs on the configuration in force, not on a broken file that
 * was never reloaded (issue 15, item 2). A real master with the dry-run firewall; its module
 * is killed with SIGKILL after watcher.toml or a rule file was broken on disk.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { closeSync, constants, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { DryRunFirewall } from "../../src/core/firewall/dryrun";
import { readJson } from "../../src/core/runfiles";
import type { MasterStatus } from "../../src/master/control";
import { makeRoot, watcher } from "../helpers/root";
import { waitFor } from "../helpers/wait";
import { statusFile } from "../../src/core/layout";

const CONFIG = 'firewall = "dryrun"\n[modules.LG]\ndns = false\nmaxAffairs = 2\n';
const roots: string[] = [];
afterEach(() => {
  for (const root of roots.splice(0)) watcher(root, "stop");
});

const master = (root: string) => readJson<MasterStatus>(statusFile(join(root, "var", "run"), "master"));
const log = (root: string) => readFileSync(join(root, "var", "log", "watcher.log"), "utf8");

async function banned(root: string): Promise<string[]> {
  const fw = new DryRunFirewall(join(root, "var", "db", "firewall-dryrun.db"), join(root, "var", "log", "firewall-dryrun.log"));
  try {
    return (await fw.list("watcher_LG")).map((e) => e.address);
  } finally {
    await fw.close();
  }
}

/** Kill the running LG module and wait for its successor to read its FIFO. */
async function killModule(root: string): Promise<number> {
  const first = master(root)!.modules.LG!.pid!;
  process.kill(first, "SIGKILL");
  const next = await waitFor("a new LG module", () => {
    const m = master(root)?.modules.LG;
    return m?.pid && m.pid !== first ? m.pid : null;
  }, 60_000);
  await waitFor("the new module's status", () => readJson<{ pid: number }>(statusFile(join(root, "var", "run"), "LG"))?.pid === next, 60_000);
  return next;
}

describe.each([
  ["watcher.toml", "etc/watcher.toml", (text: string) => `${text}maxAffairs = "many"\n`, /etc\/watcher\.toml/],
  ["a rule file", "rules/LG/local.rule", () => 'programs = ["sshd"\n[[rule]]\n', /rules\/LG\/local\.rule/],
])("a broken %s on disk, never reloaded", (_what, file, breakIt, named) => {
  test("a module killed with SIGKILL comes back on the configuration in force, keeps banning, and status names the file", async () => {
    const root = makeRoot("inforce", { "etc/watcher.toml": CONFIG });
    roots.push(root);
    expect(watcher(root, "start").code).toBe(0);
    await waitFor("LG to write its status", () => readJson(statusFile(join(root, "var", "run"), "LG")), 60_000);
    let current = "";
    try {
      current = readFileSync(join(root, file), "utf8");
    } catch {
      /* a new file */
    }
    mkdirSync(dirname(join(root, file)), { recursive: true });
    writeFileSync(join(root, file), breakIt(current));
    await killModule(root);
    await killModule(root); /* and once more: it was not a lucky first restart */
    /* the logger writes on (`watcher inject` itself would read the broken file) */
    const lines = Array.from({ length: 2 }, (_, i) => `Dec  6 10:00:0${i} host sshd[${900 + i}]: Invalid user a from 203.0.113.77 port 4000\n`).join("");
    const fifo = openSync(join(root, "var", "fifo", "WatchLG"), constants.O_WRONLY | constants.O_NONBLOCK);
    writeSync(fifo, lines);
    closeSync(fifo);
    await waitFor("the ban", async () => (await banned(root)).includes("203.0.113.77"), 60_000);
    expect(master(root)!.modules.LG!.restarts).toBe(2);
    const status = watcher(root, "status");
    expect(status.code).toBe(0);
    expect(status.out + status.err).toMatch(named);
    expect(log(root)).toMatch(new RegExp(`${named.source}.*running on the configuration in force`));
  }, 180_000);
});

describe.each([
  ["watcher.toml is broken", (root: string) => writeFileSync(join(root, "etc", "watcher.toml"), CONFIG.replace("maxAffairs = 2", "maxAffairs = 0")), /watcher\.toml: modules\.LG\.maxAffairs: /],
  ["the whitelist has a bad line", (root: string) => writeFileSync(join(root, "etc", "whitelist"), "198.51.100.0/24\ngarbage line\n"), /whitelist:2: "garbage line"/],
  ["the whitelist is gone", (root: string) => rmSync(join(root, "etc", "whitelist")), /whitelist: not there, but the configuration in force/],
])("the controls while %s on disk", (_what, breakIt, named) => {
  test("ban, unban, bans and why act on the configuration in force, and say so; check still refuses", async () => {
    const root = makeRoot("inforce", { "etc/watcher.toml": CONFIG, "etc/whitelist": "198.51.100.0/24\n" });
    roots.push(root);
    expect(watcher(root, "start").code).toBe(0);
    await waitFor("LG to write its status", () => readJson(statusFile(join(root, "var", "run"), "LG")), 60_000);
    breakIt(root);
    const warned = /^warning: .*\n {2}\(acting on the configuration in force since .*, as the running watcher does, until this is fixed\)$/m;

    const ban = watcher(root, "ban", "LG", "203.0.113.61", "--time", "1h");
    expect(ban.code).toBe(0);
    expect(ban.err).toMatch(warned);
    expect(ban.err).toMatch(named);
    expect(await banned(root)).toContain("203.0.113.61");
    const bans = watcher(root, "bans", "--json");
    expect(bans.code).toBe(0);
    expect(JSON.parse(bans.out).map((b: { address: string }) => b.address)).toContain("203.0.113.61");
    expect(watcher(root, "why", "203.0.113.61").out).toContain("LG ban");
    /* the whitelist in force still protects */
    expect(watcher(root, "why", "198.51.100.9").out).toContain("whitelisted");
    expect(watcher(root, "ban", "LG", "198.51.100.9").code).toBe(2);
    const unban = watcher(root, "unban", "203.0.113.61");
    expect(unban.code).toBe(0);
    expect(unban.err).toMatch(warned);
    expect(unban.out).toContain("unbanned 203.0.113.61");
    expect(await banned(root)).not.toContain("203.0.113.61");
    expect(watcher(root, "doctor").err).toMatch(warned);
    expect(watcher(root, "check").code).toBe(2);
  }, 180_000);
});
