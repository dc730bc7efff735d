/**
 * Issue 15, items 3 and 9: lists and settings that could drop the server's own traffic or
 * quietly switch protection off are refused before anything is touched (exit 2, file:line or
 * key), and downloaded blocklists leave such entries out instead of failing.
 *
 * Unit tests run Lists.load with a fixed set of "own" addresses; the CLI tests run the built
 * binary (dist/watcher) on dry-run roots, and use this machine's real addresses where it has one.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DryRunFirewall } from "../../src/core/firewall/dryrun";
import { ConfigError, EXIT_USAGE } from "../../src/core/errors";
import { CidrSet, parseCidr, parseIp } from "../../src/core/ip";
import { Lists, WIDEST } from "../../src/core/lists";
import { protectedFilter } from "../../src/dynload/load";
import { makeRoot, SAFE_CONFIG, watcher } from "../helpers/root";

const OWN = ["192.0.2.2", "2001:db8:1::2", "127.0.0.1", "::1"];

function ownSet(addresses = OWN): CidrSet {
  const set = new CidrSet();
  for (const a of addresses) set.add(parseCidr(a)!);
  return set;
}

const dir = mkdtempSync(join(tmpdir(), "watcher-lists-"));
let files = 0;
function listFile(text: string): string {
  const file = join(dir, `list${files++}`);
  writeFileSync(file, text);
  return file;
}

/** Lists.load of these two texts; the ConfigError's lines, or the lists. */
function load(whitelist: string, blacklist: string): Lists | string[] {
  try {
    return Lists.load(listFile(whitelist), listFile(blacklist), ownSet());
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).exitCode).toBe(EXIT_USAGE);
    return (e as ConfigError).message.split("\n");
  }
}

function refusal(entry: string, whitelist = "198.51.100.0/24\n"): string {
  const r = load(whitelist, `# one entry\n\n${entry}\n`);
  if (r instanceof Lists) throw new Error(`${entry} was accepted`);
  expect(r).toHaveLength(1);
  expect(r[0]).toMatch(/^\/.*\/list\d+:3: /);
  expect(r[0]).toContain(`: ${JSON.stringify(entry)} `);
  expect(r[0]).toEndWith(": the blacklist must never drop it; remove or narrow the line");
  return r[0]!;
}

describe("etc/blacklist refuses what would drop the server's own traffic, naming file and line", () => {
  test.each([
    ["127.0.0.1", "is within 127.0.0.0/8 (loopback)"],
    ["127.0.0.0/8", "is 127.0.0.0/8 (loopback)"],
    ["::1", "is ::1 (loopback)"],
    ["::ffff:127.0.0.1", "is within 127.0.0.0/8 (loopback)"],
    ["::ffff:7f00:1", "is within 127.0.0.0/8 (loopback)"],
    ["::127.0.0.1", "is within ::7f00:0/104 (IPv4-compatible loopback)"],
    ["0.0.0.0", "is within 0.0.0.0/8 (unspecified"],
    ["::", "is :: (unspecified)"],
    ["169.254.169.254", "is within 169.254.0.0/16 (link-local)"],
    ["169.254.0.0/16", "is 169.254.0.0/16 (link-local)"],
    ["169.0.0.0/8", "covers 169.254.0.0/16 (link-local)"],
    ["fe80::1", "is within fe80::/10 (link-local)"],
    ["fe80::/64", "is within fe80::/10 (link-local)"],
    ["::/16", "covers :: (unspecified)"],
    ["224.0.0.1", "is within 224.0.0.0/4 (multicast)"],
    ["ff02::1", "is within ff00::/8 (multicast)"],
    ["198.51.100.7", "is within whitelisted 198.51.100.0/24"],
    ["198.51.100.0/24", "is whitelisted 198.51.100.0/24"],
    ["198.51.0.0/16", "covers whitelisted 198.51.100.0/24"],
  ])("%p %s", (entry, why) => {
    expect(refusal(entry)).toContain(`${JSON.stringify(entry)} ${why}`);
  });

  test.each([
    ["0.0.0.0/0", 8],
    ["::/0", 16],
    ["0.0.0.0/1", 8],
    ["128.0.0.0/1", 8],
    ["1.0.0.0/7", 8],
    ["2000::/3", 16],
    ["2a00::/15", 16],
    ["::ffff:0.0.0.0/96", 8],
    ["fe80::/10", 16],
  ])("%p is wider than /%d", (entry, limit) => {
    expect(refusal(entry)).toContain(`${JSON.stringify(entry)} is wider than /${limit}, the widest network a drop list may hold`);
  });

  test("an entry that holds an address of this machine is left out while it does, and said so; it drops again once the address is gone", () => {
    const blacklist = listFile("203.0.113.0/24\n192.0.2.2\n192.0.2.0/24\n2001:db8:1::/48\n");
    const lists = Lists.load(listFile(""), blacklist, ownSet());
    expect(lists.blacklist.entries()).toEqual(["203.0.113.0/24"]);
    expect(lists.leftOut).toEqual([
      `${blacklist}: "192.0.2.2" is 192.0.2.2, an address of this machine: left out while it is`,
      `${blacklist}: "192.0.2.0/24" covers 192.0.2.2, an address of this machine: left out while it is`,
      `${blacklist}: "2001:db8:1::/48" covers 2001:db8:1::2, an address of this machine: left out while it is`,
    ]);
    /* 192.0.2.2 leaves the machine (its link's address was changed): the two entries drop again */
    expect(lists.refreshOwn(ownSet(["2001:db8:1::2", "127.0.0.1", "::1"]))).toBe(true);
    expect(lists.blacklist.entries().sort()).toEqual(["192.0.2.0/24", "192.0.2.2", "203.0.113.0/24"]);
    expect(lists.leftOut).toHaveLength(1);
    /* the same addresses in another order are no change */
    expect(lists.refreshOwn(ownSet(["::1", "127.0.0.1", "2001:db8:1::2"]))).toBe(false);
    /* a ban or a blocklist entry holding one is still refused */
    expect(lists.dropConflict(parseCidr("2001:db8::/32")!)).toBe("covers 2001:db8:1::2, an address of this machine");
  });

  test("the limits are IPv4 /8 and IPv6 /16 for drops, /8 and /7 for the whitelist", () => {
    expect(WIDEST).toEqual({ drop: { 4: 8, 6: 16 }, whitelist: { 4: 8, 6: 7 } });
  });

  test("every bad line is named at once, parse errors too", () => {
    const r = load("", "203.0.113.0/24\n127.0.0.1\n192.0.2.300\n0.0.0.0/0 # oops\n2a06:e480::/29\n");
    expect(Array.isArray(r)).toBe(true);
    expect((r as string[]).map((l) => /:(\d+): /.exec(l)?.[1])).toEqual(["3", "2", "4"]);
    expect((r as string[])[0]).toContain('"192.0.2.300" is not an IPv4/IPv6 address or CIDR');
  });

  test("ordinary entries pass, as wide as the limits allow", () => {
    const lists = load("198.51.100.0/24\n", "203.0.113.0/24\n1.0.0.0/8\n2a06:e480::/29\n2001:db8:dead::/48\n2a00::/16\n198.51.101.0/24\n# 127.0.0.1 in a comment\n");
    expect(lists).toBeInstanceOf(Lists);
    expect((lists as Lists).blacklist.entries().sort()).toEqual(["1.0.0.0/8", "198.51.101.0/24", "2001:db8:dead::/48", "2a00::/16", "2a06:e480::/29", "203.0.113.0/24"].sort());
  });
});

describe("etc/whitelist refuses what would exempt much of the Internet", () => {
  test.each([
    ["0.0.0.0/0", 8],
    ["64.0.0.0/2", 8],
    ["::/0", 7],
    ["2000::/3", 7],
  ])("%p is wider than /%d", (entry, limit) => {
    const r = load(`10.0.0.0/8\n${entry}\n`, "");
    expect(r).toEqual([expect.stringMatching(new RegExp(`/list\\d+:2: ${JSON.stringify(entry).replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")} is wider than /${limit}, the widest network a whitelist may hold: narrow it$`))]);
  });

  test("private ranges, loopback and link-local may be whitelisted (harmless: they are protected anyway)", () => {
    const lists = load("10.0.0.0/8\n172.16.0.0/12\n192.168.0.0/16\nfc00::/7\n127.0.0.1\nfe80::/10\n", "");
    expect(lists).toBeInstanceOf(Lists);
    expect((lists as Lists).whitelist.size).toBe(6);
  });
});

describe("protection(): the live pipeline and `watcher ban` see the same reserved addresses", () => {
  const lists = Lists.load(listFile("198.51.100.0/24\n"), listFile(""), ownSet());
  test.each(["127.0.0.1", "::ffff:127.0.0.1", "::127.0.0.1", "169.254.169.254", "fe80::1", "::", "0.0.0.0", "ff02::1"])("%p is reserved", (text) => {
    expect(lists.protection(parseIp(text)!)).toBe("reserved");
  });
  test("own and whitelisted; others may be banned", () => {
    expect(lists.protection(parseIp("192.0.2.2")!)).toBe("own");
    expect(lists.protection(parseIp("198.51.100.9")!)).toBe("whitelist");
    expect(lists.protection(parseIp("203.0.113.5")!)).toBeNull();
    expect(lists.protection(parseIp("::192.0.2.1")!)).toBeNull();
  });
  test("for a single address, dropConflict refuses exactly what protection() protects", () => {
    for (const text of ["127.0.0.1", "::127.0.0.1", "169.254.1.1", "fe80::1", "192.0.2.2", "198.51.100.9", "203.0.113.5", "2001:db8::5", "::2", "feff::1"]) {
      const ip = parseIp(text)!;
      expect({ text, refused: lists.dropConflict(parseCidr(text)!) !== null }).toEqual({ text, refused: lists.protection(ip) !== null });
    }
  });
});

describe("downloaded blocklists leave out what the blacklist refuses", () => {
  test("too wide, or covering a reserved, own or whitelisted address: left out; the rest kept", () => {
    const lists = Lists.load(listFile("198.51.100.0/24\n"), listFile(""), ownSet());
    const leftOut = protectedFilter(lists);
    for (const text of ["0.0.0.0/0", "::/0", "0.0.0.0/1", "2000::/3", "126.0.0.0/7", "127.0.0.0/8", "169.254.0.0/16", "fe80::/64", "::ffff:127.0.0.0/104", "::127.0.0.1", "192.0.2.0/24", "198.51.0.0/16", "198.51.100.7", "2001:db8:1::/48"]) {
      expect({ text, leftOut: leftOut(parseCidr(text)!) }).toEqual({ text, leftOut: true });
    }
    for (const text of ["203.0.113.0/24", "1.0.0.0/8", "2a06:e480::/29", "198.51.101.0/24", "2001:db8:dead::/48"]) {
      expect({ text, leftOut: leftOut(parseCidr(text)!) }).toEqual({ text, leftOut: false });
    }
  });
});

/* ---------------------------------------------------------------- the built binary */

function varTree(root: string, sub = "var"): string[] {
  const path = join(root, sub);
  if (!existsSync(path)) return [];
  return readdirSync(path, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? [`${sub}/${e.name}/`, ...varTree(root, `${sub}/${e.name}`)] : [`${sub}/${e.name}`]));
}

const roots: string[] = [];
function newRoot(files: Record<string, string>): string {
  const root = makeRoot("safety-lists", files);
  roots.push(root);
  return root;
}

afterAll(() => {
  for (const root of roots) if (existsSync(join(root, "var", "run"))) watcher(root, "stop");
});

/** `start` must refuse (exit 2), naming each fragment, and touch nothing but its log. */
function expectStartRefused(root: string, fragments: string[]): void {
  const r = watcher(root, "start");
  if (r.code === 0) watcher(root, "stop");
  expect({ code: r.code, err: r.err }).toMatchObject({ code: 2 });
  for (const f of fragments) expect(r.err).toContain(f);
  expect(varTree(root).filter((p) => p !== "var/log/" && p !== "var/log/watcher.log")).toEqual([]);
}

describe("watcher start on a dry-run root", () => {
  test("a blacklist with loopback, 0.0.0.0/0, ::/0 and link-local: exit 2, each line named, nothing touched", () => {
    const root = newRoot({ "etc/blacklist": "203.0.113.0/24\n127.0.0.1\n0.0.0.0/0\n::/0\n169.254.169.254\n::ffff:127.0.0.1\n" });
    const file = join(root, "etc", "blacklist");
    expectStartRefused(root, [
      `${file}:2: "127.0.0.1" is within 127.0.0.0/8 (loopback)`,
      `${file}:3: "0.0.0.0/0" is wider than /8`,
      `${file}:4: "::/0" is wider than /16`,
      `${file}:5: "169.254.169.254" is within 169.254.0.0/16 (link-local)`,
      `${file}:6: "::ffff:127.0.0.1" is within 127.0.0.0/8 (loopback)`,
    ]);
  });

  test("a blacklist entry covering a whitelisted address", () => {
    const root = newRoot({ "etc/whitelist": "198.51.100.0/24\n", "etc/blacklist": "198.51.100.7\n" });
    expectStartRefused(root, [`${join(root, "etc", "blacklist")}:1: "198.51.100.7" is within whitelisted 198.51.100.0/24`]);
  });

  test("a whitelist of 0.0.0.0/0", () => {
    const root = newRoot({ "etc/whitelist": "# everyone\n0.0.0.0/0\n" });
    expectStartRefused(root, [`${join(root, "etc", "whitelist")}:2: "0.0.0.0/0" is wider than /8, the widest network a whitelist may hold`]);
  });

  test("settings that would quietly disable protection, each named by its key", () => {
    const cases: [string, string][] = [
      [`${SAFE_CONFIG}banTime = 0\n`, "modules.LG.banTime: expected a duration of at least 1 second"],
      [`${SAFE_CONFIG}findTime = 0\n`, "modules.LG.findTime: expected a duration of at least 1 second"],
      [`${SAFE_CONFIG}banTime = "2d"\nmaxBanTime = "1d"\n`, "modules.LG.maxBanTime: 1d is shorter than banTime (2d)"],
      [`fifoMode = "0666"\n${SAFE_CONFIG}`, 'fifoMode: "0666" gives other users access to the FIFOs'],
      [`fifoMode = "0622"\n${SAFE_CONFIG}`, 'fifoMode: "0622" gives other users access to the FIFOs'],
    ];
    for (const [config, message] of cases) {
      const root = newRoot({ "etc/watcher.toml": config });
      expectStartRefused(root, [`${join(root, "etc", "watcher.toml")}: ${message}`]);
    }
  });

  test("watcher ban refuses link-local and IPv4-compatible loopback too", () => {
    const root = newRoot({});
    for (const address of ["169.254.169.254", "fe80::1", "::127.0.0.1", "::ffff:127.0.0.1"]) {
      const r = watcher(root, "ban", "LG", address, "--time", "10m");
      expect({ address, code: r.code }).toEqual({ address, code: 2 });
      expect(r.err).toContain("a loopback or reserved address");
    }
  });

  test("a cached blocklist with entries that cover protected addresses: start succeeds, they stay out of the set", async () => {
    const root = newRoot({ "etc/watcher.toml": `${SAFE_CONFIG}[dynload.lists.mine]\nurls = ["/nonexistent/mine.txt"]\nformat = "cidr-lines"\n`, "etc/whitelist": "198.51.100.0/24\n" });
    mkdirSync(join(root, "var", "dynload"), { recursive: true });
    writeFileSync(join(root, "var", "dynload", "mine.0.list"), "203.0.113.0/24\n0.0.0.0/0\n::/0\n127.0.0.0/8\n169.254.0.0/16\nfe80::/10\n198.51.100.0/25\n2a06:e480::/29\n");
    const r = watcher(root, "start");
    expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: "" });
    expect(watcher(root, "stop").code).toBe(0);
    const fw = new DryRunFirewall(join(root, "var", "db", "firewall-dryrun.db"), join(root, "var", "log", "firewall-dryrun.log"));
    const set = (await fw.list("watcher_dl_mine")).map((e) => e.address).sort();
    await fw.close();
    expect(set).toEqual(["203.0.113.0/24", "2a06:e480::/29"]);
  });
});
