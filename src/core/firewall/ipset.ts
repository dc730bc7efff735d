/**
 * ipset + iptables/ip6tables backend, for hosts without nftables. Each logical set is two ipsets
 * (`_v4` hash:ip/hash:net family inet, `_v6` family inet6) with timeouts, and a set of addresses
 * two hash:net more for its prefix bans (`_n4`, `_n6`); a chain WATCHER,
 * jumped to first from INPUT (and FORWARD if asked), returns for loopback and the whitelist
 * and drops every other set. Single bans go through one long-lived `ipset -exist -` session
 * (its prompt is the acknowledgement); bulk loads fill temporary sets over netlink (netlink.ts;
 * `ipset restore` when the kernel refuses something there) and swap them in, so a set is
 * replaced atomically. Commands are argument vectors, never a shell.
 *
 * An element ipset refuses ("Hash is full" at maxelem, ...) is reported, and the others are
 * added: the session reads each command's complaint before the next command; a restore that
 * stops at a refused line ("Error in line N") is run again without it before the swap.
 */
import { closeSync, fstatSync, ftruncateSync, openSync, readSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WatcherError } from "../errors";
import { IpsetNetlink } from "./netlink";
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
  type SetElement,
  type SetKind,
  type SetSpec,
  verdictOf,
} from "./types";

/** The kernel keeps ipset timeouts in milliseconds in an int: longer ones are refused ("out of range 0-2147483"); measured. */
export const IPSET_MAX_TIMEOUT = 2_147_483;

const CHAIN = "WATCHER";
const PROMPT = "ipset> ";

/** Complaints about the set or the process rather than one element: thrown. */
const NOT_ABOUT_AN_ELEMENT = /set with the given name does not exist|Operation not permitted|Permission denied|Cannot open session|Kernel support protocol versions/;

const FULL = /Hash is full/;
const SET_FULL = "the set is full";

/** ipset's complaint without its version prefix and line number. */
function refusalReason(error: string): string {
  return (error.trim().split("\n")[0] ?? "").replace(/^ipset v[\d.]+: /, "").replace(/^Error in line \d+: /, "");
}

function exec(argv: string[], stdin?: string): string {
  const p = Bun.spawnSync(argv, { stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin), stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new WatcherError(`${argv[0]} ${argv.slice(1, 3).join(" ")}: ${p.stderr.toString().trim() || `exit ${p.exitCode}`}`);
  return p.stdout.toString();
}

export function ipsetAvailable(): boolean {
  return Bun.which("ipset") !== null && Bun.which("iptables") !== null && Bun.which("ip6tables") !== null;
}

/** The session ended (ipset died); `done` commands had been answered. */
class SessionEnded extends WatcherError {
  constructor(readonly done: number) {
    super("the ipset session ended");
  }
}

/**
 * One `ipset -exist -` process: write a command, wait for the next prompt. ipset buffers its
 * prompt when stdout is a pipe, so it runs under `stdbuf -o0` (coreutils). Its stderr goes to
 * an unlinked temporary file: ipset writes a command's complaint before its next prompt, so
 * once the prompt is read, the file holds exactly that command's complaint, if any.
 */
class IpsetSession {
  private readonly errors = IpsetSession.errorFile();
  private readonly proc = Bun.spawn(["stdbuf", "-o0", "ipset", "-exist", "-"], { stdin: "pipe", stdout: "pipe", stderr: this.errors });
  private readonly reader = this.proc.stdout.getReader();
  private readonly decoder = new TextDecoder();
  private buffered = "";
  private readonly ready = this.untilPrompt(); /* the first prompt: ready */
  private queue: Promise<unknown> = this.ready.catch(() => {});

  /** A file only this process can see: opened for appending, then unlinked. */
  private static errorFile(): number {
    const path = join(tmpdir(), `watcher-ipset-${process.pid}-${Math.random().toString(36).slice(2)}.err`);
    const fd = openSync(path, "a+", 0o600);
    unlinkSync(path);
    return fd;
  }

  private async untilPrompt(): Promise<void> {
    while (!this.buffered.includes(PROMPT)) {
      const { value, done } = await this.reader.read();
      if (done) throw new SessionEnded(0);
      this.buffered += this.decoder.decode(value, { stream: true });
    }
    this.buffered = this.buffered.slice(this.buffered.indexOf(PROMPT) + PROMPT.length);
  }

  /** What ipset wrote on stderr since the last call ("" for nothing), and the file emptied. */
  private complaint(): string {
    const size = fstatSync(this.errors).size;
    if (size === 0) return "";
    const buf = Buffer.alloc(Math.min(size, 64 * 1024));
    const n = readSync(this.errors, buf, 0, buf.length, 0);
    ftruncateSync(this.errors, 0); /* appends go to the start again */
    return buf.subarray(0, n).toString().trim();
  }

  /** Run commands one after the other; each one's complaint ("" where ipset took it). Rejects with SessionEnded if ipset dies. */
  run(commands: readonly string[]): Promise<string[]> {
    const done = this.queue.then(async () => {
      const complaints: string[] = [];
      try {
        await this.ready;
        for (const c of commands) {
          this.proc.stdin.write(`${c}\n`);
          this.proc.stdin.flush();
          await this.untilPrompt();
          complaints.push(this.complaint());
        }
      } catch (e) {
        if (e instanceof SessionEnded) throw new SessionEnded(complaints.length);
        throw e;
      }
      return complaints;
    });
    this.queue = done.catch(() => {});
    return done;
  }

  close(): void {
    try {
      this.proc.stdin.end();
    } catch {
      /* ended already */
    }
    this.proc.kill();
    closeSync(this.errors);
  }
}

export class IpsetFirewall implements Firewall {
  readonly backend = "ipset";
  readonly maxTimeout = IPSET_MAX_TIMEOUT;
  /** the maxelem of the sets this backend creates */
  readonly maxElements: number;
  private session: IpsetSession | null = null;
  /** a restore's elements go in over netlink (netlink.ts); opened at the first restore */
  private netlink: IpsetNetlink | null = null;
  /** kinds of the sets seen in the kernel, by logical name */
  private readonly kinds = new Map<string, SetKind>();

  constructor(
    private readonly hookForward = false,
    options: KernelOptions = {},
  ) {
    this.maxElements = options.maxElements ?? DEFAULT_MAX_ELEMENTS;
  }

  /** The kernel's watcher ipsets (`watcher_LG_v4`, `watcher_LG_n6`, ...); the logical sets' kinds are noted. */
  private kernelSets(): Set<string> {
    const names = new Set<string>();
    let current: string | null = null;
    for (const line of exec(["ipset", "list", "-t"]).split("\n")) {
      if (line.startsWith("Name: ")) {
        const m = /^Name: (watcher_\w+_[vn][46])$/.exec(line);
        if (m) names.add(m[1]!);
        current = /^Name: (watcher_\w+)_v[46]$/.exec(line)?.[1] ?? null;
      } else if (current && line.startsWith("Type: ")) this.kinds.set(current, line.startsWith("Type: hash:net") ? "networks" : "addresses");
    }
    return names;
  }

  private existingSets(): Map<string, SetKind> {
    const sets = new Map<string, SetKind>();
    for (const name of this.kernelSets()) if (/_v[46]$/.test(name)) sets.set(name.slice(0, -3), this.kinds.get(name.slice(0, -3))!);
    return sets;
  }

  private kindOf(set: string): SetKind {
    if (!this.kinds.has(set)) this.existingSets();
    return this.kinds.get(set) ?? "addresses";
  }

  /** hash:ip for single addresses; hash:net for networks (lists) and prefix bans (`_n4`, `_n6`), both with timeouts. */
  private createCommand(name: string, kind: SetKind, part: KernelPart, suffix = ""): string {
    const type = kind === "networks" || part.startsWith("n") ? "hash:net" : "hash:ip";
    return `create ${name}_${part}${suffix} ${type} family ${part.endsWith("4") ? "inet" : "inet6"} timeout 0 maxelem ${this.maxElements}`;
  }

  async ensure(wanted: readonly SetSpec[]): Promise<void> {
    const present = this.kernelSets();
    const sets = this.existingSets();
    for (const s of wanted) if (!sets.has(checkSetName(s.name))) sets.set(s.name, s.kind);
    /* a set that exists is left as it is; the prefix sets of a set made by an older watcher are added */
    const create = [...sets].flatMap(([name, kind]) => kernelParts(kind).filter((p) => !present.has(`${name}_${p}`)).map((p) => this.createCommand(name, kind, p)));
    if (create.length) exec(["ipset", "-exist", "restore"], `${create.join("\n")}\n`);
    for (const [name, kind] of sets) this.kinds.set(name, kind);
    const names = [...sets.keys()].sort((a, b) => (verdictOf(a) === verdictOf(b) ? (a < b ? -1 : 1) : verdictOf(a) === "accept" ? -1 : 1));
    for (const [tool, family] of [["iptables", "4"], ["ip6tables", "6"]] as const) {
      /* declaring the chain in a --noflush restore empties it; its new rules commit at once. Loopback first. */
      const match = (n: string) => kernelParts(sets.get(n)!).filter((p) => p.endsWith(family)).map((p) => `${n}_${p}`);
      const rules = [`-A ${CHAIN} -i lo -j RETURN`, ...names.flatMap((n) => match(n).map((k) => `-A ${CHAIN} -m set --match-set ${k} src -j ${verdictOf(n) === "accept" ? "RETURN" : "DROP"}`))];
      exec([`${tool}-restore`, "--noflush"], `*filter\n:${CHAIN} - [0:0]\n${rules.join("\n")}\nCOMMIT\n`);
      for (const hook of this.hookForward ? ["INPUT", "FORWARD"] : ["INPUT"]) {
        const present = Bun.spawnSync([tool, "-w", "-C", hook, "-j", CHAIN], { stderr: "ignore" }).exitCode === 0;
        if (!present) exec([tool, "-w", "-I", hook, "1", "-j", CHAIN]);
      }
    }
  }

  private addCommand(set: string, family: string, e: SetElement): string {
    return `add ${set}_${family} ${e.address}${e.timeout > 0 ? ` timeout ${e.timeout}` : ""}`;
  }

  /** Commands through the session, started again once if ipset died; each command's complaint. */
  private async runSession(commands: readonly string[]): Promise<string[]> {
    const complaints: string[] = [];
    for (let restarted = false; ; restarted = true) {
      this.session ??= new IpsetSession();
      try {
        complaints.push(...(await this.session.run(commands.slice(complaints.length))));
        return complaints;
      } catch (e) {
        this.session.close();
        this.session = null;
        if (!(e instanceof SessionEnded) || restarted) throw e;
        complaints.push(...Array<string>(e.done).fill("")); /* answered without complaint before it died */
      }
    }
  }

  async ban(set: string, elements: readonly SetElement[]): Promise<FirewallOutcome> {
    checkSetName(set);
    const { elements: ready, refused, clamped } = prepareElements(elements, this.maxTimeout);
    const batch = [...byPart(this.kindOf(set), ready)].flatMap(([part, list]) => list.map((e) => ({ e, c: this.addCommand(set, part, e) })));
    /* with -exist, add refreshes the timeout of an element already there */
    const complaints = await this.runSession(batch.map((b) => b.c));
    complaints.forEach((complaint, i) => {
      if (!complaint) return;
      if (NOT_ABOUT_AN_ELEMENT.test(complaint)) throw new WatcherError(`ipset refused the change: ${complaint}`);
      refused.push({ address: batch[i]!.e.address, reason: FULL.test(complaint) ? SET_FULL : refusalReason(complaint) });
    });
    return { refused, clamped };
  }

  async unban(set: string, addresses: readonly string[]): Promise<void> {
    checkSetName(set);
    const parts = byPart(this.kindOf(set), addresses);
    const complaints = (await this.runSession([...parts].flatMap(([part, list]) => list.map((a) => `del ${set}_${part} ${a}`)))).filter(Boolean);
    if (complaints.length) throw new WatcherError(`ipset refused the change: ${complaints.join("; ")}`);
  }

  async restore(set: string, elements: readonly SetElement[]): Promise<FirewallOutcome> {
    checkSetName(set);
    const kind = this.kindOf(set);
    const families = kernelParts(kind);
    const { elements: ready, refused, clamped } = prepareElements(elements, this.maxTimeout);
    const lists = byPart(kind, ready);
    /*
     * Fill temporary sets, swap them in, drop the old: the live sets are never half-filled. The
     * temporary sets are made empty first (with -exist, creating one a crash left behind is no
     * error, and it is flushed; one of other settings is destroyed and made again).
     */
    const temporary = (f: KernelPart) => `${set}_${f}_t`;
    const destroyTemporary = () => {
      for (const f of families) Bun.spawnSync(["ipset", "destroy", temporary(f)], { stderr: "ignore" });
    };
    const head = families.flatMap((f) => [this.createCommand(set, kind, f, "_t"), `flush ${temporary(f)}`]);
    const emptied = Bun.spawnSync(["ipset", "-exist", "restore"], { stdin: new TextEncoder().encode(`${head.join("\n")}\n`), stderr: "ignore" }).exitCode === 0;
    if (!emptied) {
      destroyTemporary();
      exec(["ipset", "-exist", "restore"], `${head.join("\n")}\n`);
    }
    /* the elements straight over netlink; anything refused there, and the whole load goes through `ipset restore`, whose words say why */
    this.netlink ??= IpsetNetlink.open();
    const netlink = this.netlink;
    const isNetwork = (f: KernelPart) => kind === "networks" || f.startsWith("n");
    if (netlink && families.every((f) => netlink.add(temporary(f), lists.get(f) ?? [], isNetwork(f))) && netlink.swapAndDestroy(families.map((f) => [temporary(f), `${set}_${f}`]))) {
      return { refused, clamped };
    }
    /* one `ipset restore`: the temporary sets emptied again, filled, swapped in, the old ones dropped */
    const tail = families.flatMap((f) => [`swap ${temporary(f)} ${set}_${f}`, `destroy ${temporary(f)}`]);
    let adds = families.flatMap((family) => (lists.get(family) ?? []).map((e) => ({ e, family, line: this.addCommand(set, `${family}_t`, e) })));
    for (;;) {
      const script = `${head.join("\n")}\n${adds.map((a) => `${a.line}\n`).join("")}${tail.join("\n")}\n`;
      const p = Bun.spawnSync(["ipset", "-exist", "restore"], { stdin: new TextEncoder().encode(script), stdout: "pipe", stderr: "pipe" });
      if (p.exitCode === 0) break;
      const error = p.stderr.toString().trim();
      const line = Number(/Error in line (\d+):/.exec(error)?.[1] ?? 0) - head.length - 1;
      if (NOT_ABOUT_AN_ELEMENT.test(error) || line < 0 || line >= adds.length) {
        destroyTemporary();
        throw new WatcherError(`ipset refused the change: ${error}`);
      }
      /* the lines before it may or may not be in: -exist makes adding them again harmless */
      if (FULL.test(error)) {
        /* the temporary set is full: nothing after this line fits in it any more */
        const full = adds[line]!.family;
        for (const a of adds.slice(line)) if (a.family === full) refused.push({ address: a.e.address, reason: SET_FULL });
        adds = adds.filter((a, i) => i < line || a.family !== full);
      } else {
        refused.push({ address: adds[line]!.e.address, reason: refusalReason(error) });
        adds = adds.filter((_, i) => i !== line);
      }
    }
    return { refused, clamped };
  }

  async list(set: string): Promise<ListedElement[]> {
    return listParts(set, this.kindOf(set), (kernelSet) =>
      exec(["ipset", "save", kernelSet])
        .split("\n")
        .map((line) => /^add \S+ (\S+)(?: timeout (\d+))?/.exec(line))
        .filter((m) => m !== null)
        .map((m) => ({ address: m[1]!, timeout: Number(m[2] ?? 0) })),
    );
  }

  /* the jumps into our chain, and in it the loopback rule and a rule for each of our sets of its family: `iptables -F` or a deleted rule takes drops away too */
  async intact(): Promise<boolean> {
    const sets = [...this.kernelSets()];
    for (const [tool, family] of [["iptables", "4"], ["ip6tables", "6"]] as const) {
      for (const hook of this.hookForward ? ["INPUT", "FORWARD"] : ["INPUT"]) {
        if (Bun.spawnSync([tool, "-w", "-C", hook, "-j", CHAIN], { stdout: "ignore", stderr: "ignore" }).exitCode !== 0) return false;
      }
      const listed = Bun.spawnSync([tool, "-w", "-S", CHAIN], { stdout: "pipe", stderr: "ignore" });
      const rules = listed.exitCode === 0 ? listed.stdout.toString() : "";
      if (!rules.includes(`-A ${CHAIN} -i lo -j RETURN`)) return false;
      if (sets.some((set) => set.endsWith(family) && !rules.includes(`--match-set ${set} src`))) return false;
    }
    return true;
  }

  async teardown(): Promise<void> {
    for (const tool of ["iptables", "ip6tables"]) {
      for (const hook of ["INPUT", "FORWARD"]) {
        while (Bun.spawnSync([tool, "-w", "-D", hook, "-j", CHAIN], { stderr: "ignore" }).exitCode === 0);
      }
      Bun.spawnSync([tool, "-w", "-F", CHAIN], { stderr: "ignore" });
      Bun.spawnSync([tool, "-w", "-X", CHAIN], { stderr: "ignore" });
    }
    this.session?.close();
    this.session = null;
    for (const name of this.kernelSets()) Bun.spawnSync(["ipset", "destroy", name], { stderr: "ignore" });
    this.kinds.clear();
  }

  async close(): Promise<void> {
    this.session?.close();
    this.session = null;
    this.netlink?.close();
    this.netlink = null;
  }
}
