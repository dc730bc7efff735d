/**
 * nftables backend, straight into libnftables through bun:ffi: one context for the life of
 * the process, so a ban is one in-process call (tens of microseconds), never a process per ban
 * and never a shell. One table `inet watcher`; each logical set is two kernel sets (`_v4`,
 * `_v6`), and a set of addresses two more for its prefix bans (`_n4`, `_n6`: interval sets
 * with timeouts, without auto-merge, so each prefix keeps its own timeout); one chain hooked into input (and forward if asked) at priority filter - 10 accepts
 * loopback traffic, then the whitelist, and drops every other set. Element timeouts are the
 * bans' remaining time, so bans lapse in the kernel even when watcher is gone.
 *
 * A chunk's bans and a restore of single addresses go first as one batch straight over netlink
 * (netlink.ts, without libnftables' parser and cache); what the kernel refuses there is run again
 * through libnftables, the only way for everything else.
 *
 * Sets are created with a size (maxElements), so a flood of addresses cannot take the kernel's
 * memory. An element nft refuses (the set is full, ...) is found by halving the refused batch:
 * ban() adds the rest for real; restore() finds them in dry runs (the kernel checks the batch,
 * then drops it), so the set is still replaced in one transaction.
 */
import { CString, dlopen, FFIType, type Pointer } from "bun:ffi";
import { WatcherError } from "../errors";
import { NftNetlink, type SetChange } from "./netlink";
import {
  byPart,
  checkSetName,
  DEFAULT_MAX_ELEMENTS,
  type Firewall,
  type FirewallOutcome,
  type KernelOptions,
  type KernelPart,
  kernelParts,
  type ListedElement,
  listParts,
  prepareElements,
  type Refusal,
  type SetElement,
  type SetKind,
  type SetSpec,
  verdictOf,
} from "./types";

/** nftables 1.0.6 refuses longer element timeouts ("value too large"); measured. */
export const NFT_MAX_TIMEOUT = 99_999_999;

const TABLE_NAME = "watcher";
const TABLE = `inet ${TABLE_NAME}`;
const OUTPUT_JSON = 1 << 4;
const OUTPUT_TERSE = 1 << 11; /* sets without their elements */

type Lib = ReturnType<typeof openLib>;

function openLib() {
  return dlopen("libnftables.so.1", {
    nft_ctx_new: { args: [FFIType.u32], returns: FFIType.ptr },
    nft_ctx_free: { args: [FFIType.ptr], returns: FFIType.void },
    nft_ctx_buffer_output: { args: [FFIType.ptr], returns: FFIType.i32 },
    nft_ctx_buffer_error: { args: [FFIType.ptr], returns: FFIType.i32 },
    nft_ctx_get_output_buffer: { args: [FFIType.ptr], returns: FFIType.ptr },
    nft_ctx_get_error_buffer: { args: [FFIType.ptr], returns: FFIType.ptr },
    nft_ctx_output_set_flags: { args: [FFIType.ptr, FFIType.u32], returns: FFIType.void },
    nft_ctx_set_dry_run: { args: [FFIType.ptr, FFIType.bool], returns: FFIType.void },
    nft_run_cmd_from_buffer: { args: [FFIType.ptr, FFIType.cstring], returns: FFIType.i32 },
  });
}

let lib: Lib | null = null;

/** True when libnftables can be loaded here. */
export function nftablesAvailable(): boolean {
  try {
    lib ??= openLib();
    return true;
  } catch {
    return false;
  }
}

/**
 * Is nft's complaint about the table, the set or the process rather than one element (thrown)?
 * Only its first error counts: the later ones of a batch follow from it (a delete of what the
 * refused add did not add).
 */
function notAboutAnElement(error: string): boolean {
  return /No such file or directory|Operation not permitted|Permission denied|Cannot allocate memory|Protocol not supported/.test(error.split("\n")[0] ?? "");
}

const TABLE_GONE = `table ${TABLE} is gone (nft flush ruleset?): the master puts it back within seconds, and the next try bans`;

/** nft's complaint about one element, in an operator's words. */
function refusalReason(error: string): string {
  const first = (error.split("\n")[0] ?? error).replace(/^Error: /, "").replace(/^Could not process rule: /, "");
  return /Too many open files in system/.test(first) ? "the set is full" : first;
}

interface KernelSet {
  readonly kind: SetKind;
  /** the kernel set's size, null when it was created without one */
  readonly size: number | null;
}

interface JsonElem {
  elem?: { val: unknown; timeout?: number; expires?: number };
  prefix?: { addr: string; len: number };
  range?: [string, string];
}

export class NftablesFirewall implements Firewall {
  readonly backend = "nftables";
  readonly maxTimeout = NFT_MAX_TIMEOUT;
  readonly maxElements: number;
  private readonly ctx: Pointer;
  private readonly jsonCtx: Pointer;
  /** the fast way in for bans and restores of single addresses; null: libnftables for everything */
  private readonly netlink = NftNetlink.open();
  private readonly encoder = new TextEncoder();
  /** kinds of the logical sets seen in the kernel or ensured */
  private readonly kinds = new Map<string, SetKind>();

  constructor(
    private readonly hookForward = false,
    options: KernelOptions = {},
  ) {
    try {
      lib ??= openLib();
    } catch (e) {
      throw new WatcherError(`the nftables backend needs libnftables.so.1 (Debian/Ubuntu: apt install nftables): ${(e as Error).message}`);
    }
    this.maxElements = options.maxElements ?? DEFAULT_MAX_ELEMENTS;
    this.ctx = this.newContext(0);
    this.jsonCtx = this.newContext(OUTPUT_JSON);
  }

  private newContext(flags: number): Pointer {
    const ctx = lib!.symbols.nft_ctx_new(0);
    if (!ctx) throw new WatcherError("nft_ctx_new failed");
    lib!.symbols.nft_ctx_buffer_output(ctx);
    lib!.symbols.nft_ctx_buffer_error(ctx);
    lib!.symbols.nft_ctx_output_set_flags(ctx, flags);
    return ctx as Pointer;
  }

  /** Run one batch of nft commands atomically (with `dryRun`, the kernel checks it and keeps nothing): its output, or nft's complaint. */
  private attempt(commands: string, ctx = this.ctx, dryRun = false): { out: string; error: null } | { out: null; error: string } {
    if (dryRun) lib!.symbols.nft_ctx_set_dry_run(ctx, true);
    try {
      const rc = lib!.symbols.nft_run_cmd_from_buffer(ctx, this.encoder.encode(`${commands}\0`));
      if (rc !== 0) {
        const err = lib!.symbols.nft_ctx_get_error_buffer(ctx);
        return { out: null, error: (err ? new CString(err).toString().trim() : "") || `error ${rc}` };
      }
      const out = lib!.symbols.nft_ctx_get_output_buffer(ctx);
      return { out: out ? new CString(out).toString() : "", error: null };
    } finally {
      if (dryRun) lib!.symbols.nft_ctx_set_dry_run(ctx, false);
    }
  }

  /** Run one batch of nft commands atomically; its output, or an error naming nft's complaint. */
  private run(commands: string, ctx = this.ctx): string {
    const r = this.attempt(commands, ctx);
    if (r.error !== null) throw new WatcherError(`nftables refused the change: ${r.error}`);
    return r.out;
  }

  /** The table's kernel sets (`watcher_LG_v4`, `watcher_LG_n6`, ...) with their kind and size, without their elements. */
  private kernelSets(): Map<string, KernelSet> {
    const sets = new Map<string, KernelSet>();
    lib!.symbols.nft_ctx_output_set_flags(this.jsonCtx, OUTPUT_JSON | OUTPUT_TERSE);
    const r = this.attempt(`list sets table ${TABLE}`, this.jsonCtx);
    lib!.symbols.nft_ctx_output_set_flags(this.jsonCtx, OUTPUT_JSON);
    if (r.error !== null) return sets; /* no table yet */
    const doc = JSON.parse(r.out) as { nftables?: { set?: { name: string; flags?: string[]; size?: number } }[] };
    for (const item of doc.nftables ?? []) {
      const s = item.set;
      if (s && /_[vn][46]$/.test(s.name)) sets.set(s.name, { kind: s.flags?.includes("interval") ? "networks" : "addresses", size: s.size ?? null });
    }
    /* a logical set's kind is its `_v4`/`_v6` sets' kind: its prefix sets are intervals either way */
    for (const [name, k] of sets) if (/_v[46]$/.test(name)) this.kinds.set(name.slice(0, -3), k.kind);
    return sets;
  }

  /** The kind of a logical set, from the kernel when not known yet (a set that does not exist: addresses). */
  private kindOf(set: string): SetKind {
    if (!this.kinds.has(set)) this.kernelSets();
    return this.kinds.get(set) ?? "addresses";
  }

  private static flags(kind: SetKind, part: KernelPart): string {
    if (part === "n4" || part === "n6") return "flags interval, timeout;";
    return kind === "networks" ? "flags interval; auto-merge;" : "flags timeout;";
  }

  async ensure(wanted: readonly SetSpec[]): Promise<void> {
    const existing = this.kernelSets();
    const sets = new Map<string, SetKind>();
    for (const [name, s] of existing) if (/_v[46]$/.test(name)) sets.set(name.slice(0, -3), s.kind);
    for (const s of wanted) if (!sets.has(checkSetName(s.name))) sets.set(s.name, s.kind);
    const names = [...sets.keys()].sort((a, b) => (verdictOf(a) === verdictOf(b) ? (a < b ? -1 : 1) : verdictOf(a) === "accept" ? -1 : 1));
    const cmds = [`add table ${TABLE}`];
    for (const name of names) {
      /* a set that exists is left as it is: declaring it again with other properties may be refused */
      const kind = sets.get(name)!;
      for (const part of kernelParts(kind)) {
        const type = part.endsWith("4") ? "ipv4_addr" : "ipv6_addr";
        if (!existing.has(`${name}_${part}`)) cmds.push(`add set ${TABLE} ${name}_${part} { type ${type}; ${NftablesFirewall.flags(kind, part)} size ${this.maxElements}; }`);
      }
    }
    /* the chain's rules are rewritten whole, in the same transaction: loopback, whitelist, drops */
    const rules = [
      `add rule ${TABLE} CHAIN iifname "lo" accept`,
      ...names.flatMap((name) => kernelParts(sets.get(name)!).map((part) => `add rule ${TABLE} CHAIN ${part.endsWith("4") ? "ip" : "ip6"} saddr @${name}_${part} ${verdictOf(name)}`)),
    ];
    for (const hook of this.hookForward ? ["input", "forward"] : ["input"]) {
      cmds.push(`add chain ${TABLE} ${hook} { type filter hook ${hook} priority filter - 10; policy accept; }`, `flush chain ${TABLE} ${hook}`);
      cmds.push(...rules.map((r) => r.replace("CHAIN", hook)));
    }
    this.run(cmds.join("\n"));
    for (const [name, kind] of sets) this.kinds.set(name, kind);
  }

  private elements(elements: readonly SetElement[]): string {
    return elements.map((e) => (e.timeout > 0 ? `${e.address} timeout ${e.timeout}s` : e.address)).join(",\n");
  }

  /**
   * Try `list` with `attempt`; when nft refuses it for an element, halve it until each refused
   * element stands alone (reported in `refused`); the parts it takes go to `accepted`.
   */
  private isolate(list: readonly SetElement[], attempt: (part: readonly SetElement[]) => string | null, accepted: SetElement[], refused: Refusal[]): void {
    if (list.length === 0) return;
    const error = attempt(list);
    if (error === null) {
      accepted.push(...list);
      return;
    }
    if (notAboutAnElement(error)) throw new WatcherError(`nftables refused the change: ${error}`);
    if (list.length === 1) {
      refused.push({ address: list[0]!.address, reason: refusalReason(error) });
      return;
    }
    const half = list.length >> 1;
    this.isolate(list.slice(0, half), attempt, accepted, refused);
    this.isolate(list.slice(half), attempt, accepted, refused);
  }

  private banCommands(set: string, family: KernelPart, list: readonly SetElement[]): string[] {
    if (list.length === 0) return [];
    const addresses = list.map((e) => e.address).join(", ");
    /* delete first: re-adding an element does not change its timeout; add before delete: deleting an absent one fails */
    return [
      `add element ${TABLE} ${set}_${family} { ${addresses} }`,
      `delete element ${TABLE} ${set}_${family} { ${addresses} }`,
      `add element ${TABLE} ${set}_${family} { ${this.elements(list)} }`,
    ];
  }

  /**
   * The parts in one netlink batch when they are all single addresses in hash sets (the set of
   * a module, without prefix bans); true when the kernel took it all.
   */
  private viaNetlink(set: string, kind: SetKind, parts: Map<KernelPart, SetElement[]>, changes: (kernelSet: string, list: SetElement[]) => SetChange[], before: SetChange[] = []): boolean {
    if (!this.netlink || kind !== "addresses" || parts.has("n4") || parts.has("n6")) return false;
    return this.netlink.transaction(TABLE_NAME, [...before, ...[...parts].flatMap(([part, list]) => changes(`${set}_${part}`, list))]);
  }

  async ban(set: string, elements: readonly SetElement[]): Promise<FirewallOutcome> {
    checkSetName(set);
    const { elements: ready, refused, clamped } = prepareElements(elements, this.maxTimeout);
    const kind = this.kindOf(set);
    const parts = byPart(kind, ready);
    if (parts.size === 0) return { refused, clamped };
    /* new addresses (nearly every ban) go in as they are: one change, half the kernel's work of the
       three below (line -> set p50 0.33 -> 0.20 ms, bench/kernel.ts --warmup 1000); one already in the set makes
       the kernel refuse that batch whole, and then it goes in as banCommands put it: add (so that
       the delete finds it), delete, add with the timeout, which renews the element's timeout */
    const fresh = (kernelSet: string, list: SetElement[]): SetChange[] => [{ kind: "add", set: kernelSet, elements: list, timeouts: true, exclusive: true }];
    const again = (kernelSet: string, list: SetElement[]): SetChange[] => [
      { kind: "add", set: kernelSet, elements: list, timeouts: false },
      { kind: "delete", set: kernelSet, elements: list },
      { kind: "add", set: kernelSet, elements: list, timeouts: true },
    ];
    if (this.viaNetlink(set, kind, parts, fresh) || this.viaNetlink(set, kind, parts, again)) return { refused, clamped };
    const cmds = [...parts].flatMap(([family, list]) => this.banCommands(set, family, list));
    const first = this.attempt(cmds.join("\n"));
    if (first.error === null) return { refused, clamped };
    /* the table gone (nft flush ruleset): nothing can go in until the master restores it, within seconds */
    if (/^Error: No such file or directory/.test(first.error)) return { refused: [...refused, ...ready.map((e) => ({ address: e.address, reason: TABLE_GONE }))], clamped };
    if (notAboutAnElement(first.error)) throw new WatcherError(`nftables refused the change: ${first.error}`);
    /* one element spoiled the batch: add the others, by halves */
    for (const [family, list] of parts) {
      this.isolate(list, (part) => this.attempt(this.banCommands(set, family, part).join("\n")).error, [], refused);
    }
    return { refused, clamped };
  }

  async unban(set: string, addresses: readonly string[]): Promise<void> {
    checkSetName(set);
    const parts = byPart(this.kindOf(set), [...new Set(addresses)]);
    const cmds: string[] = [];
    /* add before delete: deleting an absent element would fail the whole batch */
    for (const [family, list] of parts) {
      cmds.push(`add element ${TABLE} ${set}_${family} { ${list.join(", ")} }`, `delete element ${TABLE} ${set}_${family} { ${list.join(", ")} }`);
    }
    if (cmds.length === 0) return;
    const error = this.attempt(cmds.join("\n")).error;
    if (error === null) return;
    if (notAboutAnElement(error)) throw new WatcherError(`nftables refused the change: ${error}`);
    /* a full set refuses the add of an address it does not hold: delete one by one, absent ones are fine */
    for (const [family, list] of parts) {
      for (const address of list) {
        const e = this.attempt(`delete element ${TABLE} ${set}_${family} { ${address} }`).error;
        if (e !== null && !/No such file or directory/.test(e.split("\n")[0] ?? "")) throw new WatcherError(`nftables refused the change: ${e}`);
      }
    }
  }

  async restore(set: string, elements: readonly SetElement[]): Promise<FirewallOutcome> {
    checkSetName(set);
    const { elements: ready, refused, clamped } = prepareElements(elements, this.maxTimeout);
    const kind = this.kindOf(set);
    const families = kernelParts(kind);
    const given = byPart(kind, ready);
    const flush = families.map((f): SetChange => ({ kind: "flush", set: `${set}_${f}` }));
    if (this.viaNetlink(set, kind, given, (kernelSet, list) => [{ kind: "add", set: kernelSet, elements: list, timeouts: true }], flush)) return { refused, clamped };
    const lists = (from: Map<KernelPart, SetElement[]>) => families.map((f) => [f, from.get(f) ?? []] as const);
    const replace = (parts: Map<KernelPart, SetElement[]>) => {
      const cmds = families.map((f) => `flush set ${TABLE} ${set}_${f}`);
      for (const [f, list] of lists(parts)) if (list.length) cmds.push(`add element ${TABLE} ${set}_${f} { ${this.elements(list)} }`);
      const error = this.attempt(cmds.join("\n")).error;
      if (error !== null && notAboutAnElement(error)) throw new WatcherError(`nftables refused the change: ${error}`);
      return error;
    };
    if (replace(given) === null) return { refused, clamped };
    /*
     * Find the refused elements in dry runs (the kernel checks, keeps nothing), by halves: a part
     * larger than the set fails too and is halved. Then the first elements that fit, in one swap.
     */
    const check = (family: KernelPart, part: readonly SetElement[], before: readonly SetElement[] = []) =>
      this.attempt(`flush set ${TABLE} ${set}_${family}\nadd element ${TABLE} ${set}_${family} { ${this.elements([...before, ...part])} }`, this.ctx, true).error;
    const kernel = this.kernelSets();
    const taken = new Map<KernelPart, SetElement[]>(families.map((f) => [f, []]));
    for (const [family, list] of lists(given)) {
      const into = taken.get(family)!;
      this.isolate(list, (part) => check(family, part), into, refused);
      const size = kernel.get(`${set}_${family}`)?.size ?? null;
      if (size !== null) for (const e of into.splice(size)) refused.push({ address: e.address, reason: "the set is full" });
    }
    if (replace(taken) === null) return { refused, clamped };
    /* refused only beside others: check each part together with what was taken before it */
    for (const family of families) {
      const candidates = taken.get(family)!;
      const into: SetElement[] = [];
      taken.set(family, into);
      this.isolate(candidates, (part) => check(family, part, into), into, refused);
    }
    const error = replace(taken);
    if (error !== null) throw new WatcherError(`nftables refused the change: ${error}`);
    return { refused, clamped };
  }

  async list(set: string): Promise<ListedElement[]> {
    return listParts(set, this.kindOf(set), (kernelSet) => {
      const doc: { nftables?: { set?: { elem?: (JsonElem | string)[] } }[] } = JSON.parse(this.run(`list set ${TABLE} ${kernelSet}`, this.jsonCtx));
      return (doc.nftables ?? []).flatMap((item) => (item.set?.elem ?? []).map(fromJson));
    });
  }

  /* every hook chain there, with its loopback rule and a rule for each of the table's sets: `nft flush chain` or a deleted rule takes drops away too */
  async intact(): Promise<boolean> {
    const sets = [...this.kernelSets().keys()];
    for (const hook of this.hookForward ? ["input", "forward"] : ["input"]) {
      const chain = this.attempt(`list chain ${TABLE} ${hook}`);
      if (chain.error !== null || !chain.out.includes('iifname "lo" accept')) return false;
      if (sets.some((set) => !chain.out.includes(`@${set} `))) return false;
    }
    return true;
  }

  async teardown(): Promise<void> {
    try {
      this.run(`delete table ${TABLE}`);
    } catch {
      /* nothing to remove */
    }
  }

  async close(): Promise<void> {
    this.netlink?.close();
    lib!.symbols.nft_ctx_free(this.ctx);
    lib!.symbols.nft_ctx_free(this.jsonCtx);
  }
}

function fromJson(e: JsonElem | string): ListedElement {
  if (typeof e === "string") return { address: e, timeout: 0 };
  const inner = e.elem ? e.elem.val : e;
  const timeout = e.elem?.expires ?? 0;
  if (typeof inner === "string") return { address: inner, timeout };
  const v = inner as JsonElem;
  if (v.prefix) return { address: `${v.prefix.addr}/${v.prefix.len}`, timeout };
  if (v.range) return { address: `${v.range[0]}-${v.range[1]}`, timeout };
  return { address: String(inner), timeout };
}
