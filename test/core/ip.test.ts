import { describe, expect, test } from "bun:test";
import { CidrSet, cidrContains, cidrOverlaps, isNeverBannable, normalizeIp, parseCidr, parseIp, parseLoggedIp, RESERVED_NETWORKS, reservedOverlap, type Cidr, type Ip } from "../../src/core/ip";

/** parseIp that must succeed */
function ip(text: string): Ip {
  const parsed = parseIp(text);
  if (!parsed) throw new Error(`test setup: ${JSON.stringify(text)} should parse`);
  return parsed;
}

/** parseCidr that must succeed */
function cidr(text: string): Cidr {
  const parsed = parseCidr(text);
  if (!parsed) throw new Error(`test setup: ${JSON.stringify(text)} should parse as a CIDR`);
  return parsed;
}

describe("parseIp: IPv4", () => {
  test("accepts dotted decimal and returns family, bytes and text", () => {
    const a = ip("192.0.2.1");
    expect(a.family).toBe(4);
    expect([...a.bytes]).toEqual([192, 0, 2, 1]);
    expect(a.text).toBe("192.0.2.1");
  });

  test.each(["0.0.0.0", "255.255.255.255", "198.51.100.0", "203.0.113.255", "127.0.0.1", "192.0.2.10", "192.0.2.100"])(
    "accepts %p unchanged",
    (text) => {
      expect(normalizeIp(text)).toBe(text);
    },
  );

  test.each([
    ["010.1.1.1", "leading zero in the first octet (octal to inet_aton)"],
    ["1.02.3.4", "leading zero in an inner octet"],
    ["192.0.2.01", "leading zero in the last octet"],
    ["192.0.2.00", "double zero"],
    ["192.0.2.256", "octet above 255"],
    ["256.0.2.1", "first octet above 255"],
    ["192.0.2.1000", "four digits"],
    ["192.0.2", "three parts"],
    ["192.0.2.1.5", "five parts"],
    ["192..2.1", "empty inner part"],
    [".192.0.2.1", "leading dot"],
    ["192.0.2.1.", "trailing dot"],
    ["192.0.2.", "empty last part"],
    [" 192.0.2.1", "leading space"],
    ["192.0.2.1 ", "trailing space"],
    ["192.0. 2.1", "inner space"],
    ["192.0.2.1:22", "with a port"],
    ["192.0.2.1/24", "with a prefix"],
    ["192.0.2.-1", "negative octet"],
    ["192.0.2.+1", "plus sign"],
    ["192.0.2.0x1", "hexadecimal octet"],
    ["3221225985", "a single integer"],
    ["", "empty string"],
    [".", "a dot"],
    ["...", "dots only"],
    ["a.b.c.d", "letters"],
  ])("rejects %p (%s)", (text) => {
    expect(parseIp(text)).toBeNull();
    expect(normalizeIp(text)).toBeNull();
  });
});

describe("parseIp: IPv6", () => {
  test("returns family 6, 16 bytes and canonical text", () => {
    const a = ip("2001:db8::1");
    expect(a.family).toBe(6);
    expect(a.bytes.length).toBe(16);
    expect([...a.bytes]).toEqual([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    expect(a.text).toBe("2001:db8::1");
  });

  test("the unspecified address and loopback", () => {
    expect(normalizeIp("::")).toBe("::");
    expect([...ip("::").bytes]).toEqual(new Array(16).fill(0));
    expect(normalizeIp("::1")).toBe("::1");
    expect(normalizeIp("0:0:0:0:0:0:0:0")).toBe("::");
    expect(normalizeIp("0:0:0:0:0:0:0:1")).toBe("::1");
  });

  test.each([
    ["2001:DB8::1", "2001:db8::1"],
    ["2001:Db8:0:0:0:0:0:1", "2001:db8::1"],
    ["2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    ["2001:0DB8:0000:0000:0000:FF00:0042:8329", "2001:db8::ff00:42:8329"],
    ["2001:db8:1:2:3:4:5:6", "2001:db8:1:2:3:4:5:6"],
    ["2001:db8::", "2001:db8::"],
    ["2001:db8:0:0:0:0:0:0", "2001:db8::"],
    ["1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"],
    ["::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["2001:db8::0:1", "2001:db8::1"],
    ["2001:db8:0:0:1::", "2001:db8:0:0:1::"],
  ])("%p -> %p (RFC 5952)", (input, canonical) => {
    expect(normalizeIp(input)).toBe(canonical);
  });

  test("lower case output", () => {
    expect(normalizeIp("2001:DB8:ABCD:EF01::")).toBe("2001:db8:abcd:ef01::");
  });

  test("longest zero run is compressed, not the first", () => {
    expect(normalizeIp("2001:db8:0:0:1:0:0:0")).toBe("2001:db8:0:0:1::");
    expect(normalizeIp("2001:0:0:1:0:0:0:1")).toBe("2001:0:0:1::1");
  });

  test("first zero run is compressed when two runs tie", () => {
    expect(normalizeIp("2001:db8:0:0:1:0:0:1")).toBe("2001:db8::1:0:0:1");
    expect(normalizeIp("2001:0:0:1:1:0:0:1")).toBe("2001::1:1:0:0:1");
  });

  test("a single zero group is never compressed", () => {
    expect(normalizeIp("2001:db8:0:1:1:1:1:1")).toBe("2001:db8:0:1:1:1:1:1");
    expect(normalizeIp("2001:db8::1:1:1:1:1")).toBe("2001:db8:0:1:1:1:1:1");
    expect(normalizeIp("2001:db8:1:1:1:1:1:0")).toBe("2001:db8:1:1:1:1:1:0");
  });

  test("a full eight-group address parses", () => {
    expect(normalizeIp("2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff")).toBe("2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff");
  });

  test.each([
    ["2001:db8:1:2:3:4:5:6:7", "nine groups"],
    ["2001:db8:1:2:3:4:5", "seven groups without ::"],
    ["2001:db8:1:2:3:4:5:6::", "eight groups and ::"],
    ["::2001:db8:1:2:3:4:5:6", ":: and eight groups"],
    ["2001:db8:1:2::3:4:5:6", ":: standing for no group"],
    ["2001::db8::1", "two ::"],
    ["::1::", "two ::, at both ends"],
    [":::", "three colons"],
    ["2001:db8:::1", "three colons inside"],
    [":2001:db8::1", "leading single colon"],
    ["2001:db8::1:", "trailing single colon"],
    [":", "a single colon"],
    ["2001:db8::12345", "five hex digits"],
    ["02001:db8::1", "five hex digits with a leading zero"],
    ["2001:db8::g", "not hex"],
    ["2001:db8::-1", "sign"],
    ["fe80::1%eth0", "zone id"],
    ["fe80::1%1", "numeric zone id"],
    ["[2001:db8::1]", "brackets"],
    ["[2001:db8::1]:22", "brackets and a port"],
    ["2001:db8::1/64", "with a prefix"],
    [" 2001:db8::1", "leading space"],
    ["2001:db8::1 ", "trailing space"],
    ["2001:db8: :1", "inner space"],
    ["2001:db8::1:192.0.2", "embedded IPv4 with three parts"],
    ["::ffff:192.0.2.256", "embedded IPv4 above 255"],
    ["::ffff:192.0.02.1", "embedded IPv4 with a leading zero"],
    ["::192.0.2.1:1", "embedded IPv4 not at the end"],
    ["1:2:3:4:5:6:7:192.0.2.1", "embedded IPv4 after seven groups"],
    ["1:2:3:4:5:6::192.0.2.1", "embedded IPv4 with :: standing for no group"],
    ["192.0.2.1::", "IPv4 before ::"],
  ])("rejects %p (%s)", (text) => {
    expect(parseIp(text)).toBeNull();
  });

  test("rejects text longer than any address", () => {
    expect(parseIp(`${"0".repeat(40)}::1`)).toBeNull();
  });

  test("IPv4-mapped IPv6 becomes IPv4", () => {
    const a = ip("::ffff:192.0.2.1");
    expect(a.family).toBe(4);
    expect([...a.bytes]).toEqual([192, 0, 2, 1]);
    expect(a.text).toBe("192.0.2.1");
    expect(normalizeIp("::FFFF:203.0.113.5")).toBe("203.0.113.5");
    expect(normalizeIp("0:0:0:0:0:ffff:198.51.100.7")).toBe("198.51.100.7");
  });

  test("IPv4-mapped IPv6 in hex groups becomes IPv4 too", () => {
    expect(normalizeIp("::ffff:c000:201")).toBe("192.0.2.1");
  });

  test("the NAT64 well-known prefix with embedded IPv4 stays IPv6", () => {
    const a = ip("64:ff9b::192.0.2.1");
    expect(a.family).toBe(6);
    expect([...a.bytes]).toEqual([0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1]);
    /* the same address written in hex groups gives the same canonical text */
    expect(a.text).toBe(normalizeIp("64:ff9b::c000:201")!);
    expect(ip(a.text).family).toBe(6);
  });

  test("an IPv4-compatible (deprecated) address stays IPv6", () => {
    const a = ip("::192.0.2.1");
    expect(a.family).toBe(6);
    expect([...a.bytes.slice(12)]).toEqual([192, 0, 2, 1]);
  });

  test("embedded IPv4 after six groups fills the last two", () => {
    expect(normalizeIp("2001:db8:1:2:3:4:192.0.2.1")).toBe("2001:db8:1:2:3:4:c000:201");
  });
});

describe("normalizeIp", () => {
  const inputs = [
    "192.0.2.1",
    "198.51.100.255",
    "203.0.113.0",
    "0.0.0.0",
    "::",
    "::1",
    "2001:DB8::1",
    "2001:0db8:0000:0000:0000:0000:0000:0001",
    "2001:db8:0:0:1:0:0:1",
    "2001:db8:0:1:1:1:1:1",
    "2001:db8::",
    "::ffff:192.0.2.1",
    "::ffff:c000:201",
    "64:ff9b::192.0.2.1",
    "::192.0.2.1",
    "fe80::1",
    "ff02::1",
    "1:2:3:4:5:6:7::",
  ];

  test.each(inputs)("is idempotent for %p", (text) => {
    const once = normalizeIp(text);
    expect(once).not.toBeNull();
    expect(normalizeIp(once!)).toBe(once!);
  });

  test("different spellings of one address normalise to one text", () => {
    const spellings = ["2001:db8::1", "2001:DB8::1", "2001:db8:0:0:0:0:0:1", "2001:0db8::0001", "2001:db8:0::0:1"];
    expect(new Set(spellings.map(normalizeIp))).toEqual(new Set(["2001:db8::1"]));
  });

  test("returns null for what is not an address", () => {
    expect(normalizeIp("example.org")).toBeNull();
    expect(normalizeIp("localhost")).toBeNull();
    expect(normalizeIp("unknown")).toBeNull();
  });
});

describe("parseCidr", () => {
  test("an IPv4 network keeps its prefix", () => {
    const n = cidr("192.0.2.0/24");
    expect(n.family).toBe(4);
    expect(n.prefix).toBe(24);
    expect([...n.bytes]).toEqual([192, 0, 2, 0]);
    expect(n.text).toBe("192.0.2.0/24");
  });

  test.each([
    ["192.0.2.7/24", "192.0.2.0/24"],
    ["198.51.100.200/25", "198.51.100.128/25"],
    ["203.0.113.255/30", "203.0.113.252/30"],
    ["203.0.113.77/16", "203.0.0.0/16"],
    ["192.0.2.1/0", "0.0.0.0/0"],
    ["2001:db8::1/64", "2001:db8::/64"],
    ["2001:db8:1:2:3:4:5:6/64", "2001:db8:1:2::/64"],
    ["2001:db8:ffff::/33", "2001:db8:8000::/33"],
    ["2001:DB8::/32", "2001:db8::/32"],
    ["2001:db8::1/0", "::/0"],
  ])("clears host bits: %p -> %p", (input, canonical) => {
    expect(parseCidr(input)?.text).toBe(canonical);
  });

  test("a full-length prefix is written as the bare address", () => {
    expect(cidr("192.0.2.1/32").text).toBe("192.0.2.1");
    expect(cidr("192.0.2.1/32").prefix).toBe(32);
    expect(cidr("2001:db8::1/128").text).toBe("2001:db8::1");
    expect(cidr("2001:db8::1/128").prefix).toBe(128);
  });

  test("a bare address is a full-length network", () => {
    expect(cidr("203.0.113.5")).toMatchObject({ family: 4, prefix: 32, text: "203.0.113.5" });
    expect(cidr("2001:DB8::5")).toMatchObject({ family: 6, prefix: 128, text: "2001:db8::5" });
  });

  test("an IPv6 /64", () => {
    const n = cidr("2001:db8:0:1:aaaa:bbbb:cccc:dddd/64");
    expect(n.family).toBe(6);
    expect(n.prefix).toBe(64);
    expect([...n.bytes.slice(8)]).toEqual(new Array(8).fill(0));
    expect(n.text).toBe("2001:db8:0:1::/64");
  });

  test("an IPv4-mapped IPv6 network becomes an IPv4 network", () => {
    expect(cidr("::ffff:192.0.2.0/120")).toMatchObject({ family: 4, prefix: 24, text: "192.0.2.0/24" });
    expect(cidr("::ffff:192.0.2.9/128").text).toBe("192.0.2.9");
  });

  test.each([
    "192.0.2.0/33",
    "192.0.2.0/-1",
    "192.0.2.0/08",
    "192.0.2.0/00",
    "192.0.2.0/abc",
    "192.0.2.0/",
    "192.0.2.0/24/8",
    "192.0.2.0/ 24",
    "192.0.2.0/24 ",
    "192.0.2.0/+24",
    "192.0.2.0/2.5",
    "192.0.2.0/1000",
    "2001:db8::/129",
    "2001:db8::/064",
    "2001:db8::/",
    "/24",
    "192.0.2/24",
    "010.0.2.0/24",
    "fe80::%eth0/64",
    "",
  ])("rejects %p", (text) => {
    expect(parseCidr(text)).toBeNull();
  });
});

describe("cidrContains", () => {
  test("addresses inside and outside an IPv4 network", () => {
    const net = cidr("198.51.100.0/24");
    expect(cidrContains(net, ip("198.51.100.0"))).toBe(true);
    expect(cidrContains(net, ip("198.51.100.77"))).toBe(true);
    expect(cidrContains(net, ip("198.51.100.255"))).toBe(true);
    expect(cidrContains(net, ip("198.51.101.0"))).toBe(false);
    expect(cidrContains(net, ip("203.0.113.5"))).toBe(false);
  });

  test("prefixes that do not end on a byte boundary", () => {
    const net = cidr("203.0.113.64/26");
    expect(cidrContains(net, ip("203.0.113.63"))).toBe(false);
    expect(cidrContains(net, ip("203.0.113.64"))).toBe(true);
    expect(cidrContains(net, ip("203.0.113.127"))).toBe(true);
    expect(cidrContains(net, ip("203.0.113.128"))).toBe(false);
    const v6 = cidr("2001:db8:8000::/33");
    expect(cidrContains(v6, ip("2001:db8:8000::1"))).toBe(true);
    expect(cidrContains(v6, ip("2001:db8:ffff::1"))).toBe(true);
    expect(cidrContains(v6, ip("2001:db8:7fff::1"))).toBe(false);
  });

  test("a full-length network contains only its address", () => {
    const net = cidr("192.0.2.1");
    expect(cidrContains(net, ip("192.0.2.1"))).toBe(true);
    expect(cidrContains(net, ip("192.0.2.2"))).toBe(false);
    const v6 = cidr("2001:db8::1/128");
    expect(cidrContains(v6, ip("2001:db8::1"))).toBe(true);
    expect(cidrContains(v6, ip("2001:db8::2"))).toBe(false);
  });

  test("an IPv6 /64", () => {
    const net = cidr("2001:db8:0:1::/64");
    expect(cidrContains(net, ip("2001:db8:0:1::1"))).toBe(true);
    expect(cidrContains(net, ip("2001:db8:0:1:ffff:ffff:ffff:ffff"))).toBe(true);
    expect(cidrContains(net, ip("2001:db8:0:2::1"))).toBe(false);
  });

  test("/0 contains every address of its own family", () => {
    expect(cidrContains(cidr("0.0.0.0/0"), ip("203.0.113.5"))).toBe(true);
    expect(cidrContains(cidr("::/0"), ip("2001:db8::5"))).toBe(true);
  });

  test("never true across families", () => {
    expect(cidrContains(cidr("0.0.0.0/0"), ip("2001:db8::1"))).toBe(false);
    expect(cidrContains(cidr("::/0"), ip("192.0.2.1"))).toBe(false);
    /* the IPv4 bytes of ::c000:201 equal 192.0.2.1, but the families differ */
    expect(cidrContains(cidr("::/96"), ip("192.0.2.1"))).toBe(false);
    expect(cidrContains(cidr("192.0.2.0/24"), ip("::192.0.2.1"))).toBe(false);
    /* first bytes equal: 2001:db8:: starts with 0x20 0x01 */
    expect(cidrContains(cidr("32.1.0.0/16"), ip("2001:db8::1"))).toBe(false);
  });

  test("an IPv4-mapped address is contained in the IPv4 network", () => {
    expect(cidrContains(cidr("192.0.2.0/24"), ip("::ffff:192.0.2.1"))).toBe(true);
  });
});

describe("isNeverBannable", () => {
  test.each([
    "127.0.0.1",
    "127.0.0.0",
    "127.255.255.255",
    "127.1.2.3",
    "0.0.0.0",
    "0.1.2.3",
    "224.0.0.1",
    "239.255.255.255",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "ff00::",
    "ff02::1",
    "ff05::1:3",
    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "0:0:0:0:0:ffff:127.1.2.3",
    /* IPv4-compatible loopback (deprecated, but it parses) */
    "::127.0.0.1",
    "::7f00:1",
    "::127.255.255.255",
    /* link-local */
    "169.254.0.1",
    "169.254.169.254",
    "169.254.255.255",
    "::ffff:169.254.1.1",
    "fe80::1",
    "fe80::fc:ff:fe00:1",
    "febf:ffff::1",
  ])("%p is never bannable", (text) => {
    expect(isNeverBannable(ip(text))).toBe(true);
  });

  test.each([
    "192.0.2.1",
    "198.51.100.7",
    "203.0.113.5",
    "223.255.255.255",
    "128.0.0.1",
    "126.255.255.255",
    "1.0.0.0",
    "2001:db8::1",
    "2001:db8::",
    "::2",
    "::192.0.2.1",
    "feff::1",
    "::ffff:203.0.113.5",
    "169.253.255.255",
    "169.255.0.0",
    "fec0::1",
    "fe7f::1",
    "::128.0.0.1",
  ])("%p may be banned", (text) => {
    expect(isNeverBannable(ip(text))).toBe(false);
  });
});

describe("reserved networks: one table for addresses and networks", () => {
  test("every reserved network says what it is, and its first address is never bannable", () => {
    for (const r of RESERVED_NETWORKS) {
      expect(r.what).not.toBe("");
      expect(isNeverBannable(r.net)).toBe(true);
    }
  });

  test.each([
    ["127.0.0.1", "127.0.0.0/8"],
    ["0.0.0.0/0", "0.0.0.0/8"],
    ["126.0.0.0/7", "127.0.0.0/8"],
    ["169.254.7.0/24", "169.254.0.0/16"],
    ["::/0", "::"],
    ["::/96", "::"],
    ["::127.0.0.1", "::7f00:0/104"],
    ["::ffff:127.0.0.0/104", "127.0.0.0/8"],
    ["fe80::/64", "fe80::/10"],
    ["fe00::/7", "fe80::/10"],
    ["::1", "::1"],
  ])("%p overlaps %p", (net, reserved) => {
    expect(reservedOverlap(cidr(net))?.net.text).toBe(reserved);
  });

  test.each(["192.0.2.0/24", "1.0.0.0/8", "2001:db8::/32", "2000::/4", "::ffff:203.0.113.0/120", "128.0.0.0/3"])("%p overlaps none", (net) => {
    expect(reservedOverlap(cidr(net))).toBeNull();
  });
});

describe("cidrOverlaps", () => {
  test("holding, falling into, being the same; not across families", () => {
    expect(cidrOverlaps(cidr("192.0.2.0/24"), cidr("192.0.2.7"))).toBe(true);
    expect(cidrOverlaps(cidr("192.0.2.7"), cidr("192.0.2.0/24"))).toBe(true);
    expect(cidrOverlaps(cidr("192.0.2.0/24"), cidr("192.0.2.0/24"))).toBe(true);
    expect(cidrOverlaps(cidr("192.0.2.0/25"), cidr("192.0.2.128/25"))).toBe(false);
    expect(cidrOverlaps(cidr("0.0.0.0/0"), cidr("::/0"))).toBe(false);
    expect(cidrOverlaps(cidr("::/0"), cidr("2001:db8::1"))).toBe(true);
  });
});

describe("CidrSet", () => {
  test("overlapping: the entry a network holds, is or falls into", () => {
    const set = new CidrSet();
    set.add(cidr("203.0.113.7"));
    set.add(cidr("198.51.100.0/24"));
    set.add(cidr("2001:db8::1"));
    expect(set.overlapping(cidr("203.0.113.7"))?.text).toBe("203.0.113.7");
    expect(set.overlapping(cidr("203.0.113.0/24"))?.text).toBe("203.0.113.7");
    expect(set.overlapping(cidr("203.0.113.8"))).toBeNull();
    expect(set.overlapping(cidr("198.51.100.9"))?.text).toBe("198.51.100.0/24");
    expect(set.overlapping(cidr("198.51.0.0/16"))?.text).toBe("198.51.100.0/24");
    expect(set.overlapping(cidr("198.51.101.0/24"))).toBeNull();
    expect(set.overlapping(cidr("2001:db8::/32"))?.text).toBe("2001:db8::1");
    expect(set.overlapping(cidr("0.0.0.0/0"))).not.toBeNull();
  });

  test("an empty set contains nothing", () => {
    const set = new CidrSet();
    expect(set.size).toBe(0);
    expect(set.entries()).toEqual([]);
    expect(set.contains(ip("192.0.2.1"))).toBe(false);
  });

  test("exact addresses and networks of both families", () => {
    const set = new CidrSet();
    set.add(cidr("203.0.113.5"));
    set.add(cidr("198.51.100.0/24"));
    set.add(cidr("2001:db8::1"));
    set.add(cidr("2001:db8:1::/48"));
    expect(set.size).toBe(4);

    expect(set.contains(ip("203.0.113.5"))).toBe(true);
    expect(set.contains(ip("203.0.113.6"))).toBe(false);
    expect(set.contains(ip("198.51.100.99"))).toBe(true);
    expect(set.contains(ip("2001:db8::1"))).toBe(true);
    expect(set.contains(ip("2001:db8::2"))).toBe(false);
    expect(set.contains(ip("2001:db8:1:ffff::1"))).toBe(true);
    expect(set.contains(ip("2001:db8:2::1"))).toBe(false);
  });

  test("an exact address matches whatever spelling it was parsed from", () => {
    const set = new CidrSet();
    set.add(cidr("2001:DB8:0:0:0:0:0:1/128"));
    expect(set.contains(ip("2001:db8::1"))).toBe(true);
    set.add(cidr("::ffff:192.0.2.44"));
    expect(set.contains(ip("192.0.2.44"))).toBe(true);
  });

  test("the same exact address added twice counts once", () => {
    const set = new CidrSet();
    set.add(cidr("192.0.2.1"));
    set.add(cidr("192.0.2.1/32"));
    expect(set.size).toBe(1);
  });

  test("the same network added twice, in two spellings, counts once", () => {
    const set = new CidrSet();
    set.add(cidr("192.0.2.0/24"));
    set.add(cidr("192.0.2.7/24"));
    expect(set.size).toBe(1);
    expect(set.entries()).toEqual(["192.0.2.0/24"]);
  });

  test("entries lists canonical text of every entry", () => {
    const set = new CidrSet();
    set.add(cidr("192.0.2.7/24"));
    set.add(cidr("2001:DB8::5"));
    set.add(cidr("203.0.113.9/32"));
    expect(set.entries().sort()).toEqual(["192.0.2.0/24", "2001:db8::5", "203.0.113.9"]);
  });

  test("an IPv4 network does not contain an IPv6 address with the same leading bytes", () => {
    const set = new CidrSet();
    set.add(cidr("32.1.0.0/16"));
    expect(set.contains(ip("2001:db8::1"))).toBe(false);
  });
});

describe("parseLoggedIp", () => {
  test.each(["192.0.2.7", "0.0.0.0", "255.255.255.255", "256.0.0.1", "1.2.3", "1.2.3.4.5", "1..2.3", "1.2.3.", ".1.2.3", "01.2.3.4", "1.2.3.4 ", "2001:db8::1", "2001:DB8::1", "::ffff:192.0.2.7", "192.0.2.07", "192.0.2.7.example.net", "fe80::1%eth0", ""])("reads %p as parseIp does, again and again", (text) => {
    expect(parseLoggedIp(text)).toEqual(parseIp(text));
    expect(parseLoggedIp(text)).toEqual(parseIp(text));
  });

  test("an address in canonical form is parsed once", () => {
    expect(parseLoggedIp("198.51.100.23")).toBe(parseLoggedIp("198.51.100.23")!);
  });

  test("a flood of distinct addresses keeps reading right as the map starts afresh", () => {
    for (let i = 0; i < 10_000; i++) {
      const text = `2001:db8:${(i >> 8).toString(16)}:1::${(i & 0xff).toString(16)}`;
      expect(parseLoggedIp(text)).toEqual(parseIp(text));
      const v4 = `198.51.${i >> 8}.${i & 0xff}`;
      expect(parseLoggedIp(v4)).toEqual(parseIp(v4));
    }
  });
});
