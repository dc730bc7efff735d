/**
 * Static lists: `etc/whitelist` and `etc/blacklist`, one IP or CIDR a line, `#` comments.
 * Together with loopback and this machine's own addresses they decide who is protected
 * (never counted, never banned) and who is banned at sight.
 *
 * A list that could cut the server off is refused whole, with its file and line: a blacklist
 * entry that is or covers a reserved (loopback, link-local, unspecified, multicast) or
 * whitelisted address, and an entry of either list wider than WIDEST allows. A blacklist entry
 * that holds an address of this machine is left out while it does (Lists.leftOut): interfaces
 * gain and lose addresses while watcher runs (DHCP, a link coming up), and a boot must not fail,
 * nor the kernel drop the machine's own traffic, for that. Downloaded blocklists go through the
 * same test (Lists.dropConflict) and leave such entries out.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { type ConfigFiles, diskFiles, savedFiles } from "./config-files";
import { defaultRunDir, type Paths } from "./layout";
import { interfaceAddresses } from "./interfaces";
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

/** Addresses configured on this machine's interfaces, up or down (interfaceAddresses). */
export function ownAddresses(): CidrSet {
  const set = new CidrSet();
  for (const address of interfaceAddresses()) {
    const net = parseCidr(address);
    if (net) set.add(net);
  }
  return set;
}

export type Protection = "whitelist" | "own" | "reserved" | null;

/** A protection in words, after "it": null for none. */
export function protectionWords(p: Protection): string | null {
  return p === "whitelist" ? "is whitelisted" : p === "own" ? "is an address of this machine" : p === "reserved" ? "is a reserved address (loopback, link-local, unspecified, multicast)" : null;
}

/** "is", "covers" or "is within": how `net` relates to `other`, which it overlaps. */
function relation(net: Cidr, other: Cidr): string {
  return net.prefix === other.prefix ? "is" : net.prefix < other.prefix ? "covers" : "is within";
}

function tooWide(net: Cidr, widest: Record<Family, number>, list: string): string | null {
  const limit = widest[net.family];
  return net.prefix < limit ? `is wider than /${limit}, the widest network ${list} may hold` : null;
}

export class Lists {
  private ownNow = new CidrSet();
  private dropped = new CidrSet();
  private ownConflicts: string[] = [];

  /** `listed`: the blacklist's entries; those that hold an address in `own` are left out (leftOut). */
  constructor(
    readonly whitelist: CidrSet,
    private readonly listed: CidrSet,
    own: CidrSet,
    private readonly blacklistFile = "the blacklist",
  ) {
    this.setOwn(own);
  }

  /** this machine's addresses, as last read */
  get own(): CidrSet {
    return this.ownNow;
  }

  /** the blacklist in force: its entries but those that hold an address of this machine */
  get blacklist(): CidrSet {
    return this.dropped;
  }

  /** why each blacklist entry left out is, in words (`FILE: "192.0.2.0/24" covers 192.0.2.1, an address of this machine: left out while it is`) */
  get leftOut(): readonly string[] {
    return this.ownConflicts;
  }

  /** This machine's addresses as they are now (interfaces gain and lose them); true when they changed. */
  refreshOwn(own: CidrSet): boolean {
    const now = own.entries().sort().join(" ");
    if (now === this.ownNow.entries().sort().join(" ")) return false;
    this.setOwn(own);
    return true;
  }

  private setOwn(own: CidrSet): void {
    this.ownNow = own;
    this.dropped = new CidrSet();
    this.ownConflicts = [];
    for (const net of this.listed.values()) {
      const mine = own.overlapping(net);
      if (mine) this.ownConflicts.push(`${this.blacklistFile}: ${JSON.stringify(net.text)} ${relation(net, mine)} ${mine.text}, an address of this machine: left out while it is`);
      else this.dropped.add(net);
    }
  }

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
    const whitelist = setOf(white.entries);
    const listed = new CidrSet();
    for (const e of black.entries) {
      const conflict = refusal(e.net, whitelist, null);
      if (conflict) problems.push(`${blacklistFile}:${e.line}: ${JSON.stringify(e.text)} ${conflict}: the blacklist must never drop it; remove or narrow the line`);
      else listed.add(e.net);
    }
    if (problems.length) throw new ConfigError(problems.join("\n"));
    return new Lists(whitelist, listed, own, blacklistFile);
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
    return refusal(net, this.whitelist, this.own);
  }

  isBlacklisted(ip: Ip): boolean {
    return this.blacklist.contains(ip);
  }
}

/** Why `net` must not go into a set that drops: too wide, reserved, one of `own` (when given), whitelisted; else null. */
function refusal(net: Cidr, whitelist: CidrSet, own: CidrSet | null): string | null {
  const wide = tooWide(net, WIDEST.drop, "a drop list");
  if (wide) return wide;
  const reserved = reservedOverlap(net);
  if (reserved) return `${relation(net, reserved.net)} ${reserved.net.text} (${reserved.what})`;
  const mine = own?.overlapping(net);
  if (mine) return `${relation(net, mine)} ${mine.text}, an address of this machine`;
  const white = whitelist.overlapping(net);
  if (white) return `${relation(net, white)} whitelisted ${white.text}`;
  return null;
}

/** Parse an address given by an operator (CLI): canonical Ip or a usage error. */
export function parseOperatorAddress(text: string): Ip {
  const ip = parseIp(text);
  if (!ip) throw new ConfigError(`${JSON.stringify(text)} is not an IPv4 or IPv6 address`);
  return ip;
}
