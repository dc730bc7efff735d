/**
 * The one interface every firewall backend implements (nftables, ipset + iptables, dry-run).
 * A backend knows sets and addresses, nothing of rules or modules. Every address handed to
 * it has been through core/ip (validated, canonical); timeouts are whole seconds.
 *
 * A logical set (`watcher_LG`) holds IPv4 and IPv6; a kernel backend keeps it as two sets,
 * `watcher_LG_v4` and `watcher_LG_v6`. The whitelist set's addresses are accepted before any
 * drop; every other set drops.
 */
export interface SetElement {
  /** canonical address or CIDR */
  readonly address: string;
  /** seconds until the kernel drops the element by itself; 0 = no timeout */
  readonly timeout: number;
}

export interface ListedElement {
  readonly address: string;
  /** seconds left, 0 = no timeout */
  readonly timeout: number;
}

/** `addresses`: single hosts with timeouts (module sets); `networks`: CIDRs (lists, blocklists) */
export type SetKind = "addresses" | "networks";

export interface SetSpec {
  readonly name: string;
  readonly kind: SetKind;
}

export interface Firewall {
  readonly backend: string;
  /** Create the table/chains and these sets if missing, and hook every set in; idempotent. */
  ensure(sets: readonly SetSpec[]): Promise<void>;
  /** Add (or refresh the timeout of) elements: the hot path, batched per read chunk. */
  ban(set: string, elements: readonly SetElement[]): Promise<void>;
  unban(set: string, addresses: readonly string[]): Promise<void>;
  /** Replace a set's whole content in one atomic operation (restore at start, list reloads). */
  restore(set: string, elements: readonly SetElement[]): Promise<void>;
  list(set: string): Promise<ListedElement[]>;
  /** Remove everything watcher created. */
  teardown(): Promise<void>;
  close(): Promise<void>;
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

export function verdictOf(set: string): "accept" | "drop" {
  return set === WHITELIST_SET ? "accept" : "drop";
}

/** One element per address, the last one given winning: a kernel batch must not name an address twice. */
export function lastPerAddress(elements: readonly SetElement[]): SetElement[] {
  return [...new Map(elements.map((e) => [e.address, e])).values()];
}

/** Elements by address family; the kernel keeps IPv4 and IPv6 in separate sets. */
export function byFamily<T extends { address: string } | string>(elements: readonly T[]): { v4: T[]; v6: T[] } {
  const v4: T[] = [];
  const v6: T[] = [];
  for (const e of elements) ((typeof e === "string" ? e : e.address).includes(":") ? v6 : v4).push(e);
  return { v4, v6 };
}
