/**
 * Strict IPv4/IPv6 parsing and normalisation. Everything that reaches the database or a
 * firewall command has been through parseIp: IPv4 is dotted decimal without leading zeros,
 * IPv6 is RFC 5952 text (lower case, longest zero run compressed), IPv4-mapped IPv6 becomes
 * IPv4, zone ids and anything else are rejected.
 */
export type Family = 4 | 6;

export interface Ip {
  readonly family: Family;
  readonly bytes: Uint8Array;
  /** canonical text */
  readonly text: string;
}

export interface Cidr {
  readonly family: Family;
  readonly bytes: Uint8Array;
  readonly prefix: number;
  /** canonical text, `a.b.c.d/n`, or the bare address for a full-length prefix */
  readonly text: string;
}

/** into `out` at `at` when given (a kernel message being written), else into a new array */
function parseIpv4Bytes(s: string, out: Uint8Array = new Uint8Array(4), at = 0): Uint8Array | null {
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 46; /* '.' terminates the last octet */
    if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return null; /* leading zero: octal to inet_aton, refuse */
      value = value * 10 + (c - 48);
      if (value > 255) return null;
      digits++;
    } else if (c === 46) {
      if (digits === 0 || part > 3) return null;
      out[at + part++] = value;
      value = 0;
      digits = 0;
    } else {
      return null;
    }
  }
  return part === 4 ? out : null;
}

function parseIpv6Bytes(s: string): Uint8Array | null {
  if (s.length < 2 || s.length > 45) return null;
  const groups: number[] = [];
  let gap = -1;
  let i = 0;
  if (s.startsWith("::")) {
    gap = 0;
    i = 2;
    if (s.length === 2) return new Uint8Array(16);
  } else if (s.charCodeAt(0) === 58) {
    return null;
  }
  while (i < s.length) {
    let j = i;
    let value = 0;
    while (j < s.length && j - i < 5) {
      const c = s.charCodeAt(j);
      let d: number;
      if (c >= 48 && c <= 57) d = c - 48;
      else if (c >= 97 && c <= 102) d = c - 87;
      else if (c >= 65 && c <= 70) d = c - 55;
      else break;
      value = value * 16 + d;
      j++;
    }
    const next = j < s.length ? s.charCodeAt(j) : -1;
    if (next === 46) {
      /* trailing dotted IPv4 takes the last two groups */
      const v4 = parseIpv4Bytes(s.slice(i));
      if (!v4 || groups.length > 6) return null;
      groups.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      i = s.length;
      break;
    }
    if (j === i || j - i > 4) return null;
    groups.push(value);
    if (next === -1) {
      i = j;
      break;
    }
    if (next !== 58) return null;
    if (j + 1 < s.length && s.charCodeAt(j + 1) === 58) {
      if (gap >= 0) return null;
      gap = groups.length;
      i = j + 2;
    } else {
      if (j + 1 === s.length) return null; /* trailing single colon */
      i = j + 1;
    }
  }
  if (gap >= 0 ? groups.length > 7 : groups.length !== 8) return null;
  const full: number[] = gap >= 0 ? [...groups.slice(0, gap), ...Array(8 - groups.length).fill(0), ...groups.slice(gap)] : groups;
  const out = new Uint8Array(16);
  for (let g = 0; g < 8; g++) {
    out[g * 2] = full[g]! >> 8;
    out[g * 2 + 1] = full[g]! & 0xff;
  }
  return out;
}

function formatIpv4(b: Uint8Array): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

function formatIpv6(b: Uint8Array): string {
  /* RFC 5952: compress the longest run of two or more zero groups, the first on a tie */
  let bestStart = -1;
  let bestLength = 1;
  for (let g = 0; g < 8; ) {
    if (b[g * 2] !== 0 || b[g * 2 + 1] !== 0) {
      g++;
      continue;
    }
    let end = g;
    while (end < 8 && b[end * 2] === 0 && b[end * 2 + 1] === 0) end++;
    if (end - g > bestLength) {
      bestStart = g;
      bestLength = end - g;
    }
    g = end;
  }
  let text = "";
  for (let g = 0; g < 8; g++) {
    if (g === bestStart) {
      text += "::";
      g += bestLength - 1;
      continue;
    }
    if (text !== "" && !text.endsWith(":")) text += ":";
    text += ((b[g * 2]! << 8) | b[g * 2 + 1]!).toString(16);
  }
  return text;
}

function isIpv4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/**
 * The address's bytes in network order, written into `into` at `at`, without its canonical text
 * (a kernel message): how many (4 or 16), or 0 when it is not an address. `into` has room for 16.
 */
export function writeAddressBytes(text: string, into: Uint8Array, at: number): number {
  if (!text.includes(":")) return parseIpv4Bytes(text, into, at) ? 4 : 0;
  const b = parseIpv6Bytes(text);
  if (!b) return 0;
  into.set(b, at);
  return 16;
}

/** Parse one address; null for anything that is not a plain IPv4 or IPv6 address. */
export function parseIp(text: string): Ip | null {
  if (text.length === 0 || text.length > 45) return null;
  if (text.includes(":")) {
    const b = parseIpv6Bytes(text);
    if (!b) return null;
    if (isIpv4Mapped(b)) {
      const v4 = b.slice(12);
      return { family: 4, bytes: v4, text: formatIpv4(v4) };
    }
    return { family: 6, bytes: b, text: formatIpv6(b) };
  }
  const b = parseIpv4Bytes(text);
  return b ? { family: 4, bytes: b, text: formatIpv4(b) } : null;
}

/** Addresses lately read from log lines: a log names the same clients again and again. */
const lately = new Map<string, Ip>();
/** the same for IPv4, by the address as a number: no string to hash (most lines' case) */
const latelyV4 = new Map<number, Ip>();
/** then a map starts afresh: a flood of new addresses costs a parse each, never memory */
const MAX_LATELY = 4096;

/**
 * The IPv4 address `text` as a 32-bit number, or -1 when it is not one as parseIpv4Bytes reads
 * it (four decimal octets, no leading zeros): such text is canonical, the number names it.
 */
function ipv4Number(text: string): number {
  if (text.length < 7 || text.length > 15) return -1;
  let n = 0;
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return -1;
      value = value * 10 + (c - 48);
      if (value > 255) return -1;
      digits++;
    } else if (c === 46 && digits > 0 && part < 3) {
      n = n * 256 + value;
      part++;
      value = 0;
      digits = 0;
    } else return -1;
  }
  return part === 3 && digits > 0 ? n * 256 + value : -1;
}

/**
 * parseIp for an address a rule read in a log line (the hot path: a Uint8Array and a formatted
 * text per line otherwise): an address written in its canonical form is parsed once and its Ip
 * handed out again (Ips are never changed). The maps keep only the Ip's own text, never the
 * line's: a slice of the line would keep the whole read chunk alive.
 */
export function parseLoggedIp(text: string): Ip | null {
  const v4 = ipv4Number(text);
  if (v4 >= 0) {
    let ip = latelyV4.get(v4);
    if (ip === undefined) {
      if (latelyV4.size >= MAX_LATELY) latelyV4.clear();
      ip = parseIp(text)!;
      latelyV4.set(v4, ip);
    }
    return ip;
  }
  const known = lately.get(text);
  if (known !== undefined) return known;
  const ip = parseIp(text);
  if (ip !== null && ip.text === text) {
    if (lately.size >= MAX_LATELY) lately.clear();
    lately.set(ip.text, ip);
  }
  return ip;
}

/** Canonical text of an address, or null when it is not one. */
export function normalizeIp(text: string): string | null {
  return parseIp(text)?.text ?? null;
}

function maskBytes(bytes: Uint8Array, prefix: number): Uint8Array {
  const out = bytes.slice();
  for (let i = 0; i < out.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    out[i]! &= keep === 8 ? 0xff : (0xff << (8 - keep)) & 0xff;
  }
  return out;
}

/**
 * Parse `address` or `address/prefix`. Host bits are cleared (`192.0.2.7/24` is
 * `192.0.2.0/24`), as the kernel would; an IPv4-mapped IPv6 network becomes IPv4.
 */
export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf("/");
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!ip) return null;
  const bits = ip.family === 4 ? 32 : 128;
  let prefix = bits;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    prefix = Number(p);
    if (ip.family === 4 && text.slice(0, slash).includes(":")) prefix -= 96; /* ::ffff:a.b.c.d/120 */
    if (prefix < 0 || prefix > bits) return null;
  }
  return networkOf(ip, prefix);
}

/** The network of `prefix` bits (within the address's family: 0-32 or 0-128) that holds `ip`. */
export function networkOf(ip: Ip, prefix: number): Cidr {
  const bits = ip.family === 4 ? 32 : 128;
  const bytes = maskBytes(ip.bytes, prefix);
  const addr = ip.family === 4 ? formatIpv4(bytes) : formatIpv6(bytes);
  return { family: ip.family, bytes, prefix, text: prefix === bits ? addr : `${addr}/${prefix}` };
}

export function cidrContains(net: Cidr, ip: Ip): boolean {
  if (net.family !== ip.family) return false;
  const full = net.prefix >> 3;
  for (let i = 0; i < full; i++) if (net.bytes[i] !== ip.bytes[i]) return false;
  const rest = net.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (ip.bytes[full]! & mask) === net.bytes[full];
}

/** Whether two networks share an address: one holds the other, or they are the same. */
export function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  return a.prefix <= b.prefix ? cidrContains(a, b) : cidrContains(b, a);
}

export interface ReservedNetwork {
  readonly net: Cidr;
  /** what it is, for an operator: "loopback", "link-local" ... */
  readonly what: string;
}

/**
 * Networks no remote attacker sends from, and which no ban, list or blocklist may drop: the
 * one table behind isNeverBannable (single addresses, the live pipeline) and
 * reservedOverlap (networks: the static lists and downloaded blocklists). IPv4-mapped
 * addresses (::ffff:127.0.0.1) are IPv4 once parsed, so 127.0.0.0/8 covers them; the
 * deprecated IPv4-compatible forms of loopback (::127.0.0.1) are listed on their own.
 */
export const RESERVED_NETWORKS: readonly ReservedNetwork[] = (
  [
    ["0.0.0.0/8", "unspecified (\"this network\")"],
    ["127.0.0.0/8", "loopback"],
    ["169.254.0.0/16", "link-local"],
    ["224.0.0.0/4", "multicast"],
    ["240.0.0.0/4", "reserved and broadcast"],
    ["::/128", "unspecified"],
    ["::1/128", "loopback"],
    ["::127.0.0.0/104", "IPv4-compatible loopback"],
    ["fe80::/10", "link-local"],
    ["ff00::/8", "multicast"],
  ] as const
).map(([text, what]) => ({ net: parseCidr(text)!, what }));

/**
 * Addresses that are never a remote attacker: loopback (also ::127.0.0.1, ::ffff:127.0.0.1),
 * unspecified, link-local, multicast, broadcast (RESERVED_NETWORKS).
 */
export function isNeverBannable(ip: Ip): boolean {
  for (const r of RESERVED_NETWORKS) if (cidrContains(r.net, ip)) return true;
  return false;
}

/** The reserved network `net` is, holds or falls into, or null. */
export function reservedOverlap(net: Cidr): ReservedNetwork | null {
  return RESERVED_NETWORKS.find((r) => cidrOverlaps(r.net, net)) ?? null;
}

/** A set of networks with a containment test; small lists, checked in order. */
export class CidrSet {
  private readonly nets: Cidr[] = [];
  /** full-length entries by their canonical text */
  private readonly exact = new Map<string, Cidr>();

  add(net: Cidr): void {
    if (net.prefix === (net.family === 4 ? 32 : 128)) this.exact.set(net.text, net);
    else if (!this.nets.some((n) => n.text === net.text)) this.nets.push(net);
  }

  get size(): number {
    return this.exact.size + this.nets.length;
  }

  contains(ip: Ip): boolean {
    if (this.exact.has(ip.text)) return true;
    for (const net of this.nets) if (cidrContains(net, ip)) return true;
    return false;
  }

  /** An entry that `net` holds, is, or falls into; null when they share no address. */
  overlapping(net: Cidr): Cidr | null {
    if (net.prefix === (net.family === 4 ? 32 : 128)) {
      const same = this.exact.get(net.text);
      if (same) return same;
    } else {
      for (const e of this.exact.values()) if (cidrContains(net, e)) return e;
    }
    return this.nets.find((n) => cidrOverlaps(n, net)) ?? null;
  }

  /** every entry */
  values(): Cidr[] {
    return [...this.exact.values(), ...this.nets];
  }

  /** canonical text of every entry */
  entries(): string[] {
    return [...this.exact.keys(), ...this.nets.map((n) => n.text)];
  }
}
