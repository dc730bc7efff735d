/**
 * Download, check and load one blocklist into its own set, atomically: the old contents stay in
 * force until the new list is complete and valid. The last good copy is cached under
 * var/dynload/ (one file per URL), which is what `start` restores at boot, without network.
 * Conditional requests (ETag, Last-Modified → 304), Expires, and the publisher's minimum
 * interval are honoured; the time of each attempt is kept, so a failure counts too.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Config, Paths } from "../core/config";
import { ConfigError } from "../core/errors";
import { formatDuration } from "../core/duration";
import type { Firewall, SetElement } from "../core/firewall/types";
import { type Cidr, parseCidr } from "../core/ip";
import type { Lists } from "../core/lists";
import { readJson, writeFileAtomic, writeJson } from "../core/runfiles";
import { FormatError, parseList } from "./formats";
import { type DynList, dynLists, dynloadSetName } from "./lists";
import { dynloadDir } from "../core/layout";

export interface ListState {
  lastAttempt: number;
  lastSuccess: number;
  entries: number;
  /** per URL: the validators of the cached copy */
  etag: Record<string, string>;
  lastModified: Record<string, string>;
  /** the publisher's Expires, epoch seconds; 0 when none */
  expires: number;
  lastError: string | null;
  /** entries left out because they cover protected addresses or are too wide (Lists.dropConflict) */
  leftOut: string[];
}

/** The networks of the copy in force that its set holds: those of its lines not left out. */
function inForce(state: ListState): number {
  return state.entries - state.leftOut.length;
}

const EMPTY: ListState = { lastAttempt: 0, lastSuccess: 0, entries: 0, etag: {}, lastModified: {}, expires: 0, lastError: null, leftOut: [] };

export type Outcome =
  | { readonly list: string; readonly result: "loaded"; readonly entries: number; readonly leftOut: string[]; readonly seconds: number }
  | { readonly list: string; readonly result: "not-modified"; readonly entries: number }
  | { readonly list: string; readonly result: "not-due"; readonly next: number; readonly why: string }
  | { readonly list: string; readonly result: "failed"; readonly error: string; readonly entries: number };

function stateFile(paths: Paths, list: string): string {
  return join(dynloadDir(paths), `${list}.json`);
}

function cacheFile(paths: Paths, list: string, url: number): string {
  return join(dynloadDir(paths), `${list}.${url}.list`);
}

export function readState(paths: Paths, list: string): ListState {
  return { ...EMPTY, ...readJson<ListState>(stateFile(paths, list)) };
}

/**
 * A test for blocklist entries: true for one that must be left out, because it is wider than a
 * drop list may hold or covers (or falls into) a reserved, own or whitelisted address. The
 * same test (Lists.dropConflict) refuses such lines in etc/blacklist.
 */
export function protectedFilter(lists: Lists): (net: Cidr) => boolean {
  return (net) => lists.dropConflict(net) !== null;
}

/** The cached entries of a list (all its URLs), as loaded last time. */
export function cachedEntries(paths: Paths, list: DynList): string[] {
  const out: string[] = [];
  list.urls.forEach((_, i) => {
    const file = cacheFile(paths, list.name, i);
    if (existsSync(file)) out.push(...readFileSync(file, "utf8").split("\n").filter(Boolean));
  });
  return out;
}

/**
 * The cached entries of a list that its kernel set holds: those that cover no protected address
 * (protectedFilter), as restore and refreshList put them there. `bans` and `why` read these, never
 * the whole copy: a list's line 0.0.0.0/0, left out, drops nobody.
 */
export function enforcedEntries(paths: Paths, list: DynList, lists: Lists): Cidr[] {
  const coversProtected = protectedFilter(lists);
  return cachedEntries(paths, list)
    .map((t) => parseCidr(t)!)
    .filter((n) => !coversProtected(n));
}

function isRemote(url: string): boolean {
  return /^https?:\/\//.test(url);
}

interface Fetched {
  body: Uint8Array<ArrayBuffer> | null; /* null: not modified */
  etag?: string;
  lastModified?: string;
  expires?: number;
}

async function download(url: string, state: ListState, timeout: number, stop?: AbortSignal): Promise<Fetched> {
  if (!isRemote(url)) {
    const path = url.replace(/^file:\/\//, "");
    try {
      return { body: new Uint8Array(readFileSync(path)) };
    } catch (e) {
      throw new FormatError(`cannot read ${path}: ${(e as Error).message}`);
    }
  }
  const headers: Record<string, string> = { "user-agent": "watcher (blocklist loader)" };
  if (state.etag[url]) headers["if-none-match"] = state.etag[url]!;
  if (state.lastModified[url]) headers["if-modified-since"] = state.lastModified[url]!;
  let res: Response;
  try {
    const late = AbortSignal.timeout(timeout * 1000);
    res = await fetch(url, { headers, signal: stop ? AbortSignal.any([late, stop]) : late });
  } catch (e) {
    throw new FormatError(`${url}: ${(e as Error).message}`);
  }
  if (res.status === 304) return { body: null };
  if (!res.ok) throw new FormatError(`${url}: HTTP ${res.status} ${res.statusText}`);
  let body: Uint8Array<ArrayBuffer>;
  try {
    body = new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    throw new FormatError(`${url}: the download broke off: ${(e as Error).message}`);
  }
  const expires = Date.parse(res.headers.get("expires") ?? "");
  return {
    body,
    etag: res.headers.get("etag") ?? undefined,
    lastModified: res.headers.get("last-modified") ?? undefined,
    expires: Number.isNaN(expires) ? 0 : Math.floor(expires / 1000),
  };
}

export interface LoadOptions {
  readonly paths: Paths;
  readonly lists: Lists;
  readonly firewall: Firewall;
  readonly now: number;
  readonly force: boolean;
  readonly timeout: number;
  readonly maxShrink: number;
  /** aborted when watcher stops: a download in flight ends at once, the list in force stays */
  readonly stop?: AbortSignal;
}

/** Refresh one list if due (or forced): download, check, load atomically, cache. */
export async function refreshList(list: DynList, o: LoadOptions): Promise<Outcome> {
  const state = readState(o.paths, list.name);
  const since = o.now - state.lastAttempt;
  if (since < list.hardInterval) {
    return { list: list.name, result: "not-due", next: state.lastAttempt + list.hardInterval, why: `its publisher allows one download every ${formatDuration(list.hardInterval)}` };
  }
  if (!o.force && since < list.interval) return { list: list.name, result: "not-due", next: state.lastAttempt + list.interval, why: `interval ${formatDuration(list.interval)}` };
  if (!o.force && state.expires > o.now) return { list: list.name, result: "not-due", next: state.expires, why: "the last copy is fresh until its Expires" };
  mkdirSync(dynloadDir(o.paths), { recursive: true });
  state.lastAttempt = o.now;
  writeJson(stateFile(o.paths, list.name), state);
  const started = performance.now();
  try {
    const fetched = await Promise.all(list.urls.map((url) => download(url, state, o.timeout, o.stop)));
    if (fetched.every((f) => f.body === null)) {
      state.lastSuccess = o.now;
      state.lastError = null;
      writeJson(stateFile(o.paths, list.name), state);
      return { list: list.name, result: "not-modified", entries: inForce(state) };
    }
    /* a URL that did not change keeps its cached entries */
    const perUrl = fetched.map((f, i) => (f.body === null ? cachedEntries(o.paths, { ...list, urls: [list.urls[i]!] }).map((t) => parseCidr(t)!) : parseList(list.format, f.body)));
    const all = perUrl.flat();
    if (all.length > list.maxEntries) throw new FormatError(`${all.length} entries, more than maxEntries (${list.maxEntries})`);
    if (!o.force && state.entries > 0 && all.length < state.entries * (1 - o.maxShrink)) {
      throw new FormatError(`shrank from ${state.entries} to ${all.length} entries, more than maxShrink allows (--force to take it)`);
    }
    const leftOut: string[] = [];
    const elements: SetElement[] = [];
    const coversProtected = protectedFilter(o.lists);
    for (const net of all) {
      if (coversProtected(net)) leftOut.push(net.text);
      else elements.push({ address: net.text, timeout: 0 });
    }
    const set = dynloadSetName(list.name);
    await o.firewall.ensure([{ name: set, kind: "networks" }]);
    /* what the kernel refuses (a full set) is left out too, and named */
    const outcome = await o.firewall.restore(set, elements);
    leftOut.push(...outcome.refused.map((r) => `${r.address} (${r.reason})`));
    perUrl.forEach((nets, i) => writeFileAtomic(cacheFile(o.paths, list.name, i), nets.map((n) => `${n.text}\n`).join("")));
    fetched.forEach((f, i) => {
      const url = list.urls[i]!;
      if (f.etag) state.etag[url] = f.etag;
      if (f.lastModified) state.lastModified[url] = f.lastModified;
    });
    Object.assign(state, { lastSuccess: o.now, entries: all.length, expires: Math.max(0, ...fetched.map((f) => f.expires ?? 0)), lastError: null, leftOut });
    writeJson(stateFile(o.paths, list.name), state);
    return { list: list.name, result: "loaded", entries: elements.length - outcome.refused.length, leftOut, seconds: (performance.now() - started) / 1000 };
  } catch (e) {
    if (!(e instanceof FormatError)) throw e;
    state.lastError = e.message;
    writeJson(stateFile(o.paths, list.name), state);
    return { list: list.name, result: "failed", error: e.message, entries: inForce(state) };
  }
}

/** Refresh the enabled lists (or the one named), each if due; one outcome per list. */
export async function refreshLists(
  loaded: { config: Config; paths: Paths },
  firewall: Firewall,
  lists: Lists,
  o: { only?: string; force: boolean; now: number; progress?: (outcome: Outcome) => void; stop?: AbortSignal },
): Promise<Outcome[]> {
  const all = dynLists(loaded.config);
  if (o.only && !all.some((l) => l.name === o.only)) {
    throw new ConfigError(`no blocklist named ${JSON.stringify(o.only)}: expected one of ${all.map((l) => l.name).join(", ")}`);
  }
  const chosen = all.filter((l) => (o.only ? l.name === o.only : l.enabled));
  const outcomes: Outcome[] = [];
  for (const list of chosen) {
    if (o.stop?.aborted) break;
    const outcome = await refreshList(list, {
      paths: loaded.paths,
      lists,
      firewall,
      now: o.now,
      force: o.force,
      timeout: loaded.config.dynload.timeout,
      maxShrink: loaded.config.dynload.maxShrink,
      ...(o.stop ? { stop: o.stop } : {}),
    });
    o.progress?.(outcome);
    outcomes.push(outcome);
  }
  return outcomes;
}

/**
 * Empty the sets of blocklists switched off (`enabled = false`) or removed from the
 * configuration since they were loaded (their cached copies under var/dynload/ name them):
 * restore refills only the sets it plans and leaves the others as the kernel has them, so
 * without this a list the operator turned off (it dropped a customer) would go on dropping until
 * the firewall is torn down. Returns the names of the lists emptied.
 */
export async function emptySwitchedOffLists(loaded: { config: Config; paths: Paths }, firewall: Firewall): Promise<string[]> {
  const lists = dynLists(loaded.config);
  const off = new Set(lists.filter((l) => !l.enabled).map((l) => l.name));
  const dir = dynloadDir(loaded.paths);
  const cached = existsSync(dir) ? readdirSync(dir).flatMap((f) => /^([A-Za-z0-9_]+)\.\d+\.list$/.exec(f)?.[1] ?? []) : [];
  for (const name of cached) if (!lists.some((l) => l.name === name)) off.add(name);
  const emptied: string[] = [];
  for (const name of off) {
    let set: string;
    try {
      set = dynloadSetName(name);
    } catch {
      continue; /* no name watcher would give a set */
    }
    if ((await firewall.list(set)).length === 0) continue;
    await firewall.restore(set, []);
    emptied.push(name);
  }
  return emptied;
}
