/**
 * nftables backend, straight into libnftables through bun:ffi: one context for the life of
 * the process, so a ban is one in-process call (tens of microseconds), never a process per ban
 * and never a shell. One table `inet watcher`; each logical set is two kernel sets (`_v4`,
 * `_v6`); one chain hooked into input (and forward if asked) at priority filter - 10 accepts
 * loopback traffic, then the whitelist, and drops every other set. Element timeouts are the bans' remaining time, so
 * bans lapse in the kernel even when watcher is gone.
 */
import { CString, dlopen, FFIType, type Pointer } from "bun:ffi";
import { WatcherError } from "../errors";
import { byFamily, checkSetName, lastPerAddress, type Firewall, type ListedElement, type SetElement, type SetKind, type SetSpec, verdictOf } from "./types";

const TABLE = "inet watcher";
const OUTPUT_JSON = 1 << 4;

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

interface JsonElem {
  elem?: { val: unknown; timeout?: number; expires?: number };
  prefix?: { addr: string; len: number };
  range?: [string, string];
}

export class NftablesFirewall implements Firewall {
  readonly backend = "nftables";
  private readonly ctx: Pointer;
  private readonly jsonCtx: Pointer;
  private readonly encoder = new TextEncoder();

  constructor(private readonly hookForward = false) {
    try {
      lib ??= openLib();
    } catch (e) {
      throw new WatcherError(`the nftables backend needs libnftables.so.1 (Debian/Ubuntu: apt install nftables): ${(e as Error).message}`);
    }
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

  /** Run one batch of nft commands atomically; its output, or an error naming nft's complaint. */
  private run(commands: string, ctx = this.ctx): string {
    const rc = lib!.symbols.nft_run_cmd_from_buffer(ctx, this.encoder.encode(`${commands}\0`));
    if (rc !== 0) {
      const err = lib!.symbols.nft_ctx_get_error_buffer(ctx);
      throw new WatcherError(`nftables refused the change: ${err ? new CString(err).toString().trim() : `error ${rc}`}`);
    }
    const out = lib!.symbols.nft_ctx_get_output_buffer(ctx);
    return out ? new CString(out).toString() : "";
  }

  /** Sets of the table as name → kind, from the kernel. */
  private existingSets(): Map<string, SetKind> {
    const sets = new Map<string, SetKind>();
    let doc: { nftables?: { set?: { name: string; flags?: string[] } }[] };
    try {
      doc = JSON.parse(this.run(`list sets table ${TABLE}`, this.jsonCtx));
    } catch {
      return sets; /* no table yet */
    }
    for (const item of doc.nftables ?? []) {
      const name = item.set?.name;
      const m = name ? /^(.*)_v[46]$/.exec(name) : null;
      if (m) sets.set(m[1]!, item.set!.flags?.includes("interval") ? "networks" : "addresses");
    }
    return sets;
  }

  async ensure(wanted: readonly SetSpec[]): Promise<void> {
    const sets = this.existingSets();
    for (const s of wanted) sets.set(checkSetName(s.name), s.kind);
    const names = [...sets.keys()].sort((a, b) => (verdictOf(a) === verdictOf(b) ? (a < b ? -1 : 1) : verdictOf(a) === "accept" ? -1 : 1));
    const cmds = [`add table ${TABLE}`];
    for (const name of names) {
      const flags = sets.get(name) === "networks" ? "flags interval; auto-merge;" : "flags timeout;";
      cmds.push(`add set ${TABLE} ${name}_v4 { type ipv4_addr; ${flags} }`, `add set ${TABLE} ${name}_v6 { type ipv6_addr; ${flags} }`);
    }
    /* the chain's rules are rewritten whole, in the same transaction: loopback, whitelist, drops */
    const rules = [
      `add rule ${TABLE} CHAIN iifname "lo" accept`,
      ...names.flatMap((name) => [`add rule ${TABLE} CHAIN ip saddr @${name}_v4 ${verdictOf(name)}`, `add rule ${TABLE} CHAIN ip6 saddr @${name}_v6 ${verdictOf(name)}`]),
    ];
    for (const hook of this.hookForward ? ["input", "forward"] : ["input"]) {
      cmds.push(`add chain ${TABLE} ${hook} { type filter hook ${hook} priority filter - 10; policy accept; }`, `flush chain ${TABLE} ${hook}`);
      cmds.push(...rules.map((r) => r.replace("CHAIN", hook)));
    }
    this.run(cmds.join("\n"));
  }

  private elements(elements: readonly SetElement[]): string {
    return elements.map((e) => (e.timeout > 0 ? `${e.address} timeout ${Math.max(1, Math.round(e.timeout))}s` : e.address)).join(",\n");
  }

  async ban(set: string, elements: readonly SetElement[]): Promise<void> {
    checkSetName(set);
    const { v4, v6 } = byFamily(lastPerAddress(elements));
    const cmds: string[] = [];
    /* delete first: re-adding an element does not change its timeout */
    for (const [family, list] of [["v4", v4], ["v6", v6]] as const) {
      if (list.length === 0) continue;
      cmds.push(`add element ${TABLE} ${set}_${family} { ${list.map((e) => e.address).join(", ")} }`);
      cmds.push(`delete element ${TABLE} ${set}_${family} { ${list.map((e) => e.address).join(", ")} }`);
      cmds.push(`add element ${TABLE} ${set}_${family} { ${this.elements(list)} }`);
    }
    if (cmds.length > 0) this.run(cmds.join("\n"));
  }

  async unban(set: string, addresses: readonly string[]): Promise<void> {
    checkSetName(set);
    const { v4, v6 } = byFamily([...new Set(addresses)]);
    const cmds: string[] = [];
    /* add before delete: deleting an absent element would fail the whole batch */
    for (const [family, list] of [["v4", v4], ["v6", v6]] as const) {
      if (list.length === 0) continue;
      cmds.push(`add element ${TABLE} ${set}_${family} { ${list.join(", ")} }`, `delete element ${TABLE} ${set}_${family} { ${list.join(", ")} }`);
    }
    if (cmds.length > 0) this.run(cmds.join("\n"));
  }

  async restore(set: string, elements: readonly SetElement[]): Promise<void> {
    checkSetName(set);
    const { v4, v6 } = byFamily(lastPerAddress(elements));
    const cmds = [`flush set ${TABLE} ${set}_v4`, `flush set ${TABLE} ${set}_v6`];
    if (v4.length) cmds.push(`add element ${TABLE} ${set}_v4 { ${this.elements(v4)} }`);
    if (v6.length) cmds.push(`add element ${TABLE} ${set}_v6 { ${this.elements(v6)} }`);
    this.run(cmds.join("\n"));
  }

  async list(set: string): Promise<ListedElement[]> {
    checkSetName(set);
    const out: ListedElement[] = [];
    for (const family of ["v4", "v6"]) {
      let doc: { nftables?: { set?: { elem?: (JsonElem | string)[] } }[] };
      try {
        doc = JSON.parse(this.run(`list set ${TABLE} ${set}_${family}`, this.jsonCtx));
      } catch {
        continue; /* the set does not exist (yet) */
      }
      for (const item of doc.nftables ?? []) {
        for (const e of item.set?.elem ?? []) out.push(fromJson(e));
      }
    }
    return out;
  }

  async teardown(): Promise<void> {
    try {
      this.run(`delete table ${TABLE}`);
    } catch {
      /* nothing to remove */
    }
  }

  async close(): Promise<void> {
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
