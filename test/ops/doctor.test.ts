/**
 * `watcher doctor` through the built binary on a real running master (issue 20, item 4): real
 * nftables in a network namespace the test makes, drift made by hand with nft and found, then
 * repaired by `doctor --fix`; lines seen in the FIFO; a stopped and a dead module; a second
 * root's `check` refused by the first root's firewall claim. Then a dry-run master in fleet mode:
 * real Redis reachable and not, a real name server on loopback and a port where none answers,
 * and a nearly full disk (a small tmpfs in a mount namespace of its own). Processes are ended by
 * PID, namespaces deleted.
 */
import { describe, expect, test } from "bun:test";
import { chmodSync, closeSync, constants, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { statusFile } from "../../src/core/layout";
import { readJson } from "../../src/core/runfiles";
import type { MasterStatus } from "../../src/master/control";
import type { DoctorReport } from "../../src/ops/doctor";
import { TestDnsServer } from "../helpers/dns-server";
import { TestNet } from "../helpers/netns";
import { freePort, TestRedis } from "../helpers/redis";
import { cleanedUpAfterAll, makeRoot, WATCHER, watcher } from "../helpers/root";
import { timeoutForHangsOnly, waitFor } from "../helpers/wait";

timeoutForHangsOnly();

const { roots, others: nets } = cleanedUpAfterAll();

function newRoot(files: Record<string, string>): string {
  const root = makeRoot("doctor", files);
  roots.push(root);
  return root;
}

const master = (root: string) => readJson<MasterStatus>(statusFile(join(root, "var", "run"), "master"));

/** The LG module's pid once the master runs it and it has written its status. */
async function modulePid(root: string): Promise<number> {
  return waitFor("the LG module running", () => {
    const pid = master(root)?.ready ? master(root)?.modules.LG?.pid : null;
    return pid && readJson<{ pid: number }>(statusFile(join(root, "var", "run"), "LG"))?.pid === pid ? pid : null;
  });
}

/** Without blocking this process: the DNS server the doctor asks runs in it. */
async function run(argv: string[]) {
  const p = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

function check(report: DoctorReport, name: string) {
  const c = report.checks.find((x) => x.check === name);
  if (!c) throw new Error(`no check ${name} in ${JSON.stringify(report.checks, null, 1)}`);
  return c;
}

describe("doctor on a master with nftables in a network namespace", () => {
  const net = new TestNet().setup();
  nets.push(net);
  const ns = net.server;
  const root = newRoot({ "etc/watcher.toml": 'firewall = "nftables"\n[modules.LG]\ndns = false\n' });
  const w = (...args: string[]) => run(["ip", "netns", "exec", ns, WATCHER, "--root", root, ...args]);
  const doctor = async (...args: string[]) => {
    const r = await w("doctor", "--json", ...args);
    return { code: r.code, report: JSON.parse(r.out) as DoctorReport };
  };
  const kernelSet = () => net.exec(ns, ["nft", "list", "set", "inet", "watcher", "watcher_LG_v4"]).out;

  test("a fresh master is healthy; the FIFO's lines are seen", async () => {
    expect((await w("start")).code).toBe(0);
    await modulePid(root);
    const d = await doctor();
    expect(d.report.checks.filter((c) => !c.ok)).toEqual([]);
    expect(d.code).toBe(0);
    expect(check(d.report, "master").message).toContain("nftables");
    expect(check(d.report, "drift watcher_LG").ok).toBe(true);
    expect(check(d.report, "set watcher_LG").ok).toBe(true);
    expect(d.report.checks.some((c) => c.check.startsWith("disk ") && c.ok)).toBe(true);

    /* no line yet: with --idle 0s, a finding as soon as a second has passed */
    const idle = await waitFor("doctor to miss the logger", async () => {
      const r = await doctor("--idle", "0s");
      return !check(r.report, "input LG").ok && r;
    });
    expect(idle.code).toBe(1);
    expect(check(idle.report, "input LG").message).toMatch(/^no line since the module started .* from .*\/var\/fifo\/WatchLG: is the logger writing to it\?/);

    /* a line through the FIFO, as the logger writes one */
    const fd = openSync(join(root, "var", "fifo", "WatchLG"), constants.O_WRONLY | constants.O_NONBLOCK);
    writeSync(fd, "Dec  6 06:00:00 host sshd[123]: Server listening on 0.0.0.0 port 22.\n");
    closeSync(fd);
    const fed = await waitFor("doctor to see the line", async () => {
      const r = await doctor();
      return check(r.report, "input LG").message.includes("last line") && r;
    });
    expect(check(fed.report, "input LG").ok).toBe(true);
    expect(check(fed.report, "module LG").message).toContain("1 line,");
  });

  test("drift made by hand with nft is found, and doctor --fix repairs it", async () => {
    expect((await w("ban", "LG", "203.0.113.5")).code).toBe(0);
    expect((await doctor()).code).toBe(0);
    /* a recorded ban taken out of the kernel, and an address no database knows put in */
    expect(net.exec(ns, ["nft", "delete", "element", "inet", "watcher", "watcher_LG_v4", "{ 203.0.113.5 }"]).code).toBe(0);
    expect(net.exec(ns, ["nft", "add", "element", "inet", "watcher", "watcher_LG_v4", "{ 203.0.113.9 timeout 1h }"]).code).toBe(0);

    const text = await w("doctor");
    expect(text.code).toBe(1);
    expect(text.out).toContain(
      'FINDING  drift watcher_LG: 1 recorded ban missing from the kernel (203.0.113.5); 1 address in the kernel that no database knows (203.0.113.9): "watcher doctor --fix" repairs it',
    );
    expect(text.out).toContain("watcher doctor: 1 finding in");

    const fixed = await w("doctor", "--fix");
    expect(fixed.out).toContain("fixed    watcher_LG: put back 1 ban, removed 1 unknown address");
    expect(fixed.out).toContain("ok       drift watcher_LG: the kernel holds what the database records");
    expect(fixed.code).toBe(0);
    expect(kernelSet()).toContain("203.0.113.5");
    expect(kernelSet()).not.toContain("203.0.113.9");
    expect((await doctor()).code).toBe(0);
  });

  test("a recorded ban of an address whitelisted since is drift too; --fix lifts it", async () => {
    expect((await w("ban", "LG", "203.0.113.6")).code).toBe(0);
    await Bun.write(join(root, "etc", "whitelist"), "203.0.113.6\n");
    const d = await doctor();
    expect(d.code).toBe(1);
    expect(check(d.report, "drift watcher_LG").message).toContain("1 recorded ban of addresses protected now (203.0.113.6)");
    const fixed = await doctor("--fix");
    expect(fixed.report.fixed).toEqual(["watcher_LG: lifted 1 ban of protected addresses"]);
    expect(fixed.code).toBe(0);
    expect(kernelSet()).not.toContain("203.0.113.6");
    rmSync(join(root, "etc", "whitelist"));
  });

  test("a second root's check names the firewall this root's master holds", async () => {
    const other = newRoot({ "etc/watcher.toml": 'firewall = "nftables"\n[modules.LG]\ndns = false\n' });
    const r = await run(["ip", "netns", "exec", ns, WATCHER, "--root", other, "check"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`firewall: the firewall of this network namespace`);
    expect(r.err).toContain(`is watcher's for root ${root}`);
  });

  test("a stopped module and a dead one are findings", async () => {
    const pid = await modulePid(root);
    process.kill(pid, "SIGSTOP");
    try {
      const d = await doctor();
      expect(d.code).toBe(1);
      expect(check(d.report, "module LG").message).toBe(`pid ${pid} is stopped (by a signal or a debugger): it reads nothing; "kill -CONT ${pid}" or "watcher restart"`);
    } finally {
      process.kill(pid, "SIGCONT");
    }
    expect((await doctor()).code).toBe(0);

    /* killed again and again, the master waits longer each time (1, 2, 4 s): the module is dead meanwhile */
    for (let kills = 1; kills <= 3; kills++) {
      const before = await modulePid(root);
      process.kill(before, "SIGKILL");
      await waitFor("the module restarted", async () => (await modulePid(root)) !== before);
    }
    process.kill(await modulePid(root), "SIGKILL");
    await waitFor("the master to wait before restarting", () => master(root)?.modules.LG?.pid === null);
    const dead = await doctor();
    expect(dead.code).toBe(1);
    expect(check(dead.report, "module LG").message).toMatch(/^not running \(last exit status \d+\); restarted 4 times: the master restarts it/);
    await modulePid(root);
    expect((await doctor()).code).toBe(0);
  });
});

describe("doctor in fleet mode with DNS classes (dry-run master)", () => {
  test("Redis answering and not, a name server answering and one that does not, a nearly full disk", async () => {
    const redis = await new TestRedis().start();
    const dns = await new TestDnsServer({}).start();
    const silent = `127.0.0.1:${await freePort()}`;
    try {
      const root = newRoot({
        "etc/watcher.toml": `firewall = "dryrun"
[modules.LG]
dns = true
[dns]
servers = ["${dns.address}", "${silent}"]
timeout = 0.5
retries = 0
[fleet]
url = "${redis.url}"
node = "doctor-test"
`,
        "etc/fleet.key": "a-test-key-of-at-least-16-bytes\n",
      });
      chmodSync(join(root, "etc", "fleet.key"), 0o600);
      expect(watcher(root, "start").code).toBe(0);
      await modulePid(root);
      const doctor = async () => JSON.parse((await run([WATCHER, "--root", root, "doctor", "--json"])).out) as DoctorReport;

      let report = await doctor();
      expect(check(report, `fleet ${redis.url}`)).toMatchObject({ ok: true });
      expect(check(report, `dns ${dns.address}`)).toMatchObject({ ok: true });
      expect(check(report, `dns ${silent}`).ok).toBe(false);
      expect(check(report, `dns ${silent}`).message).toStartWith("no answer within 0.5 s (1 try)");
      expect(check(report, "drift watcher_fleet").ok).toBe(true);
      expect(report.healthy).toBe(false);

      await redis.stop();
      report = await doctor();
      expect(check(report, `fleet ${redis.url}`).ok).toBe(false);
      expect(check(report, `fleet ${redis.url}`).message).toStartWith("Redis does not answer: ");

      /* a master that is not running is the first finding */
      expect(watcher(root, "stop").code).toBe(0);
      report = await doctor();
      expect(check(report, "master")).toEqual({ check: "master", ok: false, message: 'watcher is not running: "watcher start"' });

      /* the databases' folder on an 8 MB tmpfs, in a mount namespace of the doctor's own */
      const small = await run(["unshare", "-m", "sh", "-c", `mount -t tmpfs -o size=8m tmpfs "$1/var/log" && exec "$2" --root "$1" doctor --json`, "sh", root, WATCHER]);
      const disk = (JSON.parse(small.out) as DoctorReport).checks.find((c) => c.check === `disk ${root}/var/log`);
      expect(disk?.ok).toBe(false);
      expect(disk?.message).toMatch(/^0\.00\d GiB free \(100\.0%\): the databases and the log need room/);
    } finally {
      dns.stop();
      await redis.cleanup();
    }
  });
});

describe("doctor on a master with the dry-run firewall", () => {
  test("a file source that is not there is a finding that names it", async () => {
    const root = newRoot({});
    const missing = join(root, "logs", "authh.log");
    writeFileSync(join(root, "etc", "watcher.toml"), `firewall = "dryrun"\n[modules.LG]\ndns = false\nsources = [{ type = "file", path = "${missing}" }]\n`);
    expect(watcher(root, "start").code).toBe(0);
    await modulePid(root);
    const r = await run([WATCHER, "--root", root, "doctor", "--json"]);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.out) as DoctorReport;
    expect(check(report, "input LG")).toMatchObject({ ok: false, message: `${missing} not there, or no file: nothing is read from it until a file is there (a typo in sources?)` });
    expect(watcher(root, "stop").code).toBe(0);
  });

  test("a file source that is a folder: check refuses it, and a module given it by SIGHUP reads nothing from it but lives on", async () => {
    const root = newRoot({});
    const logs = join(root, "logs");
    mkdirSync(logs);
    writeFileSync(join(root, "etc", "watcher.toml"), `firewall = "dryrun"\n[modules.LG]\ndns = false\n`);
    expect(watcher(root, "start").code).toBe(0);
    const first = await modulePid(root);
    writeFileSync(join(root, "etc", "watcher.toml"), `firewall = "dryrun"\n[modules.LG]\ndns = false\nsources = [{ type = "fifo" }, { type = "file", path = "${logs}" }]\n`);
    const checked = watcher(root, "check");
    expect(checked.code).toBe(2);
    expect(checked.err).toContain(`modules.LG.sources: ${logs} is no file (a folder?): name the log file itself`);
    process.kill(readJson<MasterStatus>(statusFile(join(root, "var", "run"), "master"))!.pid, "SIGHUP");
    await waitFor("LG started again on its new sources", async () => {
      const pid = await modulePid(root);
      return pid !== first && readJson<{ sources?: unknown[] }>(statusFile(join(root, "var", "run"), "LG"))?.sources?.length === 2;
    });
    const r = await run([WATCHER, "--root", root, "doctor", "--json"]);
    expect(check(JSON.parse(r.out) as DoctorReport, "input LG")).toMatchObject({ ok: false, message: `${logs} not there, or no file: nothing is read from it until a file is there (a typo in sources?)` });
    const master = readJson<MasterStatus>(statusFile(join(root, "var", "run"), "master"))!;
    expect(master.modules.LG!.restarts).toBe(0);
    expect(watcher(root, "stop").code).toBe(0);
  });
});

describe("doctor and Pure-FTPd", () => {
  test("a pure-ftpd that resolves names (no -H) is a finding while FT is enabled; one with -H is not", async () => {
    const root = newRoot({ "etc/watcher.toml": 'firewall = "dryrun"\n[modules.LG]\ndns = false\n[modules.FT]\nenabled = true\ndns = false\n' });
    /* a process named pure-ftpd, as the daemon is: its name and arguments are all doctor reads */
    const fake = join(root, "pure-ftpd");
    writeFileSync(fake, "#!/bin/sh\nread line\n"); /* waits on its stdin: no child process to leave behind */
    chmodSync(fake, 0o755);
    expect(watcher(root, "start").code).toBe(0);
    await modulePid(root);
    const finding = async () => (JSON.parse((await run([WATCHER, "--root", root, "doctor", "--json"])).out) as DoctorReport).checks.find((c) => c.check === "pure-ftpd");
    const resolving = Bun.spawn([fake, "-l", "puredb:/etc/pure-ftpd/pureftpd.pdb"], { stdin: "pipe" });
    try {
      await waitFor("the fake pure-ftpd", () => readFileSync(`/proc/${resolving.pid}/comm`, "utf8").trim() === "pure-ftpd");
      expect((await finding())?.message).toContain(`pid ${resolving.pid} runs without -H`);
    } finally {
      resolving.kill();
      await resolving.exited;
    }
    const numeric = Bun.spawn([fake, "-l", "puredb:/etc/pure-ftpd/pureftpd.pdb", "-H"], { stdin: "pipe" });
    try {
      await waitFor("the fake pure-ftpd", () => readFileSync(`/proc/${numeric.pid}/comm`, "utf8").trim() === "pure-ftpd");
      expect(await finding()).toBeUndefined();
    } finally {
      numeric.kill();
      await numeric.exited;
    }
    expect(watcher(root, "stop").code).toBe(0);
  });
});
