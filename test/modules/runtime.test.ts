/** The module pipeline end to end in-process: real rules, real SQLite, the dry-run firewall. */
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { networkInterfaces } from "node:os";
import { makeRoot as makeRootIn } from "../helpers/root";
import { moduleSetName } from "../../src/core/firewall/types";
import { parseIp } from "../../src/core/ip";
import { type ModuleContext, openModule } from "../../src/modules/context";
import { manualBan, manualUnban } from "../../src/ops/ban";
import { SourceFormat } from "../../src/pipeline/formats";
import { type BanReport, ModuleRuntime, partsOf } from "../../src/pipeline/run";

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0) / 1000;

const makeRoot = (files: Record<string, string> = {}) => makeRootIn("runtime", files);

function runtime(ctx: ModuleContext, useLineTime = false, clock = () => NOW) {
  const bans: BanReport[] = [];
  const rt = new ModuleRuntime({ ...partsOf(ctx), clock, useLineTime, onBan: (b) => bans.push(b) });
  return { rt, bans };
}

/** One failed password per connection (pid), so no merging. */
function failures(address: string, n: number, firstPid = 100): string {
  let out = "";
  for (let i = 0; i < n; i++) out += `Nov 25 11:59:0${i} srv sshd-session[${firstPid + i}]: Failed password for root from ${address} port ${40000 + i} ssh2\n`;
  return out;
}

describe("module runtime", () => {
  test("maxAffairs failures ban the address, in the database and the firewall, with a reason", async () => {
    const ctx = openModule(makeRoot(), "LG");
    const { rt, bans } = runtime(ctx);
    await rt.processBlock(failures("203.0.113.5", 4));
    expect(bans).toEqual([]);
    await rt.processBlock(failures("203.0.113.5", 1, 200));
    expect(bans.map((b) => [b.address, b.seconds, b.reason])).toEqual([["203.0.113.5", 3600, "5 affairs within 1h, last by rule failed-auth"]]);
    expect(ctx.store.getHost("203.0.113.5")).toMatchObject({ banCount: 1, bannedUntil: NOW + 3600, affairs: 0 });
    const listed = await ctx.firewall.list(moduleSetName("LG"));
    expect(listed.map((e) => e.address)).toEqual(["203.0.113.5"]);
    expect(rt.stats).toMatchObject({ lines: 5, matched: 5, affairs: 5, bans: 1 });
    await ctx.close();
  });

  test("a chunk that finds the database locked beyond busy_timeout is still counted and banned, and written later", async () => {
    const root = makeRoot();
    const ctx = openModule(root, "LG");
    const { rt, bans } = runtime(ctx);
    /* another process (an expire, a `watcher ban`) holds the write lock longer than the 5 s a module waits */
    const other = new Database(join(root, "var", "db", "LG.db"));
    other.exec("BEGIN IMMEDIATE");
    await rt.processBlock(failures("203.0.113.8", 5));
    expect(bans.map((b) => b.address)).toEqual(["203.0.113.8"]);
    expect((await ctx.firewall.list(moduleSetName("LG"))).map((e) => e.address)).toEqual(["203.0.113.8"]);
    expect(rt.pending).toMatchObject({ hosts: 1, events: 6 });
    other.exec("COMMIT");
    other.close();
    expect(rt.flushPending(true)).toBe(true);
    expect(ctx.store.getHost("203.0.113.8")).toMatchObject({ banCount: 1, bannedUntil: NOW + 3600 });
    await ctx.close();
  }, 30_000);

  test("the lines of one connection count once per attempt", async () => {
    const ctx = openModule(makeRoot(), "LG");
    const { rt } = runtime(ctx);
    await rt.processBlock(
      [
        "Nov 25 11:59:00 srv sshd-session[7]: Invalid user admin from 203.0.113.6 port 1",
        "Nov 25 11:59:00 srv sshd-session[7]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.6 ",
        "Nov 25 11:59:01 srv sshd-session[7]: Failed password for invalid user admin from 203.0.113.6 port 1 ssh2",
        "Nov 25 11:59:02 srv sshd-session[7]: Failed password for invalid user admin from 203.0.113.6 port 1 ssh2",
        "Nov 25 11:59:03 srv sshd-session[7]: Connection closed by invalid user admin 203.0.113.6 port 1 [preauth]",
        "",
      ].join("\n"),
    );
    expect(ctx.store.getHost("203.0.113.6")?.affairs).toBe(2);
    expect(rt.stats.merged).toBe(3);
    await ctx.close();
  });

  test("whitelisted, loopback and own addresses are never counted or banned", async () => {
    const own = Object.values(networkInterfaces()).flat().find((a) => a && !a.internal)?.address ?? "127.0.0.2";
    const ctx = openModule(makeRoot({ "etc/whitelist": "# office\n203.0.113.128/25\n2001:db8:ffff::/48\n" }), "LG");
    const { rt, bans } = runtime(ctx);
    for (const address of ["203.0.113.177", "2001:db8:ffff::5", "127.0.0.1", "::1", own]) await rt.processBlock(failures(address, 10));
    expect(bans).toEqual([]);
    expect(ctx.store.activeBans(0)).toEqual([]);
    expect(rt.stats.protected).toBe(50);
    await expect(manualBan(ctx, parseIp("203.0.113.130")!, 60)).rejects.toThrow("refusing to ban 203.0.113.130: it is whitelisted");
    await expect(manualBan(ctx, parseIp("::1")!, 60)).rejects.toThrow("loopback");
    await ctx.close();
  });

  test("blacklisted addresses are banned at sight", async () => {
    const ctx = openModule(makeRoot({ "etc/blacklist": "203.0.113.128/25\n" }), "LG");
    const { rt, bans } = runtime(ctx);
    await rt.processBlock(failures("203.0.113.200", 1));
    expect(bans.map((b) => [b.address, b.reason])).toEqual([["203.0.113.200", "blacklisted: banned at sight"]]);
    await ctx.close();
  });

  test("replay uses each line's time: windows follow the log, lapsed bans stay out of the firewall", async () => {
    const ctx = openModule(makeRoot(), "LG");
    const { rt, bans } = runtime(ctx, true);
    /* three failures at 01:00 and two at 03:00: never five within the hour */
    const lines = [1, 1, 1, 3, 3].map((h, i) => `Nov 25 0${h}:00:0${i} srv sshd[${i}]: Failed password for root from 203.0.113.7 port 1 ssh2`);
    await rt.processBlock(`${lines.join("\n")}\n`);
    expect(bans).toEqual([]);
    /* five more at 05:00: banned at 05:00 for an hour, over by now */
    await rt.processBlock(failures("203.0.113.7", 5).replaceAll("Nov 25 11:59", "Nov 25 05:00"));
    expect(bans).toHaveLength(1);
    expect(bans[0]!.until).toBeLessThan(NOW);
    expect(await ctx.firewall.list(moduleSetName("LG"))).toEqual([]);
    await ctx.close();
  });

  test("with forgiveOnSuccess, a successful login withdraws its connection's failures", async () => {
    const ctx = openModule(makeRoot({ "etc/watcher.toml": 'firewall = "dryrun"\n[modules.LG]\nforgiveOnSuccess = true\n' }), "LG");
    const { rt } = runtime(ctx);
    await rt.processBlock(
      [
        "Nov 25 11:59:00 srv sshd[9]: Failed password for deploy from 203.0.113.8 port 1 ssh2",
        "Nov 25 11:59:01 srv sshd[9]: Failed password for deploy from 203.0.113.8 port 1 ssh2",
        "Nov 25 11:59:02 srv sshd[9]: Accepted password for deploy from 203.0.113.8 port 1 ssh2",
        "",
      ].join("\n"),
    );
    expect(ctx.store.getHost("203.0.113.8")?.affairs).toBe(0);
    await ctx.close();
  });

  test("junk, over-long and header-less lines are skipped and counted, never fatal; one with U+FFFD (bytes that were no UTF-8) is read", async () => {
    const ctx = openModule(makeRoot(), "LG");
    const { rt } = runtime(ctx);
    await rt.processBlock(`\u0000\u0001binary\nno header here\n${"x".repeat(70000)}\nbad \ufffd utf8\n${failures("203.0.113.9", 1)}`);
    expect(rt.stats).toMatchObject({ lines: 5, unparsed: 2, matched: 1, skipped: { tooLong: 1, invalid: 1 } });
    await ctx.close();
  });

  test("a rule with action ban bans on the first line; a rule file of the root overrides nothing it does not name", async () => {
    const extra = 'programs = ["sshd"]\n[[rule]]\nname = "honeypot-user"\npattern = "Invalid user honeypot "\nhost = "^Invalid user honeypot from <HOST> port <PORT>$"\naction = "ban"\n';
    const ctx = openModule(makeRoot({ "rules/LG/honeypot.rule": extra }), "LG");
    const { rt, bans } = runtime(ctx);
    await rt.processBlock("Nov 25 11:59:00 srv sshd[1]: Invalid user honeypot from 203.0.113.10 port 2\n");
    expect(bans.map((b) => b.reason)).toEqual(["rule honeypot-user bans at once"]);
    expect(ctx.rules.rules.some((r) => r.name === "failed-auth")).toBe(true);
    await ctx.close();
  });

  test("manual ban and unban are recorded and applied together", async () => {
    const ctx = openModule(makeRoot(), "LG");
    const ip = parseIp("2001:db8:0::7")!;
    const ban = await manualBan(ctx, ip, 600, NOW);
    expect(ban).toMatchObject({ address: "2001:db8::7", seconds: 600, until: NOW + 600, permanent: false });
    expect(ban.reason).toMatch(/^manual ban by uid \d+.*, for 10m as asked$/);
    expect(ctx.store.activeBans(NOW).map((h) => h.address)).toEqual(["2001:db8::7"]);
    expect(await manualUnban(ctx, ip, NOW + 1)).toEqual([{ where: "LG", address: "2001:db8::7" }]);
    expect(ctx.store.activeBans(NOW + 1)).toEqual([]);
    expect(await ctx.firewall.list(moduleSetName("LG"))).toEqual([]);
    expect(ctx.store.events().map((e) => `${e.kind}:${e.rule}`)).toEqual(["ban:manual", "unban:manual"]);
    await ctx.close();
  });
});

describe("the web module", () => {
  const post = (i: number, address = "203.0.113.190") =>
    `blog.example.com:443 ${address} - - [25/Nov/2026:10:00:${String(i).padStart(2, "0")} +0000] "POST /wp-login.php HTTP/1.1" 200 4521 "-" "Mozilla/5.0"\n`;

  test("a rate rule counts one affair when one address goes over the limit on one vhost; records keep the vhost", async () => {
    const ctx = openModule(makeRoot({ "etc/watcher.toml": 'firewall = "dryrun"\n[modules.WB]\nmaxAffairs = 1\n' }), "WB");
    const { rt, bans } = runtime(ctx);
    let ten = "";
    for (let i = 0; i < 10; i++) ten += post(i);
    const given = new SourceFormat("apache-access");
    await rt.processBlock(ten, given);
    expect(bans).toEqual([]);
    await rt.processBlock(post(10), given);
    expect(bans.map((b) => [b.address, b.rule])).toEqual([["203.0.113.190", "login-flood"]]);
    expect(ctx.store.getHost("203.0.113.190")?.vhost).toBe("blog.example.com");
    expect(ctx.store.events().map((e) => [e.kind, e.vhost])).toEqual([
      ["affair", "blog.example.com"],
      ["ban", "blog.example.com"],
    ]);
    await ctx.close();
  });

  test("header-less lines of a web server are matched as its program's, given or found from their shape", async () => {
    const ctx = openModule(makeRoot(), "WB");
    const { rt } = runtime(ctx);
    await rt.processBlock('203.0.113.191 - - [25/Nov/2026:10:00:01 +0000] "GET /.env HTTP/1.1" 404 196 "-" "-"\n', new SourceFormat("nginx-access"));
    await rt.processBlock('203.0.113.192 - - [25/Nov/2026:10:00:01 +0000] "GET /.env HTTP/1.1" 404 196 "-" "-"\n');
    await rt.processBlock("no header here, 203.0.113.193 GET /.env\n");
    expect(ctx.store.getHost("203.0.113.191")?.affairs).toBe(1);
    expect(ctx.store.getHost("203.0.113.192")?.affairs).toBe(1); /* an access log line by its shape */
    expect(ctx.store.getHost("203.0.113.193")).toBeNull(); /* no format we know */
    expect(rt.stats.unparsed).toBe(1);
    await ctx.close();
  });
});
