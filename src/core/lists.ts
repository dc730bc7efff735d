/**
 * Static lists: `etc/whitelist` and `etc/blacklist`, one IP or CIDR a line, `#` comments.
 * Together with loopback and this machine's own addresses they decide who is protected
 * (never counted, never banned) and who is banned at sight.
 */
import { existsSync, readFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { ConfigError } from "./errors";
import { CidrSet, type Ip, isNeverBannable, parseCidr, parseIp } from "./ip";

export function parseListFile(file: string, text: string): CidrSet {
  const set = new CidrSet();
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/#.*/, "").trim();
    if (line === "") return;
    const net = parseCidr(line);
    if (!net) throw new ConfigError(`${file}:${i + 1}: ${JSON.stringify(line)} is not an IPv4/IPv6 address or CIDR`);
    set.add(net);
  });
  return set;
}

function readList(file: string): CidrSet {
  return existsSync(file) ? parseListFile(file, readFileSync(file, "utf8")) : new CidrSet();
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

export class Lists {
  constructor(
    readonly whitelist: CidrSet,
    readonly blacklist: CidrSet,
    readonly own: CidrSet,
  ) {}

  static load(whitelistFile: string, blacklistFile: string): Lists {
    return new Lists(readList(whitelistFile), readList(blacklistFile), ownAddresses());
  }

  /** Why an address must never be counted or banned, or null when it may be. */
  protection(ip: Ip): Protection {
    if (isNeverBannable(ip)) return "reserved"; /* loopback, unspecified, multicast */
    if (this.own.contains(ip)) return "own";
    if (this.whitelist.contains(ip)) return "whitelist";
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
