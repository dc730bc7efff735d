/**
 * A resident module under pressure, with real nftables in a network namespace: the disk under
 * its database fills up (a 1 MiB tmpfs mounted in the namespace's own mount namespace, filled
 * and emptied from outside through /proc/<pid>/root), and a flood written as fast as a pipe
 * takes it, whose bans keep the firewall busy: memory must stay bounded, because the module
 * reads the next chunk only when the last one is done.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUN, TestNet } from "../helpers/netns";
import { timeoutForHangsOnly, waitFor } from "../helpers/wait";
import { WATCHER } from "../helpers/root";

timeoutForHangsOnly();

let net: TestNet;
beforeAll(() => {
  net = new TestNet().setup();
});
afterAll(() => net.cleanup());

function newRoot(): string {
  const root = mkdtempSync(join(tmpdir(), "watcher-storage-"));
  mkdirSync(join(root, "etc"));
  mkdirSync(join(root, "db"));
  writeFileSync(join(root, "etc", "watcher.toml"), `firewall = "nftables"\ndbDir = "${join(root, "db")}"\n[modules.LG]\ndns = false\n`);
  return root;
}

/** `watcher module LG --stdin` in the server namespace, after `setup` (a shell line) ran there. */
function startModule(root: string, setup = "true") {
  const p = Bun.spawn(["ip", "netns", "exec", net.server, "sh", "-c", `${setup} && exec "$0" --root "$1" module LG --stdin`, WATCHER, root], {
    stdin: "pipe",
    stdout: "ignore",
    stderr: "pipe",
    env: { ...process.env, WATCHER_ROOT: "" },
  });
  let log = "";
  void (async () => {
    for await (const chunk of p.stderr) log += new TextDecoder().decode(chunk);
  })();
  return { p, log: () => log };
}

const inKernel = (address: string) => net.exec(net.server, ["nft", "list", "set", "inet", "watcher", address.includes(":") ? "watcher_LG_v6" : "watcher_LG_v4"]).out.includes(address);

let sshdPid = 1000;
const failed = (address: string, n = 5) =>
  Array.from({ length: n }, (_, i) => `Nov 25 09:49:39 srv sshd-session[${sshdPid++}]: Failed password for root from ${address} port ${40000 + i} ssh2\n`).join("");

describe("storage and memory under pressure", () => {
  test("the database's disk fills up: a clear error, bans go on from memory, and all is written once there is room", async () => {
    const root = newRoot();
    const db = join(root, "db");
    const { p, log } = startModule(root, `mount -t tmpfs -o size=1m tmpfs "${db}"`);
    const send = async (text: string) => {
      p.stdin.write(text);
      await p.stdin.flush();
    };
    /* the module's view of its database folder: the tmpfs exists only in its mount namespace */
    const seen = `/proc/${p.pid}/root${db}`;

    await send(failed("203.0.113.11"));
    await waitFor("the first ban", () => inKernel("203.0.113.11"));

    const filler = openSync(join(seen, "filler"), "w");
    const block = Buffer.alloc(16384, 1);
    try {
      for (;;) writeSync(filler, block);
    } catch (e) {
      expect((e as NodeJS.ErrnoException).code).toBe("ENOSPC");
    } finally {
      closeSync(filler);
    }

    await send(failed("203.0.113.12"));
    await waitFor("a ban with the disk full", () => inKernel("203.0.113.12"));
    await waitFor("the error in the log", () => /database .*LG\.db: .*full.*; counting and banning from memory/.test(log()));
    expect(p.exitCode).toBeNull();
    await waitFor("the status file to show the pending writes", () => {
      const s = JSON.parse(readFileSync(join(root, "var", "run", "LG.json"), "utf8"));
      return s.pending.error !== null && s.pending.hosts >= 1;
    });

    rmSync(join(seen, "filler"));
    await send(failed("203.0.113.13"));
    await waitFor("the database written again", () => log().includes("written again"));
    await waitFor("the third ban", () => inKernel("203.0.113.13"));

    /* read it where it lives: in the module's mount namespace */
    const read = `const { Database } = require("bun:sqlite"); const d = new Database(${JSON.stringify(join(db, "LG.db"))});
      console.log(JSON.stringify({ check: d.query("PRAGMA integrity_check").get().integrity_check,
        banned: d.query("SELECT address FROM hosts WHERE banned_until > 0 ORDER BY address").all().map((r) => r.address),
        bans: d.query("SELECT count(*) AS n FROM events WHERE kind = 'ban'").get().n }));`;
    const r = Bun.spawnSync(["nsenter", "-t", String(p.pid), "-m", "--", BUN, "-e", read], { stdout: "pipe", stderr: "pipe" });
    expect(JSON.parse(r.stdout.toString())).toEqual({ check: "ok", banned: ["203.0.113.11", "203.0.113.12", "203.0.113.13"], bans: 3 });

    p.stdin.end();
    expect(await p.exited).toBe(0);
    rmSync(root, { recursive: true, force: true });
  });

  test("a flood written as fast as a pipe takes it, 50,000 bans for the firewall: the module's memory stays bounded", async () => {
    const root = newRoot();
    /* 1M lines, about 100 MB: 50,000 attackers' 5 failed logins each among 750,000 lines no rule counts */
    const corpus = join(root, "flood.log");
    const out = openSync(corpus, "w");
    for (let a = 0; a < 50_000; a += 1000) {
      let chunk = "";
      for (let i = a; i < a + 1000; i++) {
        chunk += failed(`2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::1`);
        for (let k = 0; k < 15; k++) chunk += `Nov 25 09:49:40 srv CRON[${sshdPid++}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)\n`;
      }
      writeSync(out, chunk);
    }
    closeSync(out);
    const pipe = join(root, "flood.fifo");
    expect(Bun.spawnSync(["mkfifo", pipe]).exitCode).toBe(0);
    /* the module reads a FIFO that `cat` fills as fast as the kernel lets it */
    const { p } = startModule(root, `exec < "${pipe}"`);
    const writer = Bun.spawn(["sh", "-c", 'cat "$0" > "$1"', corpus, pipe], { stdout: "ignore", stderr: "ignore" });
    let peakKiB = 0;
    const sampler = setInterval(() => {
      try {
        const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p.pid}/status`, "utf8"));
        if (rss) peakKiB = Math.max(peakKiB, Number(rss[1]));
      } catch {
        /* exited */
      }
    }, 20);
    expect(await writer.exited).toBe(0);
    expect(await p.exited).toBe(0);
    clearInterval(sampler);
    const count = net.exec(net.server, ["sh", "-c", "nft -j list set inet watcher watcher_LG_v6 | grep -o '2001:db8:[0-9a-f:]*' | sort -u | wc -l"]).out.trim();
    expect(Number(count)).toBe(50_000);
    /* a module that queued what it could not process yet would hold most of the 100 MB */
    expect(peakKiB).toBeGreaterThan(0);
    console.log(`flood: peak RSS ${(peakKiB / 1024).toFixed(0)} MiB`);
    expect(peakKiB).toBeLessThan(200 * 1024);
    rmSync(root, { recursive: true, force: true });
  });
});
