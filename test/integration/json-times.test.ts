/**
 * Every time in every command's --json is in one form: ISO 8601 in UTC to the second
 * ("2026-12-06T08:00:00Z"), or null. Run through the built binary on a real state: a master in
 * fleet mode on a real Redis (dry-run firewall), bans, a replayed log, a blocklist served on
 * loopback, hosts old enough to expire.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TestRedis } from "../helpers/redis";
import { makeRoot, WATCHER } from "../helpers/root";
import { timeoutForHangsOnly, waitFor } from "../helpers/wait";

timeoutForHangsOnly();

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
/* the fields that hold a time, by name */
const TIME_KEY = /(At|^time|^until|^since|^next|^lastSeen|^lastFetch|^lastSuccess|^nextDue|^start)$/;
/* numbers as large as epoch seconds are durations only under these names */
const DURATION_KEY = /^(seconds|value|expireAfter|window|timeout|interval|lagMs)$/;

/** Every field of a JSON value that breaks the rule, as "path: value". */
function offences(value: unknown, path = ""): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => offences(v, `${path}[${i}]`));
  if (value === null || typeof value !== "object") return [];
  const found: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    const at = `${path}.${key}`;
    if (v !== null && typeof v === "object") found.push(...offences(v, at));
    else if (TIME_KEY.test(key) && typeof v === "number") found.push(`${at}: ${v} (a number)`);
    else if (typeof v === "number" && v > 1e9 && !DURATION_KEY.test(key)) found.push(`${at}: ${v} (epoch seconds?)`);
    else if (typeof v === "string" && /^\d{4}-\d\d-\d\d[T ][\d:.]+(Z|[+-]\d\d:?\d\d)?$/.test(v) && !ISO.test(v)) found.push(`${at}: ${v}`);
  }
  return found;
}

const KEY = "json-times-key-0123456789abcdef";
let redis: TestRedis;
let root: string;
const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("198.51.100.0/25\n") });

/** Asynchronous: the list server lives in this process and must be free to answer. */
async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const input = args[0] === "inject" ? Bun.file(args.pop()!) : "ignore";
  const p = Bun.spawn([WATCHER, "--root", root, ...args], { stdout: "pipe", stderr: "pipe", stdin: input });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

/** `watcher ARGS --json` (for inject, the last argument is the file read on stdin) */
async function json(...args: string[]): Promise<unknown> {
  const r = await run(...(args[0] === "inject" ? [...args.slice(0, -1), "--json", args.at(-1)!] : [...args, "--json"]));
  if (r.out.trim() === "") throw new Error(`${args.join(" ")}: no output (status ${r.code}): ${r.err}`);
  return JSON.parse(r.out);
}

beforeAll(async () => {
  redis = await new TestRedis().start();
  root = makeRoot("json-times", {
    "etc/watcher.toml":
      `firewall = "dryrun"\n[modules.LG]\ndns = false\n[fleet]\nurl = ${JSON.stringify(redis.url)}\nnode = "alpha"\n` +
      `[dynload.lists.own]\nenabled = true\nurls = ["http://127.0.0.1:${server.port}/own.txt"]\nformat = "spamhaus-txt"\ninterval = "1h"\n`,
    "etc/fleet.key": `${KEY}\n`,
    /* an old attack (expire forgets it) and a recent one (a ban with its story) */
    "old.log": Array.from({ length: 6 }, (_, i) => `2025-01-02T03:0${i}:00+00:00 host sshd[20${i}]: Failed password for root from 192.0.2.70 port 4000 ssh2\n`).join(""),
  });
  chmodSync(join(root, "etc", "fleet.key"), 0o600);
});

afterAll(async () => {
  await run("stop");
  server.stop(true);
  await redis.cleanup();
});

describe("times in --json", () => {
  test("every command, one form", async () => {
    expect((await run("start")).code).toBe(0);
    await waitFor("the node in the fleet", async () => ((await json("fleet", "status")) as { master: { connected: boolean } | null }).master?.connected === true);
    const now = new Date().toISOString().slice(0, 19);
    writeFileSync(join(root, "new.log"), Array.from({ length: 6 }, (_, i) => `${now}+00:00 host sshd[30${i}]: Failed password for root from 203.0.113.71 port 4000 ssh2\n`).join(""));
    const outputs: Record<string, unknown> = {
      ban: await json("ban", "LG", "203.0.113.70", "--time", "1h"),
      "ban forever": await json("ban", "LG", "203.0.113.72", "--time", "forever"),
      "inject --direct (old)": await json("inject", "LG", "--direct", join(root, "old.log")),
      "inject --direct (now)": await json("inject", "LG", "--direct", join(root, "new.log")),
      "rules test": await json("rules", "test", "LG", join(root, "new.log")),
      "dynload (loaded)": await json("dynload"),
      "dynload (not due)": await json("dynload", "own"),
      status: await json("status"),
      "fleet status": await json("fleet", "status"),
      bans: await json("bans"),
      why: await json("why", "203.0.113.71"),
      report: await json("report"),
      doctor: await json("doctor"),
      check: await json("check"),
      "expire --dry-run": await json("expire", "--dry-run"),
      unban: await json("unban", "203.0.113.70"),
    };
    /* the fields this test is about are there at all */
    expect(JSON.stringify(outputs["dynload (not due)"])).toContain('"next":"');
    expect(JSON.stringify(outputs["expire --dry-run"])).toContain('"lastSeen":"2025-01-02T03:05:00Z"');
    expect(JSON.stringify(outputs.status)).toContain('"lastLineAt":');
    expect(JSON.stringify(outputs["fleet status"])).toContain('"startedAt":"');
    expect((outputs["inject --direct (now)"] as { bans: { time: string }[] }).bans[0]!.time).toMatch(ISO);
    const bad = Object.entries(outputs).flatMap(([command, out]) => offences(out).map((o) => `${command} ${o}`));
    expect(bad).toEqual([]);
  });
});
