/**
 * Classification against a real DNS server on loopback (test/helpers/dns-server.ts): TRUEHOST,
 * FAKEHOST, NXDOMAIN for IPv4 and IPv6, our resolver's trouble as UNKNOWN, the cache, the
 * bounded queue, and the preset in the module pipeline (the second affair bans).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DnsClassifier, DnsClient, type HostClass, reverseName } from "../../src/core/dns";
import { type Ip, parseIp } from "../../src/core/ip";
import { openModule } from "../../src/modules/context";
import { ModuleRuntime, partsOf } from "../../src/pipeline/run";
import { TestDnsServer } from "../helpers/dns-server";
import { timeoutForHangsOnly } from "../helpers/wait";

timeoutForHangsOnly();

/** Seconds a client waits for our own server on loopback: far more than any answer takes, on any machine. */
const ANSWER_WITHIN = 5;

const ip = (s: string): Ip => parseIp(s)!;
const V6_TRUE = ip("2001:db8::10");
const V6_FAKE = ip("2001:db8::11");

const server = new TestDnsServer({
  ptr: {
    "7.2.0.192.in-addr.arpa": ["mail.good.example"],
    "8.2.0.192.in-addr.arpa": ["crawler.search.example"], /* claims a name that is not its own */
    "9.2.0.192.in-addr.arpa": [], /* NODATA: the name exists, no PTR */
    [reverseName(V6_TRUE)]: ["v6.good.example"],
    [reverseName(V6_FAKE)]: ["v6.fake.example"],
    "20.2.0.192.in-addr.arpa": ["slow.good.example"],
  },
  a: { "mail.good.example": ["198.51.100.9", "192.0.2.7"], "crawler.search.example": ["198.51.100.200"], "slow.good.example": ["192.0.2.20"] },
  aaaa: { "v6.good.example": ["2001:db8:0:0::10"], "v6.fake.example": ["2001:db8::99"] },
  servfail: ["12.2.0.192.in-addr.arpa"],
  silent: ["13.2.0.192.in-addr.arpa"],
  delayMs: { "slow.good.example": 300 },
});
let client: DnsClient;

beforeAll(async () => {
  await server.start();
  client = new DnsClient({ servers: [server.address], timeout: ANSWER_WITHIN, retries: 1 });
});
afterAll(() => {
  client.close();
  server.stop();
});

describe("forward-confirmed reverse DNS", () => {
  test("reverse names for IPv4 and IPv6", () => {
    expect(reverseName(ip("192.0.2.7"))).toBe("7.2.0.192.in-addr.arpa");
    expect(reverseName(ip("2001:db8::10"))).toBe("0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
  });
  test.each([
    ["192.0.2.7", "TRUEHOST"],
    ["192.0.2.8", "FAKEHOST"],
    ["192.0.2.9", "NXDOMAIN"],
    ["192.0.2.10", "NXDOMAIN"],
    ["2001:db8::10", "TRUEHOST"],
    ["2001:db8::11", "FAKEHOST"],
    ["2001:db8::12", "NXDOMAIN"],
    ["192.0.2.20", "TRUEHOST"],
  ] as [string, HostClass][])("%s is %s", async (address, cls) => {
    expect(await client.classify(ip(address))).toBe(cls);
  });
  test("SERVFAIL and silence are our resolver's trouble: UNKNOWN, never NXDOMAIN", async () => {
    expect(await client.classify(ip("192.0.2.12"))).toBe("UNKNOWN");
    /* silence is waited out: a short timeout, as no answer comes however long one waits */
    const impatient = new DnsClient({ servers: [server.address], timeout: 0.2, retries: 1 });
    expect(await impatient.classify(ip("192.0.2.13"))).toBe("UNKNOWN");
    impatient.close();
    expect(server.queries.get("13.2.0.192.in-addr.arpa")).toBe(2); /* one retry */
  });
  test("a confirmed name under an allowed domain is ALLOWED; a claimed one is still FAKEHOST", async () => {
    const allowing = new DnsClient({ servers: [server.address], timeout: ANSWER_WITHIN, retries: 0, allow: ["good.example", "search.example"] });
    expect(await allowing.classify(ip("192.0.2.7"))).toBe("ALLOWED");
    expect(await allowing.classify(ip("192.0.2.8"))).toBe("FAKEHOST"); /* crawler.search.example does not resolve back */
    allowing.close();
  });

  test("no server answering at all is UNKNOWN too", async () => {
    const dead = new DnsClient({ servers: ["127.0.0.1:9"], timeout: 0.2, retries: 0 });
    expect(await dead.classify(ip("192.0.2.7"))).toBe("UNKNOWN");
    dead.close();
  });

  test("a dead first server hands each try on to the next one when it times out; its ICMP errors lose no other try", async () => {
    /* each query's first try goes to the dead server and times out, its second is answered (2 s: loopback on a loaded machine) */
    const failover = new DnsClient({ servers: ["127.0.0.1:9", server.address], timeout: 2, retries: 1 });
    const started = performance.now();
    const classes = await Promise.all(["192.0.2.7", "192.0.2.8", "192.0.2.9", "2001:db8::10"].map((a) => failover.classify(ip(a))));
    expect(classes).toEqual(["TRUEHOST", "FAKEHOST", "NXDOMAIN", "TRUEHOST"]);
    /* PTR: 4 first tries lost; forward: 3 more (192.0.2.9 has no name to confirm) */
    expect(failover.stats.timeouts).toBe(7);
    expect(failover.stats.answers).toBe(7);
    expect(performance.now() - started).toBeGreaterThanOrEqual(4000); /* two timeouts in a row, never cut short */
    /* nothing waits now, so no timer runs: the next query arms one, timed from its own sending */
    expect(await failover.query("mail.good.example", 1)).not.toBeNull();
    expect(failover.stats.timeouts).toBe(8);
    failover.close();
  });
});

describe("the classifier", () => {
  test("caches: a second request sends no query", async () => {
    const results: [string, HostClass][] = [];
    const c = new DnsClassifier(client, { concurrency: 4, queueSize: 10, cacheSize: 10, positiveTtl: 60, negativeTtl: 60 }, (a, cls) => results.push([a, cls]));
    const before = server.queries.get("8.2.0.192.in-addr.arpa") ?? 0;
    c.request(ip("192.0.2.8"));
    c.request(ip("192.0.2.8")); /* already under way */
    while (c.pending > 0) await Bun.sleep(5);
    expect(results).toEqual([["192.0.2.8", "FAKEHOST"]]);
    expect(c.cached("192.0.2.8")).toBe("FAKEHOST");
    expect(server.queries.get("8.2.0.192.in-addr.arpa")).toBe(before + 1);
  });
  test("a full queue drops requests instead of growing; concurrency is bounded", async () => {
    let active = 0;
    let most = 0;
    const slow = {
      classify: async () => {
        most = Math.max(most, ++active);
        await Bun.sleep(20);
        active--;
        return "NXDOMAIN" as HostClass;
      },
    };
    const c = new DnsClassifier(slow, { concurrency: 3, queueSize: 5, cacheSize: 100, positiveTtl: 60, negativeTtl: 60 }, () => {});
    for (let i = 1; i <= 50; i++) c.request(ip(`198.51.100.${i}`));
    expect(c.stats.dropped).toBeGreaterThan(35);
    while (c.pending > 0) await Bun.sleep(5);
    expect(most).toBe(3);
  });
});

describe("in the module pipeline", () => {
  /** `timeout`: ANSWER_WITHIN for our server; short for a dead one, whose lookups the test waits out */
  function runtime(servers: string[], allow: string[] = [], timeout = ANSWER_WITHIN) {
    const root = mkdtempSync(join(tmpdir(), "watcher-dns-"));
    mkdirSync(join(root, "etc"));
    writeFileSync(join(root, "etc", "watcher.toml"), 'firewall = "dryrun"\n');
    const ctx = openModule(root, "LG");
    const dnsClient = new DnsClient({ servers, timeout, retries: 0, allow });
    const rt = new ModuleRuntime({
      ...partsOf(ctx),
      clock: () => Math.floor(Date.now() / 1000), useLineTime: false,
      dns: { client: dnsClient, options: { concurrency: 8, queueSize: 100, cacheSize: 1000, positiveTtl: 60, negativeTtl: 60 } },
    });
    return { ctx, rt, dnsClient };
  }
  const failure = (address: string, pid: number) => `Nov 25 10:00:00 srv sshd[${pid}]: Failed password for root from ${address} port 1 ssh2\n`;

  test("an ALLOWED host is never counted", async () => {
    const { ctx, rt, dnsClient } = runtime([server.address], ["good.example"]);
    await rt.processBlock(failure("192.0.2.7", 1));
    while (rt.dns!.pending > 0) await Bun.sleep(5);
    for (let i = 0; i < 10; i++) await rt.processBlock(failure("192.0.2.7", 10 + i));
    expect(ctx.store.getHost("192.0.2.7")).toMatchObject({ class: "ALLOWED", affairs: 1, bannedUntil: 0 });
    expect(rt.stats.protected).toBe(10);
    dnsClient.close();
    await ctx.close();
  });

  test("NXDOMAIN and FAKEHOST are dropped on their second affair; a TRUEHOST is not", async () => {
    const { ctx, rt, dnsClient } = runtime([server.address]);
    await rt.processBlock(failure("192.0.2.9", 1) + failure("192.0.2.8", 2) + failure("192.0.2.7", 3));
    while (rt.dns!.pending > 0) await Bun.sleep(5);
    rt.flushPending(); /* classes go out with the next commit (the loop flushes every 2 s) */
    expect(ctx.store.getHost("192.0.2.9")).toMatchObject({ class: "NXDOMAIN", affairs: 4 });
    expect(ctx.store.getHost("192.0.2.7")).toMatchObject({ class: "TRUEHOST", affairs: 1 });
    await rt.processBlock(failure("192.0.2.9", 4) + failure("192.0.2.8", 5) + failure("192.0.2.7", 6));
    expect(ctx.store.activeBans(0).map((h) => h.address).sort()).toEqual(["192.0.2.8", "192.0.2.9"]);
    expect(ctx.store.events().filter((e) => e.kind === "ban").length).toBe(2);
    dnsClient.close();
    await ctx.close();
  });

  test("with the DNS server gone the loop goes on at once, hosts stay UNKNOWN and are not presumed guilty", async () => {
    const { ctx, rt, dnsClient } = runtime(["127.0.0.1:9"], [], 0.2);
    let block = "";
    for (let i = 0; i < 2000; i++) block += failure(`203.0.113.${i % 250}`, 100 + i);
    await rt.processBlock(block); /* returns without waiting for any lookup */
    expect(rt.stats.matched).toBe(2000);
    expect(rt.dns!.pending).toBeGreaterThan(0);
    while (rt.dns!.pending > 0) await Bun.sleep(10);
    rt.flushPending();
    expect(ctx.store.getHost("203.0.113.1")?.class).toBe("UNKNOWN");
    expect(ctx.store.getHost("203.0.113.1")!.affairs).toBeLessThan(ctx.moduleConfig.maxAffairs);
    dnsClient.close();
    await ctx.close();
  });
});
