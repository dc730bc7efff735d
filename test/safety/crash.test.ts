/**
 * Safety: what a crash, a busy database and a forged date do to bans (issue 15, items 1, 7, 11).
 * A real `dist/watcher module LG --stdin` is killed with SIGKILL in the middle of a flood:
 * every ban it announced must be in its database and in the (dry-run) firewall, and a module
 * that starts again puts recorded bans back that the firewall lost. Processes are ended by PID.
 */
import { Database } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { DryRunFirewall } from "../../src/core/firewall/dryrun";
import { ModuleStore } from "../../src/store/module-db";
import { Lists } from "../../src/core/lists";
import { CidrSet } from "../../src/core/ip";
import { ModuleRuntime } from "../../src/pipeline/run";
import { loadConfig } from "../../src/core/config";
import { loadRules } from "../../src/modules/registry";
import { makeRoot, WATCHER, watcher } from "../helpers/root";
import { waitFor } from "../helpers/wait";

const started: Bun.Subprocess[] = [];
afterAll(() => {
  for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
});

const CONFIG = 'firewall = "dryrun"\n[modules.LG]\ndns = false\nmaxAffairs = 1\n';

/** One failed login a line, each from a new IPv6 documentation address: every line is a ban. */
function floodLines(from: number, count: number, time = "Dec  6 10:00:00"): string {
  let text = "";
  for (let i = from; i < from + count; i++) text += `${time} host sshd[${1000 + (i % 5000)}]: Invalid user u${i} from 2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::9 port 4000\n`;
  return text;
}

function dryRun(root: string): DryRunFirewall {
  return new DryRunFirewall(join(root, "var", "db", "firewall-dryrun.db"), join(root, "var", "log", "firewall-dryrun.log"));
}

function bannedInDb(root: string): Set<string> {
  const db = new Database(join(root, "var", "db", "LG.db"), { readonly: true });
  try {
    return new Set(db.query<{ address: string }, []>("SELECT address FROM hosts WHERE banned_until > 0").all().map((r) => r.address));
  } finally {
    db.close();
  }
}

const announced = (stderr: string) => [...stderr.matchAll(/\bban (\S+) for \d+s/g)].map((m) => m[1]!);

describe("a crash", () => {
  test("loses no ban it announced: kill -9 in the middle of a flood", async () => {
    const root = makeRoot("crash", { "etc/watcher.toml": CONFIG });
    const p = Bun.spawn([WATCHER, "--root", root, "module", "LG", "--stdin"], { stdin: "pipe", stdout: "ignore", stderr: "pipe" });
    started.push(p);
    let stderr = "";
    const reading = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of p.stderr) stderr += decoder.decode(chunk, { stream: true });
    })();
    /* keep the pipe full; kill as soon as a few hundred bans were announced, mid-chunk */
    let sent = 0;
    const feeding = (async () => {
      while (p.exitCode === null && p.signalCode === null) {
        try {
          p.stdin.write(floodLines(sent, 2000));
          await p.stdin.flush();
        } catch {
          return;
        }
        sent += 2000;
        await Bun.sleep(0);
      }
    })();
    await waitFor("300 bans announced", () => announced(stderr).length >= 300, 120_000);
    p.kill("SIGKILL");
    await p.exited;
    await Promise.all([reading, feeding]);
    const bans = announced(stderr);
    expect(bans.length).toBeGreaterThanOrEqual(300);
    const inDb = bannedInDb(root);
    const fw = dryRun(root);
    const inFirewall = new Set((await fw.list("watcher_LG")).map((e) => e.address));
    await fw.close();
    expect(bans.filter((a) => !inDb.has(a))).toEqual([]);
    expect(bans.filter((a) => !inFirewall.has(a))).toEqual([]);
  }, 180_000);

  test("a module that starts again puts recorded bans back that the firewall lost", async () => {
    const root = makeRoot("reapply", { "etc/watcher.toml": CONFIG });
    const replay = Bun.spawnSync([WATCHER, "--root", root, "inject", "LG", "--direct"], { stdin: new TextEncoder().encode(floodLines(0, 3, new Date().toISOString().replace(/\.\d+Z$/, "+00:00"))) });
    expect(replay.exitCode).toBe(0);
    const recorded = [...bannedInDb(root)].sort();
    expect(recorded.length).toBe(3);
    /* the process died after the commit and before the kernel took the ban */
    const fw = dryRun(root);
    await fw.unban("watcher_LG", recorded);
    expect(await fw.list("watcher_LG")).toEqual([]);
    const p = Bun.spawn([WATCHER, "--root", root, "module", "LG", "--stdin"], { stdin: "pipe", stdout: "ignore", stderr: "pipe" });
    started.push(p);
    await waitFor("the bans back in the set", async () => (await fw.list("watcher_LG")).length === 3, 60_000);
    expect((await fw.list("watcher_LG")).map((e) => e.address).sort()).toEqual(recorded);
    await fw.close();
    p.stdin.end();
    expect(await p.exited).toBe(0);
  });
});

describe("a replayed line dated in the future", () => {
  test("counts as now: a line of 2099 neither kills the replay nor bans until 2099", () => {
    const root = makeRoot("future", { "etc/watcher.toml": CONFIG });
    const line = "2099-01-01T10:00:00+00:00 host sshd[7]: Invalid user a from 203.0.113.9 port 4000\n";
    const p = Bun.spawnSync([WATCHER, "--root", root, "inject", "LG", "--direct", "--json"], { stdin: new TextEncoder().encode(line) });
    expect(p.stderr.toString()).toBe("");
    expect(p.exitCode).toBe(0);
    const result = JSON.parse(p.stdout.toString());
    expect(result.bans.length).toBe(1);
    const now = Date.now() / 1000;
    expect(Date.parse(result.bans[0].until) / 1000).toBeLessThan(now + 2 * 3600);
    expect(watcher(root, "report").code).toBe(0);
  });
});

describe("a busy database", () => {
  test("a chunk's transaction holds the write lock from its start: another writer's commit cannot fail it", async () => {
    const root = makeRoot("busy", { "etc/watcher.toml": CONFIG });
    const { config, paths } = loadConfig(root);
    const path = join(paths.dbDir, "LG.db");
    const store = new ModuleStore(path);
    /* expire or `watcher ban` in another process: a second connection that writes */
    const other = new Database(path);
    other.exec("PRAGMA busy_timeout = 0");
    const fw = dryRun(root);
    const runtime = new ModuleRuntime({
      module: "LG",
      config: config.modules.LG,
      rules: loadRules("LG", paths.rulesDir, "normal"),
      store,
      firewall: fw,
      lists: new Lists(new CidrSet(), new CidrSet(), new CidrSet()),
      clock: () => Math.floor(Date.now() / 1000),
      useLineTime: false,
    });
    /* the other connection writes while the chunk is being counted (between its reads and its writes) */
    let otherWrote: boolean | null = null;
    const original = store.getHost.bind(store);
    store.getHost = (address: string) => {
      const host = original(address);
      if (otherWrote === null) {
        try {
          other.exec("INSERT INTO events (time, address, rule, kind, value) VALUES (1, '192.0.2.1', 'x', 'affair', 1)");
          otherWrote = true;
        } catch {
          otherWrote = false; /* it waits for the chunk's commit, as it should */
        }
      }
      return host;
    };
    await runtime.processBlock(floodLines(0, 2));
    expect(otherWrote as boolean | null).toBe(false);
    expect(runtime.pending.hosts).toBe(0);
    expect(store.getHost("2001:db8:0:1::9")?.bannedUntil).toBeGreaterThan(0);
    other.close();
    store.close();
    await fw.close();
  });
});
