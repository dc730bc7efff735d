/**
 * Everyday habits through the built binary: every table fits in --width (wrapped, nothing
 * lost), --quiet silences a command whose output is per event, and long jobs show progress on
 * a terminal (a real pseudo-terminal, from script(1)) and nothing on a pipe.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeRoot, SAFE_CONFIG, WATCHER } from "../helpers/root";
import { timeoutForHangsOnly, waitFor } from "../helpers/wait";

timeoutForHangsOnly();

let root: string;
const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("198.51.100.0/25\n") });

/** Asynchronous: the list server lives in this process and must be free to answer. */
async function run(args: string[], stdin?: string): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn([WATCHER, "--root", root, ...args], { stdout: "pipe", stderr: "pipe", stdin: stdin ? Bun.file(stdin) : "ignore" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

/** The command on a pseudo-terminal (stdout and stderr both the terminal): what it showed. */
async function onTerminal(command: string): Promise<string> {
  const p = Bun.spawn(["script", "-qec", command, "/dev/null"], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [out, code] = await Promise.all([new Response(p.stdout).text(), p.exited]);
  expect(code).toBe(0);
  return out;
}

const ATTACK = (i: number, address: string) => `2026-12-06T07:00:${String(i % 60).padStart(2, "0")}+00:00 host sshd[${1000 + i}]: Failed password for root from ${address} port 4000 ssh2\n`;

beforeAll(async () => {
  root = makeRoot("habits", {
    "etc/watcher.toml": `${SAFE_CONFIG}[dynload.lists.own]\nenabled = true\nurls = ["http://127.0.0.1:${server.port}/own.txt"]\nformat = "spamhaus-txt"\n`,
    /* 20,000 lines, 200 attackers: each banned */
    "big.log": Array.from({ length: 20000 }, (_, i) => ATTACK(i, `203.0.113.${i % 200}`)).join(""),
    "old.log": Array.from({ length: 6 }, (_, i) => ATTACK(i, "192.0.2.70").replace("2026-12-06", "2025-01-02")).join(""),
  });
  expect((await run(["start"])).code).toBe(0);
});

afterAll(async () => {
  await run(["stop"]);
  server.stop(true);
});

describe("--width", () => {
  test("every table fits, and what it holds is all there", async () => {
    expect((await run(["ban", "LG", "2001:db8:dead:beef::1234", "--time", "1h"])).code).toBe(0);
    expect((await run(["inject", "LG", "--direct", "--quiet"], join(root, "old.log"))).code).toBe(0);
    await waitFor("the master's module", async () => JSON.parse((await run(["status", "--json"])).out).modules.length === 1);
    const commands = [["status"], ["bans"], ["why", "2001:db8:dead:beef::1234"], ["why", "192.0.2.70"], ["rules", "test", "LG", join(root, "old.log")], ["expire", "--dry-run"], ["report"]];
    for (const width of [40, 72]) {
      for (const args of commands) {
        const r = await run([...args, "--width", String(width)]);
        expect(r.code).toBe(0);
        const tables = r.out.split("\n").filter((l) => /^\s*[┌│├└]/.test(l));
        expect(tables.length).toBeGreaterThan(0);
        const over = tables.filter((l) => l.length > width);
        expect({ args, width, over }).toEqual({ args, width, over: [] });
      }
    }
    /* wrapped, not cut: the ban's reason reads whole once the cells are joined again */
    const narrow = (await run(["bans", "--width", "60"])).out;
    const joined = narrow.split("\n").map((l) => l.split("│").at(-2) ?? "").join("").replaceAll(" ", "");
    expect(joined).toContain("manual ban by uid 0 (root), for 1h as asked".replaceAll(" ", ""));
    /* on a pipe, without --width, a table is as wide as it is */
    expect((await run(["bans"])).out).toContain("│ 2001:db8:dead:beef::1234 │");
    expect(await run(["bans", "--width", "5"])).toMatchObject({ code: 2, err: expect.stringContaining("--width: expected a number of columns, 20 or more, got 5") });
  });
});

describe("--quiet and progress", () => {
  test("inject --direct: progress on a terminal, nothing on a pipe, nothing at all with --quiet", async () => {
    const big = join(root, "big.log");
    const shown = await onTerminal(`${WATCHER} --root ${root} inject LG --direct < ${big}`);
    expect(shown).toMatch(/\r\x1b\[Kinject LG: [\d.]+ MB of 2\.0 MB \(\d+ %\)/);
    expect(shown).toContain("(100 %)");
    expect(shown).toContain("LG: 20000 lines, 20000 matched");
    const piped = await run(["inject", "LG", "--direct"], big);
    expect(piped.err).toBe("");
    expect(piped.out).toContain("LG: 20000 lines");
    const quiet = await run(["inject", "LG", "--direct", "--quiet"], big);
    expect([quiet.code, quiet.out, quiet.err]).toEqual([0, "", ""]);
    expect(await onTerminal(`${WATCHER} --root ${root} inject LG --direct --quiet < ${big}`)).toBe("");
  });

  test("dynload: lists done on a terminal, nothing on a pipe", async () => {
    const shown = await onTerminal(`${WATCHER} --root ${root} dynload --force`);
    expect(shown).toContain("\r\x1b[Kdynload: 0 lists of 1 lists (0 %)");
    expect(shown).toContain("own: loaded 1 network ");
    expect(shown).toContain("dynload: 1 lists of 1 lists (100 %), own ");
    writeFileSync(join(root, "etc", "whitelist"), "");
    const piped = await run(["dynload", "own"]);
    expect(piped.err).toBe("");
    expect(piped.out).toContain("own: not due before");
  });

  test("start: the firewall restore on a terminal, nothing on a pipe", async () => {
    /* a blacklist of 120,000 addresses: a set that takes a while to go in */
    const big = makeRoot("habits-restore", {
      "etc/blacklist": Array.from({ length: 120000 }, (_, i) => `2001:db8::${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}\n`).join(""),
    });
    try {
      const shown = await onTerminal(`${WATCHER} --root ${big} start`);
      expect(shown).toMatch(/\r\x1b\[Krestoring the firewall: \d+ entries of 120000 entries \(\d+ %\), set \d of \d: watcher_/);
      expect(shown).toContain("\r\x1b[Kwatcher started (pid ");
      expect(Bun.spawnSync([WATCHER, "--root", big, "stop"]).exitCode).toBe(0);
      const piped = Bun.spawnSync([WATCHER, "--root", big, "start"], { stdout: "pipe", stderr: "pipe" });
      expect([piped.exitCode, piped.stderr.toString()]).toEqual([0, ""]);
      expect(piped.stdout.toString()).toContain("120000 firewall entries restored");
    } finally {
      Bun.spawnSync([WATCHER, "--root", big, "stop"]);
    }
  });
});

describe("a pipe closed early", () => {
  test("bans --json into `head -c 100`: exit 0, no stack trace", () => {
    const root = makeRoot("habits-epipe", { "etc/watcher.toml": `${SAFE_CONFIG}maxAffairs = 1\n` });
    const stamp = new Date().toISOString().replace(/\.\d+Z$/, "+00:00");
    let lines = "";
    for (let i = 1; i <= 3000; i++) lines += `${stamp} srv sshd[${i}]: Failed password for root from 2001:db8::${i.toString(16)} port 5555 ssh2\n`;
    writeFileSync(join(root, "flood.log"), lines);
    const sh = (script: string) => Bun.spawnSync(["bash", "-c", script], { stdout: "pipe", stderr: "pipe", env: { ...process.env, W: WATCHER, R: root, WATCHER_ROOT: "" } });
    expect(sh('"$W" --root "$R" inject LG --direct --quiet < "$R/flood.log"').exitCode).toBe(0);
    /* ~1 MB of JSON, far more than a pipe holds: head leaves, the writes after fail */
    const r = sh('"$W" --root "$R" bans --json | head -c 100 > /dev/null; echo "exit ${PIPESTATUS[0]}"');
    expect({ out: r.stdout.toString(), err: r.stderr.toString() }).toEqual({ out: "exit 0\n", err: "" });
  });
});
