/**
 * The one interface every firewall backend implements (dry-run now; nftables and ipset next).
 * A backend knows sets and addresses, nothing of rules or modules. Every address handed to
 * it has been through core/ip (validated, canonical); timeouts are whole seconds.
 */
export interface SetElement {
  /** canonical address or CIDR */
  readonly address: string;
  /** seconds until the kernel drops the element by itself; 0 = no timeout */
  readonly timeout: number;
}

export interface ListedElement {
  readonly address: string;
  /** epoch seconds, 0 = no timeout */
  readonly expiresAt: number;
}

export interface Firewall {
  readonly backend: string;
  /** Create the table/chains and these sets if missing; idempotent. */
  ensure(sets: readonly string[]): Promise<void>;
  /** Add (or refresh the timeout of) elements: the hot path, batched per read chunk. */
  ban(set: string, elements: readonly SetElement[]): Promise<void>;
  unban(set: string, addresses: readonly string[]): Promise<void>;
  /** Replace a set's whole content in one operation (restore at start, list reloads). */
  restore(set: string, elements: readonly SetElement[]): Promise<void>;
  list(set: string): Promise<ListedElement[]>;
  /** Remove everything watcher created. */
  teardown(): Promise<void>;
  close(): Promise<void>;
}

/** The set of a module: `watcher_LG`, ... */
export function moduleSetName(module: string): string {
  return `watcher_${module}`;
}
