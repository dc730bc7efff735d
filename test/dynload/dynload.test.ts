/**
 * Blocklists end to end: a real HTTP server on loopback serves them in their published formats
 * (and misbehaves on demand); the built binary loads them; the dry-run firewall and, in a
 * network namespace, nftables and ipset sets show what the kernel was given.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DryRunFirewall } from "../../src/core/firewall/dryrun";
import { statusFile } from "../../src/core/layout";
import { readJson } from "../../src/core/runfiles";
import type { MasterStatus } from "../../src/master/control";
import { makeRoot, SAFE_CONFIG, WATCHER } from "../helpers/root";
import { waitFor } from "../helpers/wait";

function dropJson(cidrs: string[], records = cidrs.length): string {
  const lines = cidrs.map((cidr, i) => JSON.stringify({ cidr, sblid: `SBL${1000 + i}`, rir: "ripencc" }));
  lines.push(JSON.stringify({ type: "metadata", timestamp: 1764000000, size: 1234, records, copyright: "(c) 2026 The Spamhaus Project SLU", terms: "https://www.spamhaus.org/drop/terms/" }));
  return `${lines.join("\n")}\n`;
}

const V4 = ["198.51.100.0/25", "203.0.113.0/24", "192.0.2.128/26"];
const V6 = ["2001:db8:dead::/48"];
const TEN = Array.from({ length: 10 }, (_, i) => `198.51.100.${i * 16}/28`);

/** What each path answers; `mode` lets a test make the server misbehave. */
let mode: "ok" | "500" | "truncated" | "garbage" | "shrunk" = "ok";
const conditional: string[] = [];
const hanging: string[] = [];
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch(req) {
    const path = new URL(req.url).pathname;
    if (mode === "500") return new Response("oops", { status: 500 });
    if (mode === "garbage") return new Response("<html>maintenance</html>\n");
    switch (path) {
      case "/drop_v4.json":
        return new Response(mode === "truncated" ? dropJson(V4).split("\n").slice(0, 2).join("\n") : dropJson(V4));
      case "/drop_v6.json":
        return new Response(dropJson(V6));
      case "/edrop.txt":
        return new Response("; Spamhaus EDROP List 2026/11/25 - (c) 2026 The Spamhaus Project SLU\n; EDROP is merged into DROP since April 2024\n");
      case "/drop.txt":
        return new Response("; Spamhaus DROP List\n198.51.100.0/25 ; SBL1\n203.0.113.128/25 ; SBL2\n");
      case "/nixspam.gz":
        return new Response(Bun.gzipSync(new TextEncoder().encode("1764000000 198.51.100.77\n1764000001 2001:db8::77\n")));
      case "/hostile.txt":
        /* a publisher's mistake, or a poisoned list: everything, loopback, link-local, our whitelist */
        return new Response("0.0.0.0/0\n::/0\n203.0.113.0/24\n127.0.0.0/8\n::ffff:127.0.0.1\n169.254.0.0/16\nfe80::/64\n203.0.113.7\n2000::/3\n198.51.100.0/25\n2a06:e480::/29\n");
      case "/hang.txt":
        /* a server that takes the request and never answers */
        hanging.push(path);
        return new Promise<Response>(() => {});
      case "/ten.txt": {
        if (req.headers.get("if-none-match") === '"v1"' && mode === "ok") {
          conditional.push(path);
          return new Response(null, { status: 304 });
        }
        return new Response(`${(mode === "shrunk" ? TEN.slice(0, 2) : TEN).join("\n")}\n`, { headers: { etag: '"v1"' } });
      }
    }
    return new Response("not found", { status: 404 });
  },
});
const base = `http://127.0.0.1:${server.port}`;

afterAll(() => server.stop(true));

const newRoot = (lists: string) => makeRoot("dynload", { "etc/watcher.toml": SAFE_CONFIG + lists, "etc/whitelist": "203.0.113.7\n" });

/** Asynchronous: the HTTP server lives in this very process and must be free to answer. */
async function watcher(root: string, ...args: string[]) {
  const p = Bun.spawn([WATCHER, "--root", root, ...args], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

const dynload = (root: string, ...args: string[]) => watcher(root, "dynload", ...args);

async function setOf(root: string, set: string): Promise<string[]> {
  const fw = new DryRunFirewall(join(root, "var", "db", "firewall-dryrun.db"), join(root, "var", "log", "firewall-dryrun.log"));
  const out = (await fw.list(set)).map((e) => e.address).sort();
  await fw.close();
  return out;
}

describe("Spamhaus DROP", () => {
  test("the JSON lists load into one set, v4 and v6; a network covering a whitelisted address is left out and named", async () => {
    mode = "ok";
    const root = newRoot(`[dynload.lists.spamhaus]\nenabled = true\nurls = ["${base}/drop_v4.json", "${base}/drop_v6.json"]\n`);
    const r = await dynload(root);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^spamhaus: loaded 3 networks in [\d.]+ s; left out 1 that cover protected addresses: 203\.0\.113\.0\/24\n$/);
    expect(await setOf(root, "watcher_dl_spamhaus")).toEqual(["192.0.2.128/26", "198.51.100.0/25", "2001:db8:dead::/48"]);
    /* once an hour at most, whatever is asked */
    const again = await dynload(root, "spamhaus", "--force");
    expect(again.out).toContain("spamhaus: not due before ");
    expect(again.out).toContain("its publisher allows one download every 1h");
    /* the report tells the list's state: its count is what the set holds (the whitelisted network left out) */
    const report = JSON.parse((await watcher(root, "report", "--json")).out);
    expect(report.blocklists).toEqual([
      { list: "spamhaus", enabled: true, lastFetch: expect.any(String), lastSuccess: expect.any(String), entries: 3, nextDue: expect.any(String), lastError: null },
    ]);
    expect(report.firewall.sets).toContainEqual({ set: "watcher_dl_spamhaus", entries: 3 });
  });

  test("the legacy text lists, and EDROP which now holds comments only: a valid empty list", async () => {
    mode = "ok";
    const root = newRoot(`[dynload.lists.drop]\nurls = ["${base}/drop.txt"]\nformat = "spamhaus-txt"\n[dynload.lists.edrop]\nurls = ["${base}/edrop.txt"]\nformat = "spamhaus-txt"\n`);
    const r = await dynload(root, "--json");
    expect(JSON.parse(r.out).map((o: { list: string; result: string; entries: number }) => [o.list, o.result, o.entries])).toEqual([
      ["drop", "loaded", 2],
      ["edrop", "loaded", 0],
    ]);
    expect(await setOf(root, "watcher_dl_drop")).toEqual(["198.51.100.0/25", "203.0.113.128/25"]);
  });
});

describe("entries that would drop the server's own traffic are left out and named, never failing the list", () => {
  test("too wide, loopback, link-local, whitelisted: left out; the rest loaded; start still succeeds", async () => {
    mode = "ok";
    const root = newRoot(`[dynload.lists.hostile]\nurls = ["${base}/hostile.txt"]\nformat = "cidr-lines"\n`);
    const r = await dynload(root, "--json");
    expect(r.code).toBe(0);
    const [outcome] = JSON.parse(r.out);
    expect(outcome).toMatchObject({ list: "hostile", result: "loaded", entries: 2 });
    expect(outcome.leftOut).toEqual(["0.0.0.0/0", "::/0", "203.0.113.0/24", "127.0.0.0/8", "127.0.0.1", "169.254.0.0/16", "fe80::/64", "203.0.113.7", "2000::/3"]);
    expect(await setOf(root, "watcher_dl_hostile")).toEqual(["198.51.100.0/25", "2a06:e480::/29"]);
    const text = await dynload(root, "hostile", "--force");
    expect(text.out).toStartWith("hostile: loaded 2 networks in ");
    expect(text.out).toContain("; left out 9 that cover protected addresses: 0.0.0.0/0, ::/0, 203.0.113.0/24, 127.0.0.0/8, 127.0.0.1, ...");
    /* bans and why tell what the set holds, never the lines left out */
    const bans = JSON.parse((await watcher(root, "bans", "--blocklists", "--json")).out) as { address: string }[];
    expect(bans.map((b) => b.address).sort()).toEqual(["198.51.100.0/25", "2a06:e480::/29"]);
    expect((await watcher(root, "why", "192.0.2.50")).out).not.toContain("blocklist hostile");
    expect((await watcher(root, "why", "198.51.100.9")).out).toContain("blocklist hostile entry 198.51.100.0/25");
    const start = await watcher(root, "start");
    expect({ code: start.code, err: start.err }).toEqual({ code: 0, err: "" });
    expect(await setOf(root, "watcher_dl_hostile")).toEqual(["198.51.100.0/25", "2a06:e480::/29"]);
    expect((await watcher(root, "stop")).code).toBe(0);
  });
});

describe("a list that goes wrong keeps the old one in force", () => {
  for (const bad of ["500", "truncated", "garbage"] as const) {
    test(`${bad}`, async () => {
      mode = "ok";
      const root = newRoot(`[dynload.lists.sh]\nurls = ["${base}/drop_v4.json"]\nformat = "spamhaus-json"\ninterval = 0\n`);
      expect((await dynload(root)).code).toBe(0);
      const before = await setOf(root, "watcher_dl_sh");
      mode = bad;
      const r = await dynload(root);
      mode = "ok";
      expect(r.code).toBe(1);
      /* a failure goes to stderr (issue 20, item 8), nothing to stdout */
      expect(r.out).toBe("");
      /* what its set holds: 203.0.113.0/24, whitelisted, was left out */
      expect(before).toHaveLength(2);
      expect(r.err).toMatch(/^watcher dynload: sh: kept the list in force \(2 networks\): /);
      expect(r.err).toContain(bad === "500" ? "HTTP 500" : bad === "truncated" ? "cut short" : "not JSON");
      expect(await setOf(root, "watcher_dl_sh")).toEqual(before);
      const state = JSON.parse(readFileSync(join(root, "var", "dynload", "sh.json"), "utf8"));
      expect(state.lastError).toBeTruthy();
    });
  }

  test("a list that shrank suspiciously is refused, unless forced", async () => {
    mode = "ok";
    const root = newRoot(`[dynload.lists.ten]\nurls = ["${base}/ten.txt"]\nformat = "cidr-lines"\ninterval = 0\n`);
    expect((await dynload(root)).code).toBe(0);
    mode = "shrunk";
    expect((await dynload(root)).err).toContain("shrank from 10 to 2 entries");
    expect((await setOf(root, "watcher_dl_ten")).length).toBe(10);
    expect((await dynload(root, "ten", "--force")).out).toMatch(/^ten: loaded 2 networks/);
    mode = "ok";
  });

  test("a conditional request answered 304 changes nothing", async () => {
    mode = "ok";
    const root = newRoot(`[dynload.lists.ten]\nurls = ["${base}/ten.txt"]\nformat = "cidr-lines"\ninterval = 0\n`);
    await dynload(root);
    const before = conditional.length;
    expect((await dynload(root)).out).toBe("ten: not modified (10 networks in force)\n");
    expect(conditional.length).toBe(before + 1);
  });

  test("the networks in force are those its set holds: a line left out is not counted when the list is not modified or fails", async () => {
    mode = "ok";
    const root = makeRoot("dynload", { "etc/watcher.toml": `${SAFE_CONFIG}[dynload.lists.ten]\nurls = ["${base}/ten.txt"]\nformat = "cidr-lines"\ninterval = 0\n`, "etc/whitelist": "198.51.100.20\n" });
    expect((await dynload(root)).out).toMatch(/^ten: loaded 9 networks in [\d.]+ s; left out 1 that cover protected addresses: 198\.51\.100\.16\/28\n$/);
    expect((await dynload(root)).out).toBe("ten: not modified (9 networks in force)\n");
    mode = "500";
    expect((await dynload(root)).err).toContain("ten: kept the list in force (9 networks)");
    mode = "ok";
    expect(await setOf(root, "watcher_dl_ten")).toHaveLength(9);
  });
});

describe("other sources", () => {
  test("NiX Spam's gzip dump; a custom list with a line template; a local file", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "watcher-list-")), "deny.conf");
    writeFileSync(file, "# nginx deny list\ndeny 198.51.100.33;\ndeny 2001:db8::33;\n");
    const root = newRoot(
      `[dynload.lists.nixspam]\nenabled = true\nurls = ["${base}/nixspam.gz"]\n` +
        `[dynload.lists.deny]\nurls = ["${file}"]\nformat = "^deny <HOST>;$"\n`,
    );
    const r = await dynload(root);
    expect(r.code).toBe(0);
    expect(await setOf(root, "watcher_dl_nixspam")).toEqual(["198.51.100.77", "2001:db8::77"]);
    expect(await setOf(root, "watcher_dl_deny")).toEqual(["198.51.100.33", "2001:db8::33"]);
  });

  test("a bad list definition is a configuration error naming the key", async () => {
    const root = newRoot(`[dynload.lists.mine]\nurls = ["${base}/x"]\nformat = "csv"\n`);
    const r = await dynload(root);
    expect(r.code).toBe(2);
    expect(r.err).toContain("dynload.lists.mine.format: expected one of spamhaus-json, spamhaus-txt, nixspam, ip-lines, cidr-lines, or a line template with <HOST>");
  });
});

describe("start restores the blocklists from their cache, without network", () => {
  test("the server gone, the set comes back", async () => {
    mode = "ok";
    const root = newRoot(`[dynload.lists.ten]\nurls = ["${base}/ten.txt"]\nformat = "cidr-lines"\n`);
    expect((await dynload(root)).code).toBe(0);
    expect((await watcher(root, "stop", "--remove-firewall")).code).toBe(0);
    expect(await setOf(root, "watcher_dl_ten")).toEqual([]);
    mode = "500"; /* as good as gone */
    expect((await watcher(root, "start")).code).toBe(0);
    expect((await setOf(root, "watcher_dl_ten")).length).toBe(10);
    expect((await watcher(root, "stop")).code).toBe(0);
    mode = "ok";
  });
});

describe("a server that never answers", () => {
  test("stop ends the master at once, the download in flight with it", async () => {
    const root = makeRoot("dynload", {
      "etc/watcher.toml": `${SAFE_CONFIG}[dynload]\ntimeout = 600\n[dynload.lists.slow]\nurls = ["${base}/hang.txt"]\nformat = "cidr-lines"\ninterval = 0\n[schedule]\ndynload = "* * * * * *"\n`,
    });
    const before = hanging.length;
    expect((await watcher(root, "start")).code).toBe(0);
    await waitFor("the download under way", () => hanging.length > before);
    /* without the abort the master lived on until the download's timeout, and stop gave up after its 30 s */
    const stopped = await watcher(root, "stop");
    expect(stopped).toMatchObject({ code: 0, err: "" });
    expect(readFileSync(join(root, "var", "log", "watcher.log"), "utf8")).toMatch(/watcher: stopped\n$/);
  });
});

describe("a list switched off stops dropping", () => {
  test("its set is emptied on SIGHUP and stays empty at the next start; switched on again, it comes back from its cache; removed, it is emptied too", async () => {
    mode = "ok";
    const list = `[dynload.lists.ten]\nurls = ["${base}/ten.txt"]\nformat = "cidr-lines"\n`;
    const root = newRoot(list);
    const config = join(root, "etc", "watcher.toml");
    const hangUp = () => process.kill(readJson<MasterStatus>(statusFile(join(root, "var", "run"), "master"))!.pid, "SIGHUP");
    expect((await dynload(root)).code).toBe(0);
    expect((await watcher(root, "start")).code).toBe(0);
    expect((await setOf(root, "watcher_dl_ten")).length).toBe(10);
    writeFileSync(config, SAFE_CONFIG + list.replace("\nurls", "\nenabled = false\nurls"));
    hangUp();
    await waitFor("the switched-off list's set to be emptied", async () => (await setOf(root, "watcher_dl_ten")).length === 0);
    await waitFor("the master to say so", () => readFileSync(join(root, "var", "log", "watcher.log"), "utf8").includes("SIGHUP: emptied the set of blocklist ten: it is switched off"));
    expect((await watcher(root, "stop")).code).toBe(0);
    expect((await watcher(root, "start")).code).toBe(0);
    expect(await setOf(root, "watcher_dl_ten")).toEqual([]);
    writeFileSync(config, SAFE_CONFIG + list);
    hangUp();
    await waitFor("the list to come back from its cache", async () => (await setOf(root, "watcher_dl_ten")).length === 10);
    /* its section deleted, not switched off: the same */
    writeFileSync(config, SAFE_CONFIG);
    hangUp();
    await waitFor("the removed list's set to be emptied", async () => (await setOf(root, "watcher_dl_ten")).length === 0);
    expect((await watcher(root, "stop")).code).toBe(0);
  });
});

describe("into the kernel (nftables and ipset, in a network namespace)", () => {
  const ns = `wt-dl-${process.pid}`;
  beforeAll(() => {
    expect(Bun.spawnSync(["ip", "netns", "add", ns]).exitCode).toBe(0);
  });
  afterAll(() => {
    Bun.spawnSync(["ip", "netns", "del", ns]);
  });

  for (const backend of ["nftables", "ipset"] as const) {
    test(`${backend}: a 100k-network list of your own, swapped in whole; v4 and v6`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "watcher-dl-kernel-"));
      /* distinct and never adjacent, so that neither duplicates nor nft's auto-merge change the count */
      const big = Array.from({ length: 100000 }, (_, i) => `${10 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}.0/25`);
      writeFileSync(join(dir, "big.txt"), `${[...big, "2001:db8:beef::/48"].join("\n")}\n`);
      const root = newRoot(`[dynload.lists.big]\nurls = ["file://${join(dir, "big.txt")}"]\nformat = "cidr-lines"\ninterval = 0\n`);
      writeFileSync(join(root, "etc", "watcher.toml"), readFileSync(join(root, "etc", "watcher.toml"), "utf8").replace('firewall = "dryrun"', `firewall = "${backend}"`));
      const run = Bun.spawnSync(["ip", "netns", "exec", ns, WATCHER, "--root", root, "dynload", "--json"], { stdout: "pipe", stderr: "pipe" });
      expect(run.stderr.toString()).toBe("");
      const [outcome] = JSON.parse(run.stdout.toString());
      expect(outcome).toMatchObject({ list: "big", result: "loaded", entries: 100001 });
      console.log(`dynload ${backend}: 100,001 networks downloaded from a file, checked and swapped in: ${outcome.seconds.toFixed(3)} s`);
      const count = (family: string) =>
        backend === "nftables"
          ? JSON.parse(Bun.spawnSync(["ip", "netns", "exec", ns, "nft", "-j", "list", "set", "inet", "watcher", `watcher_dl_big_${family}`]).stdout.toString()).nftables.find((x: { set?: unknown }) => x.set).set.elem?.length ?? 0
          : Number(/Number of entries: (\d+)/.exec(Bun.spawnSync(["ip", "netns", "exec", ns, "ipset", "list", "-t", `watcher_dl_big_${family}`]).stdout.toString())?.[1]);
      expect(count("v6")).toBe(1);
      expect(count("v4")).toBe(100000);
      /* a new, smaller list replaces the old one whole */
      writeFileSync(join(dir, "big.txt"), `${big.slice(0, 60000).join("\n")}\n`);
      const again = Bun.spawnSync(["ip", "netns", "exec", ns, WATCHER, "--root", root, "dynload", "--json"], { stdout: "pipe" });
      expect(JSON.parse(again.stdout.toString())[0]).toMatchObject({ result: "loaded", entries: 60000 });
      expect(count("v4")).toBe(60000);
      expect(count("v6")).toBe(0);
      Bun.spawnSync(["ip", "netns", "exec", ns, WATCHER, "--root", root, "stop", "--remove-firewall"]);
    });
  }
});
