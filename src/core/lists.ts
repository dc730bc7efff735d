/**
 * Static lists: `etc/whitelist` and `etc/blacklist`, one IP or CIDR a line, `#` comments.
 * Together with loopback and this machine's own addresses they decide who is protected
 * (never counted, never banned) and who is banned at sight.
 *
 * A list that could cut the server off is refused whole, with its file and line: a blacklist
 * entry that is or covers a reserved (loopback, link-local, unspecified, multicast), own or
 * whitelisted address, and an entry of either list wider than WIDEST allows. Downloaded
 * blocklists go through the same test (Lists.dropConflict) and leave such entries out.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { type ConfigFiles, diskFiles, savedFiles } from "./config-files";
import { defaultRunDir, type Paths } from "./layout";
import { networkInterfaces } from "node:os";
import { ConfigError } from "./errors";
import { type Cidr, CidrSet, type Family, type Ip, isNeverBannable, parseCidr, parseIp, reservedOverlap } from "./ip";

/**
 * The widest network (shortest prefix) each kind of list may hold. Drops (the blacklist and
 * downloaded blocklists): IPv4 /8, the largest block ever given to one network; IPv6 /16,
 * wider than any one network's allocation (the largest are /19, and Spamhaus DROPv6 lists
 * /29s) and narrower than a registry's pool (/12). The whitelist: IPv4 /8 (10.0.0.0/8) and IPv6
 * /7 (fc00::/7, unique local addresses), the widest private ranges; anything wider, 0.0.0.0/0
 * or 2000::/3, would exempt much of the Internet from every ban.
 */
export const WIDEST: { readonly drop: Record<Family, number>; readonly whitelist: Record<Family, number> } = {
  drop: { 4: 8, 6: 16 },
  whitelist: { 4: 8, 6: 7 },
};

interface Entry {
  readonly net: Cidr;
  /** 1-based */
  readonly line: number;
  readonly text: string;
}

/** Entries, and a message `file:line: ...` for each line that is not an address or network. */
function parseEntries(file: string, text: string): { entries: Entry[]; problems: string[] } {
  const entries: Entry[] = [];
  const problems: string[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/#.*/, "").trim();
    if (line === "") return;
    const net = parseCidr(line);
    if (net) entries.push({ net, line: i + 1, text: line });
    else problems.push(`${file}:${i + 1}: ${JSON.stringify(line)} is not an IPv4/IPv6 address or CIDR`);
  });
  return { entries, problems };
}

function setOf(entries: readonly Entry[]): CidrSet {
  const set = new CidrSet();
  for (const e of entries) set.add(e.net);
  return set;
}

/** A list file's networks; a ConfigError naming every bad line. Protection is Lists.load's business. */
export function parseListFile(file: string, text: string): CidrSet {
  const { entries, problems } = parseEntries(file, text);
  if (problems.length) throw new ConfigError(problems.join("\n"));
  return setOf(entries);
}

function readEntries(file: string, files: ConfigFiles): { entries: Entry[]; problems: string[] } {
  const text = files.read(file);
  return text === null ? { entries: [], problems: [] } : parseEntries(file, text);
}

/**
 * A whitelist gone from disk that the configuration in force of a module still holds (its copy in
 * var/run/MODULE.in-force.json) is refused, so the reload, restart or check that meets it keeps
 * what runs: a stray rm or a deployment that misses the file must not make the networks it held
 * bannable. Dropping them on purpose takes an empty file.
 */
function refuseLostWhitelist(paths: Pick<Paths, "root" | "whitelist">): void {
  const runDir = defaultRunDir(paths.root);
  let names: string[];
  try {
    names = readdirSync(runDir).filter((n) => n.endsWith(".in-force.json"));
  } catch {
    return; /* nothing has run here */
  }
  for (const name of names) {
    const text = savedFiles(join(runDir, name))?.read(paths.whitelist);
    const held = text ? parseEntries(paths.whitelist, text).entries.length : 0;
    if (held > 0) {
      throw new ConfigError(`${paths.whitelist}: not there, but the configuration in force (${join(runDir, name)}) whitelists ${held} ${held === 1 ? "entry" : "entries"} from it: put it back, or leave an empty file to whitelist nothing`);
    }
  }
}

/** Addresses configured on this machine's interfaces. */
export function ownAddresses(): CidrSet {
  const set = new CidrSet();
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      const net = parseCidr(a.address);
      if (net) set.add(net);
    }
  }
  return set;
}

export type Protection = "whitelist" | "own" | "reserved" | null;

/** "is", "covers" or "is within": how `net` relates to `other`, which it overlaps. */
function relation(net: Cidr, other: Cidr): string {
  return net.prefix === other.prefix ? "is" : net.prefix < other.prefix ? "covers" : "is within";
}

function tooWide(net: Cidr, widest: Record<Family, number>, list: string): string | null {
  const limit = widest[net.family];
  return net.prefix < limit ? `is wider than /${limit}, the widest network ${list} may hold` : null;
}

export class Lists {
  constructor(
    readonly whitelist: CidrSet,
    readonly blacklist: CidrSet,
    readonly own: CidrSet,
  ) {}

  /**
   * Read and check both lists; a ConfigError names every refused line (file:line). `own` is
   * this machine's addresses (a parameter for tests).
   */
  /**
   * The root's lists (`paths.whitelist`, `paths.blacklist`) with this machine's addresses. A
   * whitelist file that is not there is an empty whitelist, unless a module's configuration in
   * force was read with entries from it (lostWhitelist).
   */
  static of(paths: Pick<Paths, "root" | "whitelist" | "blacklist">, files: ConfigFiles = diskFiles): Lists {
    if (files.read(paths.whitelist) === null) refuseLostWhitelist(paths);
    return Lists.load(paths.whitelist, paths.blacklist, ownAddresses(), files);
  }

  static load(whitelistFile: string, blacklistFile: string, own: CidrSet = ownAddresses(), files: ConfigFiles = diskFiles): Lists {
    const white = readEntries(whitelistFile, files);
    const black = readEntries(blacklistFile, files);
    const problems = [...white.problems];
    for (const e of white.entries) {
      const wide = tooWide(e.net, WIDEST.whitelist, "a whitelist");
      if (wide) problems.push(`${whitelistFile}:${e.line}: ${JSON.stringify(e.text)} ${wide}: narrow it`);
    }
    problems.push(...black.problems);
    const lists = new Lists(setOf(white.entries), new CidrSet(), own);
    for (const e of black.entries) {
      const conflict = lists.dropConflict(e.net);
      if (conflict) problems.push(`${blacklistFile}:${e.line}: ${JSON.stringify(e.text)} ${conflict}: the blacklist must never drop it; remove or narrow the line`);
      else lists.blacklist.add(e.net);
    }
    if (problems.length) throw new ConfigError(problems.join("\n"));
    return lists;
  }

  /** Why an address must never be counted or banned, or null when it may be. */
  protection(ip: Ip): Protection {
    if (isNeverBannable(ip)) return "reserved"; /* loopback, unspecified, link-local, multicast */
    if (this.own.contains(ip)) return "own";
    if (this.whitelist.contains(ip)) return "whitelist";
    return null;
  }

  /**
   * Why `net` must not go into a set that drops (the blacklist, a blocklist), or null when it
   * may: it is wider than WIDEST.drop, or it is, covers or falls into a reserved, own or
   * whitelisted address. For a single address this is protection(), in words.
   */
  dropConflict(net: Cidr): string | null {
    const wide = tooWide(net, WIDEST.drop, "a drop list");
    if (wide) return wide;
    const reserved = reservedOverlap(net);
    if (reserved) return `${relation(net, reserved.net)} ${reserved.net.text} (${reserved.what})`;
    const own = this.own.overlapping(net);
    if (own) return `${relation(net, own)} ${own.text}, an address of this machine`;
    const white = this.whitelist.overlapping(net);
    if (white) return `${relation(net, white)} whitelisted ${white.text}`;
    return null;
  }

  isBlacklisted(ip: Ip): boolean {
    return this.blacklist.contains(ip);
  }
}

/** Parse an address given by an operator (CLI): canonical Ip or a usage error. */
export function parseOperatorAddress(text: string): Ip {
  const ip = parseIp(text);
  if (!ip) throw new ConfigError(`${JSON.stringify(text)} is not an IPv4 or IPv6 address`);
  return ip;
}
