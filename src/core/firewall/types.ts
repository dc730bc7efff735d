/**
 * The one interface every firewall backend implements (nftables, ipset + iptables, dry-run).
 * A backend knows sets and addresses, nothing of rules or modules. Every address handed to
 * it has been through core/ip (validated, canonical); timeouts are whole seconds.
 *
 * A logical set (`watcher_LG`) holds IPv4 and IPv6; a kernel backend keeps it as two sets,
 * `watcher_LG_v4` and `watcher_LG_v6`. A set of kind `addresses` (a module's bans) also takes
 * networks with timeouts (prefix bans, e.g. a rotating IPv6 /64): a kernel backend keeps those
 * in two more sets, `_n4` and `_n6` (an nftables interval set, an ipset hash:net), so single
 * addresses stay in a plain hash. The whitelist set's addresses are accepted before any drop;
 * every other set drops.
 */
export interface SetElement {
  /** canonical address or CIDR */
  readonly address: string;
  /** seconds until the kernel drops the element by itself; 0 = no timeout; Infinity = the longest the backend takes (never reported as cut) */
  readonly timeout: number;
}

export interface ListedElement {
  readonly address: string;
  /** seconds left, 0 = no timeout */
  readonly timeout: number;
}

/** An element the kernel (or its tool) would not take, and its words for why. */
export interface Refusal {
  address: string;
  reason: string;
}

/**
 * What ban() and restore() did: every element not in `refused` is in the set. `clamped`
 * counts timeouts cut down to the backend's maxTimeout (the element is in, for less time).
 */
export interface FirewallOutcome {
  refused: Refusal[];
  clamped: number;
}

/** `addresses`: single hosts and prefix bans, with timeouts (module sets); `networks`: CIDRs (lists, blocklists) */
export type SetKind = "addresses" | "networks";

/** The kernel sets of one logical set: `v4`/`v6`, and for `addresses` the networks' `n4`/`n6`. */
export type KernelPart = "v4" | "v6" | "n4" | "n6";

export function kernelParts(kind: SetKind): readonly KernelPart[] {
  return kind === "addresses" ? ["v4", "v6", "n4", "n6"] : ["v4", "v6"];
}

/**
 * Elements by the kernel set that holds them: by family, and in a set of `addresses` a network
 * (a prefix ban) apart from the single addresses. Parts without elements are left out.
 */
export function byPart<T extends { address: string } | string>(kind: SetKind, elements: readonly T[]): Map<KernelPart, T[]> {
  const lists: Record<KernelPart, T[]> = { v4: [], v6: [], n4: [], n6: [] };
  for (const e of elements) {
    const address = typeof e === "string" ? e : e.address;
    const v6 = address.includes(":");
    lists[kind === "addresses" && address.includes("/") ? (v6 ? "n6" : "n4") : v6 ? "v6" : "v4"].push(e);
  }
  const parts = new Map<KernelPart, T[]>();
  for (const part of kernelParts("addresses")) if (lists[part].length > 0) parts.set(part, lists[part]);
  return parts;
}

export interface SetSpec {
  readonly name: string;
  readonly kind: SetKind;
}

export interface Firewall {
  readonly backend: string;
  /** The longest element timeout the kernel takes, in seconds; longer ones are clamped to it. */
  readonly maxTimeout: number;
  /** How many elements one kernel set (`_v4` or `_v6`) holds at most; null: no limit. */
  readonly maxElements: number | null;
  /** Create the table/chains and these sets if missing, and hook every set in (loopback accepted first); idempotent. */
  ensure(sets: readonly SetSpec[]): Promise<void>;
  /**
   * Add (or refresh the timeout of) elements: the hot path, batched per read chunk. Every
   * element the kernel takes is added; the ones it refuses are reported, never thrown, and so are
   * all of them when watcher's table is gone (the master restores it: intact()). Throws only for
   * what is not about an element (the backend is unusable).
   */
  ban(set: string, elements: readonly SetElement[]): Promise<FirewallOutcome>;
  unban(set: string, addresses: readonly string[]): Promise<void>;
  /** Replace a set's whole content in one atomic operation (restore at start, list reloads) with what the kernel takes; refusals as in ban(). */
  restore(set: string, elements: readonly SetElement[]): Promise<FirewallOutcome>;
  list(set: string): Promise<ListedElement[]>;
  /**
   * Whether watcher's hook into the firewall is still there (its table and chain; its chain's jump
   * from INPUT): `nft flush ruleset` (what `systemctl reload nftables` runs with Debian's
   * nftables.conf) or `iptables -F` take it away, and with it every drop. The master looks every
   * few seconds and restores what it takes.
   */
  intact(): Promise<boolean>;
  /** Remove everything watcher created. */
  teardown(): Promise<void>;
  close(): Promise<void>;
}

/** How many elements a kernel backend lets one kernel set hold (ipset's default maxelem). */
export const DEFAULT_MAX_ELEMENTS = 1 << 20;

/** Options of the kernel backends; `maxElements` is for tests that need a set to fill up. */
export interface KernelOptions {
  readonly maxElements?: number;
}

export const WHITELIST_SET = "watcher_white";
export const BLACKLIST_SET = "watcher_black";

/** The set of a module: `watcher_LG`, ... */
export function moduleSetName(module: string): string {
  return `watcher_${module}`;
}

export function moduleSet(module: string): SetSpec {
  return { name: moduleSetName(module), kind: "addresses" };
}

/** Set names reach kernel commands: keep them to a safe, short alphabet. */
const SET_NAME = /^watcher_[A-Za-z0-9_]{1,20}$/;

export function checkSetName(name: string): string {
  if (!SET_NAME.test(name)) throw new Error(`invalid firewall set name ${JSON.stringify(name)}`);
  return name;
}

/**
 * A watcher set's elements, read part by part (one kernel set per family and kind) with the
 * backend's `readPart`; a part the kernel does not have (yet) lists nothing.
 */
export function listParts(set: string, kind: SetKind, readPart: (kernelSet: string) => ListedElement[]): ListedElement[] {
  checkSetName(set);
  const out: ListedElement[] = [];
  for (const part of kernelParts(kind)) {
    let elements: ListedElement[];
    try {
      elements = readPart(`${set}_${part}`);
    } catch {
      continue; /* the part does not exist (yet) */
    }
    for (const e of elements) out.push(e); /* not push(...): a set of a million elements overflows the stack */
  }
  return out;
}

export function verdictOf(set: string): "accept" | "drop" {
  return set === WHITELIST_SET ? "accept" : "drop";
}


/** Elements by address family; the kernel keeps IPv4 and IPv6 in separate sets. */
export function byFamily<T extends { address: string } | string>(elements: readonly T[]): { v4: T[]; v6: T[] } {
  const v4: T[] = [];
  const v6: T[] = [];
  for (const e of elements) ((typeof e === "string" ? e : e.address).includes(":") ? v6 : v4).push(e);
  return { v4, v6 };
}

const OCTET = "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
const V4 = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}(?:/(?:3[0-2]|[12]?\\d))?$`);
const V6 = /^[0-9a-fA-F:.]*:[0-9a-fA-F:.]*(?:\/\d{1,3})?$/;

/**
 * The elements a backend hands the kernel: one per address (the last wins), timeouts whole
 * seconds and at most `maxTimeout`. Refused here, without asking the kernel: what has not the
 * shape of an address or CIDR (a name would make nft resolve it through DNS) and a timeout
 * that is negative or not a number (0 would mean "for ever").
 */
export function prepareElements(elements: readonly SetElement[], maxTimeout: number): { elements: SetElement[]; refused: Refusal[]; clamped: number } {
  const out: SetElement[] = [];
  const refused: Refusal[] = [];
  let clamped = 0;
  /* one element per address, the last one given winning (a kernel batch must not name an address twice): from the end, the first seen */
  const seen = new Set<string>();
  for (let i = elements.length - 1; i >= 0; i--) {
    const e = elements[i]!;
    if (seen.has(e.address)) continue;
    seen.add(e.address);
    if (!V4.test(e.address) && !V6.test(e.address)) refused.push({ address: e.address, reason: "not an address or network" });
    else if (Number.isNaN(e.timeout) || e.timeout < 0) refused.push({ address: e.address, reason: `invalid timeout ${e.timeout}` });
    else if (e.timeout === 0) out.push(e);
    else {
      const whole = Math.max(1, Math.round(e.timeout));
      if (whole > maxTimeout && e.timeout !== Infinity) clamped++;
      const timeout = Math.min(whole, maxTimeout);
      out.push(timeout === e.timeout ? e : { address: e.address, timeout });
    }
  }
  return { elements: out.reverse(), refused: refused.reverse(), clamped };
}

/** At most this many refusals are named in the log per call; the rest are counted. */
const REFUSALS_NAMED = 10;

/** The log lines an outcome deserves: the refused elements (the first few by name) and the clamped timeouts. */
export function outcomeMessages(set: string, outcome: FirewallOutcome, maxTimeout: number): string[] {
  const lines = outcome.refused.slice(0, REFUSALS_NAMED).map((r) => `the kernel refused ${r.address} in ${set}: ${r.reason}`);
  const unnamed = outcome.refused.length - REFUSALS_NAMED;
  if (unnamed > 0) lines.push(`the kernel refused ${unnamed} more elements of ${set}`);
  if (outcome.clamped > 0) lines.push(`${outcome.clamped} timeouts in ${set} cut to ${maxTimeout} s, the longest the backend takes`);
  return lines;
}
