/**
 * Safety: storage trouble (issue 15, item 8). Commands that only look work on a root mounted
 * read-only; a rule path that is a folder, or a database folder that cannot be made, is a clear
 * error without a stack trace; a module whose disk is full holds a bounded amount in memory and
 * does not slow to a crawl. Read-only and full filesystems are real mounts in a mount namespace
 * of their own (unshare -m), so nothing outside the test sees them.
 */
import { describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeRoot, WATCHER, watcher } from "../helpers/root";

const CONFIG = 'firewall = "dryrun"\n[modules.LG]\ndns = false\n';

/** Run a shell script in a mount namespace of its own; $W is the binary. */
function inMountNamespace(script: string) {
  const p = Bun.spawnSync(["unshare", "-m", "sh", "-ec", script], { stdout: "pipe", stderr: "pipe", env: { ...process.env, W: WATCHER, WATCHER_ROOT: "" } });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

const NO_STACK = /^\s+at /m;

describe("a read-only root", () => {
  test("report, stat, expire --dry-run and status work; nothing is written", () => {
    const root = makeRoot("readonly", { "etc/watcher.toml": CONFIG });
    const line = `${new Date().toISOString().replace(/\.\d+Z$/, "+00:00")} host sshd[7]: Invalid user a from 203.0.113.9 port 4000\n`;
    expect(Bun.spawnSync([WATCHER, "--root", root, "inject", "LG", "--direct"], { stdin: new TextEncoder().encode(line.repeat(5)) }).exitCode).toBe(0);
    const ro = `${root}-ro`;
    mkdirSync(ro);
    const r = inMountNamespace(`
      mount --bind "${root}" "${ro}" && mount -o remount,bind,ro "${ro}"
      for c in report stat "expire --dry-run" status; do
        echo "@@@ $c"; set +e; "$W" --root "${ro}" $c 2>&1; echo "exit $?"; set -e
      done`);
    expect(r.err).toBe("");
    expect(r.out).not.toMatch(NO_STACK);
    const sections = Object.fromEntries(r.out.split("@@@ ").slice(1).map((s) => [s.slice(0, s.indexOf("\n")), s]));
    expect(sections.report).toContain("203.0.113.9");
    expect(sections.report).toContain("exit 0");
    expect(sections.stat).toContain("LG,invalid-user");
    expect(sections.stat).toContain("exit 0");
    expect(sections["expire --dry-run"]).toContain("would forget 0 hosts");
    expect(sections["expire --dry-run"]).toContain("exit 0");
    expect(sections.status).toMatch(/exit 3/); /* not running: LSB */
  });
});

describe("files that are not what they should be", () => {
  test("report and stat of a root that does not exist: exit 2 saying how to make one, never zeros", () => {
    for (const command of ["report", "stat"]) {
      const r = watcher("/nonexistent/watcher-root", command);
      expect(r.code).toBe(2);
      expect(r.err).toContain("is not a watcher root");
      expect(r.out).toBe("");
    }
  });

  test("a rule file that is a folder: exit 2 naming it, no stack trace", () => {
    const root = makeRoot("ruledir", { "etc/watcher.toml": CONFIG });
    mkdirSync(join(root, "rules", "LG", "local.rule"), { recursive: true });
    const r = watcher(root, "rules", "test", "LG", "/dev/null");
    expect(r.code).toBe(2);
    expect(r.err).toContain(join(root, "rules", "LG", "local.rule"));
    expect(r.err).not.toMatch(NO_STACK);
  });

  test("a whitelist that is a folder: check exits 2 naming it, no stack trace", () => {
    const root = makeRoot("whitedir", { "etc/watcher.toml": CONFIG });
    mkdirSync(join(root, "etc", "whitelist"));
    const r = watcher(root, "check");
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${join(root, "etc", "whitelist")}: is a folder, not a file`);
    expect(r.err).not.toMatch(NO_STACK);
  });

  test("a dbDir that cannot be made: exit 1 naming it, no stack trace", () => {
    const root = makeRoot("dbdir", { "etc/watcher.toml": `${CONFIG}`.replace('firewall = "dryrun"', 'firewall = "dryrun"\ndbDir = "etc/watcher.toml/db"') });
    const p = Bun.spawnSync([WATCHER, "--root", root, "inject", "LG", "--direct"], { stdin: new TextEncoder().encode("Dec  6 10:00:00 host sshd[7]: Invalid user a from 203.0.113.9 port 4000\n"), stderr: "pipe" });
    const err = p.stderr.toString();
    expect(p.exitCode).toBe(1);
    expect(err).toContain(join(root, "etc", "watcher.toml", "db"));
    expect(err).not.toMatch(NO_STACK);
  });
});

/**
 * `module LG --stdin` (behind `wrap`, a command that runs it) in a mount namespace whose dbDir is a
 * 1 MiB tmpfs: a first failed login while there is room, until `ready` is in the module's log; then
 * the disk is filled and root/flood.log follows. Prints "module exit 0" when it exits so, then its log.
 */
function floodOnFullDisk(root: string, ready: string, wrap = "") {
  return inMountNamespace(`
      mount -t tmpfs -o size=1m tmpfs "${root}/db"
      mkfifo "${root}/in"
      ${wrap} "$W" --root "${root}" module LG --stdin < "${root}/in" 2> "${root}/module.log" &
      exec 3> "${root}/in"
      echo "Nov 25 09:49:39 srv sshd-session[1]: Failed password for root from 203.0.113.1 port 4000 ssh2" >&3
      while ! grep -q "${ready}" "${root}/module.log"; do sleep 0.05; done
      dd if=/dev/zero of="${root}/db/filler" bs=16k 2>/dev/null || true
      cat "${root}/flood.log" >&3
      exec 3>&-
      wait $! && echo "module exit 0"
      cat "${root}/module.log"`);
}

describe("a full log disk", () => {
  test("the master and its module go on banning; once there is room the log says how many lines it lost", () => {
    const root = makeRoot("logfull", { "etc/watcher.toml": CONFIG.replace("dns = false", "dns = false\nmaxAffairs = 1") });
    const fifo = join(root, "var", "fifo", "WatchLG");
    const failed = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `Nov 25 09:49:39 srv sshd-session[${1000 + from + i}]: Failed password for root from 198.51.100.${from + i} port 4000 ssh2\n`).join("");
    writeFileSync(join(root, "first.log"), failed(1, 101));
    writeFileSync(join(root, "later.log"), failed(101, 102));
    /* the bans in force, counted by the control every operator runs */
    const bans = `"$W" --root "${root}" bans --json | grep -c '"address"' || true`;
    const r = inMountNamespace(`
      mkdir -p "${root}/var/log"
      mount -t tmpfs -o size=256k tmpfs "${root}/var/log"
      "$W" --root "${root}" start > /dev/null
      dd if=/dev/zero of="${root}/var/log/filler" bs=4k 2>/dev/null || true
      cat "${root}/first.log" > "${fifo}"
      for i in $(seq 1 600); do [ "$(${bans})" -ge 100 ] && break; sleep 0.1; done
      echo "bans while full: $(${bans})"
      echo "restarts: $("$W" --root "${root}" status --json | grep -o '"restarts": *[0-9]*' | head -1)"
      rm "${root}/var/log/filler"
      cat "${root}/later.log" > "${fifo}"
      for i in $(seq 1 600); do [ "$(${bans})" -ge 101 ] && break; sleep 0.1; done
      echo "bans after: $(${bans})"
      "$W" --root "${root}" stop > /dev/null
      cat "${root}/var/log/watcher.log"`);
    expect(r.err).toBe("");
    expect(r.out).toContain("bans while full: 100\n");
    expect(r.out).toMatch(/restarts": *0/);
    expect(r.out).toContain("bans after: 101\n");
    expect(r.out).toMatch(/watcher module LG: \d+ log lines lost before this one \(.*(space|ENOSPC).*\)/);
    expect(r.out).toContain("ban 198.51.100.101 ");
  }, 300_000);
});

describe("a full disk", () => {
  test("the dry-run firewall on the full disk: each ban said as not recorded, the module goes on to the end of its input", () => {
    const root = makeRoot("diskfull-dryrun", { "etc/watcher.toml": CONFIG.replace('firewall = "dryrun"', `firewall = "dryrun"\ndbDir = "db"`).replace("dns = false", "dns = false\nmaxAffairs = 1") });
    mkdirSync(join(root, "db"));
    let flood = "";
    for (let i = 0; i < 2000; i++) flood += `Nov 25 09:49:39 srv sshd-session[${1000 + i}]: Failed password for root from 198.51.100.${i % 250} port ${4000 + i} ssh2\n`;
    writeFileSync(join(root, "flood.log"), flood);
    const r = floodOnFullDisk(root, "ban 203.0.113.1 ");
    expect(r.out).toContain("module exit 0");
    expect(r.out).toMatch(/the dry-run firewall could not record it: .*full/);
    expect(r.out).toMatch(/stopped: 2001 lines, 2001 matched/);
    expect(r.out).not.toMatch(NO_STACK);
  }, 300_000);

  test("200,000 new attackers while the database cannot be written: every host held, events bounded, no stack trace", () => {
    const root = makeRoot("diskfull", { "etc/watcher.toml": CONFIG.replace('firewall = "dryrun"', `firewall = "dryrun"\ndbDir = "db"`) });
    mkdirSync(join(root, "db"));
    let flood = "";
    for (let i = 0; i < 200_000; i++) flood += `Nov 25 09:49:39 srv sshd-session[${1000 + i}]: Failed password for root from 2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::1 port 4000 ssh2\n`;
    writeFileSync(join(root, "flood.log"), flood);
    /* the database is made while there is room; then the disk fills up and the flood comes */
    const r = floodOnFullDisk(root, "reading stdin", '/usr/bin/time -f "peak %M KiB"');
    expect(r.out).toMatch(/database .*LG\.db: database or disk is full; counting and banning from memory/);
    expect(r.out).not.toMatch(NO_STACK);
    /* 200,000 addresses, each in a /64 of its own: each with its prefix's counter (and the first
       line's host, when the disk filled before its chunk was written) */
    expect(r.out).toMatch(/exiting with 40000[01] hosts and 20000 events not written/);
    const peakKiB = Number(/peak (\d+) KiB/.exec(r.out)![1]);
    console.log(`disk full, 200k hosts held: peak RSS ${(peakKiB / 1024).toFixed(0)} MiB`);
    expect(peakKiB).toBeLessThan(800 * 1024);
  }, 300_000);
});
