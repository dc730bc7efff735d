/**
 * Actions on ban through the built binary: a real master, its LG module fed lines through the
 * FIFO, and real programs (small shell scripts) as actions: one that records its stdin, run on
 * a ban and on the ban's end; a flood batched into few runs; one that hangs (killed at its
 * timeout, with what it started, while the module keeps banning); one that fails (logged).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DryRunFirewall } from "../../src/core/firewall/dryrun";
import type { ActionDecision } from "../../src/ops/actions";
import { isAlive } from "../../src/core/runfiles";
import { makeRoot, watcher } from "../helpers/root";
import { timeoutForHangsOnly, waitFor } from "../helpers/wait";

timeoutForHangsOnly();

const roots: string[] = [];
afterEach(() => {
  for (const root of roots.splice(0)) watcher(root, "stop");
});

/** A root whose scripts (name → body) are executable, with this [modules.LG] and [[actions]] TOML. */
function newRoot(scripts: Record<string, string>, toml: (root: string) => string): string {
  const root = makeRoot("actions", Object.fromEntries(Object.entries(scripts).map(([name, body]) => [name, `#!/bin/sh\n${body}\n`])));
  roots.push(root);
  for (const name of Object.keys(scripts)) chmodSync(join(root, name), 0o755);
  writeFileSync(join(root, "etc", "watcher.toml"), `firewall = "dryrun"\n[modules.LG]\ndns = false\nmaxAffairs = 1\n${toml(root)}`);
  return root;
}

const failed = (n: number, address: string) => `Dec  6 06:00:01 web1 sshd[${1000 + n}]: Failed password for root from ${address} port ${40000 + n} ssh2`;

const log = (root: string) => readFileSync(join(root, "var", "log", "watcher.log"), "utf8");

async function banned(root: string): Promise<string[]> {
  const fw = new DryRunFirewall(join(root, "var", "db", "firewall-dryrun.db"), join(root, "var", "log", "firewall-dryrun.log"));
  try {
    return (await fw.list("watcher_LG")).map((e) => e.address).sort();
  } finally {
    await fw.close();
  }
}

/** What the recording script got: one file per run, each the JSON it read on stdin. */
function runs(root: string): unknown[] {
  const dir = join(root, "got");
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")) as unknown);
}

/* each run's stdin into its own file, named by time and pid so that runs sort in order, whole when it appears */
const RECORD = 'got="$(dirname "$0")/got/$(date +%s%N).$$"\nmkdir -p "$(dirname "$got")"\ncat > "$got.part"\nmv "$got.part" "$got.json"';

describe("actions on ban", () => {
  test("a ban and its end run the program with the decision as JSON on stdin", async () => {
    const root = newRoot({ "record.sh": RECORD }, (r) => `banTime = 2\nmaxBanTime = 2\n[[actions]]\nname = "record"\ncommand = ["${join(r, "record.sh")}"]\non = ["ban", "unban"]\n`);
    expect(watcher(root, "start").code).toBe(0);
    expect(watcher(root, "inject", "LG", failed(1, "203.0.113.21")).code).toBe(0);
    const got = (await waitFor("the ban and its end", () => (runs(root).length === 2 ? runs(root) : null))) as ActionDecision[];
    expect(got[0]).toMatchObject({ event: "ban", module: "LG", address: "203.0.113.21", seconds: 2, rule: "failed-auth", reason: "1 affairs within 1h, last by rule failed-auth" });
    expect(got[0]!.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(Date.parse(got[0]!.until!) - Date.parse(got[0]!.time)).toBe(2000);
    expect(got[1]).toMatchObject({ event: "unban", module: "LG", address: "203.0.113.21", until: null, seconds: null, rule: "failed-auth", reason: "ban time over" });
    /* the module's status file, which the metrics read, is written every 2 s */
    await waitFor("the metrics", () => {
      const metrics = watcher(root, "metrics").out;
      return metrics.includes('watcher_action_runs_total{module="LG",action="record",outcome="ok"} 2') && metrics.includes('watcher_unbans_total{module="LG",how="expired"} 1');
    });
  });

  test("a ban lifted by watcher unban ends as lifted, said at once though its hour is far from over", async () => {
    const root = newRoot({ "record.sh": RECORD }, (r) => `banTime = "1h"\n[[actions]]\nname = "record"\ncommand = ["${join(r, "record.sh")}"]\non = ["unban"]\n`);
    expect(watcher(root, "start").code).toBe(0);
    expect(watcher(root, "inject", "LG", failed(1, "203.0.113.22")).code).toBe(0);
    await waitFor("the ban", async () => (await banned(root)).length === 1);
    expect(watcher(root, "unban", "LG", "203.0.113.22").code).toBe(0);
    const got = (await waitFor("the unban", () => (runs(root).length === 1 ? runs(root) : null))) as ActionDecision[];
    expect(got[0]).toMatchObject({ event: "unban", address: "203.0.113.22", reason: "lifted before its time was over (watcher unban, expire or the fleet)" });
    await waitFor("the metrics", () => watcher(root, "metrics").out.includes('watcher_unbans_total{module="LG",how="lifted"} 1'));
  });

  test("a flood's decisions go to the program in few runs, as JSON lists", async () => {
    /* the first run takes a moment, so the rest of the flood waits and goes together */
    const root = newRoot({ "record.sh": `sleep 0.5\n${RECORD}` }, (r) => `[[actions]]\nname = "record"\ncommand = ["${join(r, "record.sh")}"]\nconcurrency = 1\nbatch = 100\n`);
    expect(watcher(root, "start").code).toBe(0);
    const addresses = Array.from({ length: 40 }, (_, i) => `198.51.100.${i + 1}`);
    expect(watcher(root, "inject", "LG", ...addresses.map((a, i) => failed(i, a))).code).toBe(0);
    const got = await waitFor("every ban handed over", () => {
      const lists = runs(root) as ActionDecision[][];
      return lists.flat().length === addresses.length ? lists : null;
    });
    expect(got.every((list) => Array.isArray(list))).toBe(true);
    expect(got.length).toBeLessThan(addresses.length);
    expect(got.flat().map((d) => d.address).sort()).toEqual([...addresses].sort());
  });

  test("a program that hangs does not stop the bans; at its timeout it is killed with what it started", async () => {
    const hang = 'sleep 1000 &\necho $! >> "$(dirname "$0")/sleeping"\nwait';
    const root = newRoot({ "hang.sh": hang }, (r) => `[[actions]]\nname = "hang"\ncommand = ["${join(r, "hang.sh")}"]\nconcurrency = 1\ntimeout = 30\n`);
    expect(watcher(root, "start").code).toBe(0);
    expect(watcher(root, "inject", "LG", failed(1, "203.0.113.31")).code).toBe(0);
    const sleeping = join(root, "sleeping");
    const first = await waitFor("the action to hang", () => existsSync(sleeping) && Number(readFileSync(sleeping, "utf8").trim()));
    /* the one run allowed hangs: the next bans still reach the firewall */
    expect(watcher(root, "inject", "LG", failed(2, "203.0.113.32"), failed(3, "203.0.113.33")).code).toBe(0);
    await waitFor("the next bans", async () => (await banned(root)).length === 3);
    expect(isAlive(first)).toBe(true);
    expect(log(root)).toContain("ban 203.0.113.33 for 3600s");
    /* stopping: the run in hand gets a grace, then its process group is killed */
    expect(watcher(root, "stop").code).toBe(0);
    expect(isAlive(first)).toBe(false);

    const quick = newRoot({ "hang.sh": hang }, (r) => `[[actions]]\nname = "hang"\ncommand = ["${join(r, "hang.sh")}"]\ntimeout = 1\n`);
    expect(watcher(quick, "start").code).toBe(0);
    expect(watcher(quick, "inject", "LG", failed(1, "203.0.113.41")).code).toBe(0);
    await waitFor("the timeout", () => log(quick).includes(`action hang: ${join(quick, "hang.sh")} took longer than 1s for the ban of 203.0.113.41: killed`));
    const started = Number(readFileSync(join(quick, "sleeping"), "utf8").trim());
    await waitFor("what it started to be gone", () => !isAlive(started));
    /* the action runs again on the next ban */
    expect(watcher(quick, "inject", "LG", failed(2, "203.0.113.42")).code).toBe(0);
    await waitFor("a second run", () => readFileSync(join(quick, "sleeping"), "utf8").trim().split("\n").length === 2);
    /* the second run times out too, a second later: on a loaded machine the metrics may already count it */
    const timeouts = /watcher_action_runs_total\{module="LG",action="hang",outcome="timeout"\} (\d+)/;
    await waitFor("the metrics", () => Number(timeouts.exec(watcher(quick, "metrics").out)?.[1] ?? 0) >= 1);
  });

  test("a program that fails is logged with what it said, and the bans go on", async () => {
    const root = newRoot({ "fail.sh": 'echo "smtp: connection refused" >&2\nexit 3' }, (r) => `[[actions]]\nname = "mail"\ncommand = ["${join(r, "fail.sh")}", "root@example.org"]\n`);
    expect(watcher(root, "start").code).toBe(0);
    expect(watcher(root, "inject", "LG", failed(1, "203.0.113.51")).code).toBe(0);
    await waitFor("the failure in the log", () => log(root).includes(`action mail: ${join(root, "fail.sh")} exited with status 3 for the ban of 203.0.113.51: smtp: connection refused`));
    expect(await banned(root)).toEqual(["203.0.113.51"]);
    await waitFor("the metrics", () => watcher(root, "metrics").out.includes('watcher_action_runs_total{module="LG",action="mail",outcome="failed"} 1'));
  });

  test("a command that is not an absolute path, not there or not executable, or two actions of one name, stop the start (exit 2)", () => {
    const relative = newRoot({}, () => '[[actions]]\nname = "mail"\ncommand = ["ban-mail"]\n');
    const r = watcher(relative, "start");
    expect(r.code).toBe(2);
    expect(r.err).toContain("actions.0.command: expected the program as an absolute path");
    const missing = newRoot({ "mail.sh": "exit 0" }, (r) => `[[actions]]\nname = "mail"\ncommand = ["${join(r, "nowhere.sh")}"]\n[[actions]]\nname = "chat"\ncommand = ["${join(r, "mail.sh")}"]\n`);
    chmodSync(join(missing, "mail.sh"), 0o644);
    const m = watcher(missing, "start");
    expect(m.code).toBe(2);
    expect(m.err).toContain(`watcher.toml: actions.0.command: ${join(missing, "nowhere.sh")}: no such file (action "mail")`);
    expect(m.err).toContain(`watcher.toml: actions.1.command: ${join(missing, "mail.sh")}: not executable (action "chat")`);
    const twice = newRoot({}, () => '[[actions]]\nname = "mail"\ncommand = ["/bin/true"]\n[[actions]]\nname = "mail"\ncommand = ["/bin/false"]\n');
    const t = watcher(twice, "start");
    expect(t.code).toBe(2);
    expect(t.err).toContain('actions.1.name: a second action named "mail"');
  });
});
