/**
 * Fleet protocol over Redis (or Valkey) >= 7: what every node shares, and how it is signed.
 *
 * - `<prefix>:decisions`  stream of decisions (ban/unban), trimmed approximately by length
 * - `<prefix>:active`     sorted set: banned address → until (epoch s), for a full sync
 * - `<prefix>:payload`    hash: banned address → its last signed ban decision
 * - `<prefix>:affairs:<module>:<address>`  fleet-wide affair count, expires after findTime
 * - `<prefix>:node:<name>` heartbeat with a TTL; `<prefix>:nodes` every node ever seen
 *
 * The default prefix `{watcher}` is a Cluster hash tag: all keys land in one slot.
 * Every decision carries an HMAC-SHA256 over its fields with the fleet's shared key; a
 * decision without a valid one is ignored, so write access to Redis alone bans nobody.
 */
import type { RedisClient } from "bun";
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { FLEET_NAME, type FleetConfig, MODULE_NAME, type ModuleName } from "../core/config";
import { ConfigError } from "../core/errors";
import { type Cidr, type Ip, parseCidr, parseIp } from "../core/ip";
import type { Lists } from "../core/lists";

export type DecisionAction = "ban" | "unban";

export interface Decision {
  /** unique across the fleet: origin node + random */
  readonly id: string;
  readonly action: DecisionAction;
  /** canonical address, or network: a prefix ban (`2001:db8:1:2::/64`) or a network banned by hand */
  readonly address: string;
  readonly module: ModuleName;
  /** epoch seconds the ban lasts until; 0 for an unban */
  readonly until: number;
  readonly rule: string;
  readonly origin: string;
  /** epoch seconds it was decided */
  readonly time: number;
}

export const FLEET_SET = "watcher_fleet";
const PROTOCOL = "1";

/** What a decision names, when written canonically: an address, or a network (`a.b.c.0/24`); else null. */
export function decisionTarget(address: string): { readonly ip: Ip } | { readonly net: Cidr } | null {
  if (!address.includes("/")) {
    const ip = parseIp(address);
    return ip?.text === address ? { ip } : null;
  }
  const net = parseCidr(address);
  return net?.text === address ? { net } : null;
}

/**
 * Why this node must not drop what a decision names, or null when it may: an address this node
 * protects (whitelisted, its own, loopback), or a network that holds one. Local policy wins.
 */
export function fleetRefusal(lists: Pick<Lists, "protection" | "dropConflict">, address: string): string | null {
  const target = decisionTarget(address);
  if (!target) return "reserved";
  return "ip" in target ? lists.protection(target.ip) : lists.dropConflict(target.net);
}

export function newDecision(origin: string, module: ModuleName, action: DecisionAction, address: string, until: number, rule: string, time: number): Decision {
  return { id: `${origin}-${randomBytes(8).toString("hex")}`, action, address, module, until, rule, origin, time };
}

export function fleetKeys(prefix: string) {
  return {
    stream: `${prefix}:decisions`,
    active: `${prefix}:active`,
    payload: `${prefix}:payload`,
    nodes: `${prefix}:nodes`,
    node: (name: string) => `${prefix}:node:${name}`,
    affairs: (module: string, address: string) => `${prefix}:affairs:${module}:${address}`,
  };
}

/** The shared secret: at least 16 bytes, readable by nobody but its owner and group. */
export function loadFleetKey(file: string): Buffer {
  let key: Buffer;
  try {
    const mode = statSync(file).mode;
    if (mode & 0o004) throw new ConfigError(`${file}: the fleet key is readable by everyone; chmod 0600 it`);
    key = Buffer.from(readFileSync(file, "utf8").trim());
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`${file}: cannot read the fleet key: ${(e as Error).message} (make one with: head -c 32 /dev/urandom | base64 > ${file}; chmod 0600 ${file})`);
  }
  if (key.length < 16) throw new ConfigError(`${file}: the fleet key is ${key.length} bytes; expected at least 16 (head -c 32 /dev/urandom | base64)`);
  return key;
}

function canonical(d: Decision): string {
  return [PROTOCOL, d.id, d.action, d.address, d.module, d.until, d.rule, d.origin, d.time].join("\n");
}

function hmac(key: Buffer, d: Decision): string {
  return createHmac("sha256", key).update(canonical(d)).digest("hex");
}

/** Stream entry fields of a decision, signature last. */
export function signedFields(key: Buffer, d: Decision): string[] {
  return ["v", PROTOCOL, "id", d.id, "action", d.action, "address", d.address, "module", d.module, "until", String(d.until), "rule", d.rule, "origin", d.origin, "time", String(d.time), "sig", hmac(key, d)];
}

const INTEGER = /^(0|[1-9][0-9]{0,11})$/;

/** A decision from stream entry fields, or null when a field is missing, malformed or the signature is not ours. */
export function verifiedDecision(key: Buffer, fields: readonly string[]): Decision | null {
  const f = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!);
  const [v, id, action, address, module, until, rule, origin, time, sig] = ["v", "id", "action", "address", "module", "until", "rule", "origin", "time", "sig"].map((k) => f.get(k));
  if (v !== PROTOCOL || !id || !sig || !rule || !origin || !until || !time) return null;
  if (action !== "ban" && action !== "unban") return null;
  if (!MODULE_NAME.test(module ?? "") || !INTEGER.test(until) || !INTEGER.test(time)) return null;
  if (!FLEET_NAME.test(origin) || !FLEET_NAME.test(rule) || id.length > 100) return null;
  if (!decisionTarget(address ?? "")) return null;
  const d: Decision = { id, action, address: address!, module: module as ModuleName, until: Number(until), rule, origin, time: Number(time) };
  const expected = Buffer.from(hmac(key, d));
  const given = Buffer.from(sig);
  return given.length === expected.length && timingSafeEqual(given, expected) ? d : null;
}

/** Publish decisions: the stream, then the active set. Auto-pipelined: one round trip for the lot. */
export async function publishDecisions(client: RedisClient, s: FleetConfig, key: Buffer, decisions: readonly Decision[]): Promise<number> {
  const k = fleetKeys(s.prefix);
  await Promise.all(
    decisions.flatMap((d) => {
      const fields = signedFields(key, d);
      const xadd = client.send("XADD", [k.stream, "MAXLEN", "~", String(s.streamLength), "*", ...fields]);
      return d.action === "ban"
        ? [xadd, client.send("ZADD", [k.active, String(d.until), d.address]), client.send("HSET", [k.payload, d.address, JSON.stringify(fields)])]
        : [xadd, client.send("ZREM", [k.active, d.address]), client.send("HDEL", [k.payload, d.address])];
    }),
  );
  return decisions.length;
}

/** Stream ids are `ms-seq`; compare them as numbers. */
export function compareStreamIds(a: string, b: string): number {
  const [am, as] = a.split("-").map(BigInt);
  const [bm, bs] = b.split("-").map(BigInt);
  return am! !== bm! ? (am! < bm! ? -1 : 1) : as! === bs! ? 0 : (as ?? 0n) < (bs ?? 0n) ? -1 : 1;
}
