/**
 * ipset + iptables/ip6tables backend, for hosts without nftables. Each logical set is two ipsets
 * (`_v4` hash:ip/hash:net family inet, `_v6` family inet6) with timeouts; a chain WATCHER,
 * jumped to first from INPUT (and FORWARD if asked), returns for loopback and the whitelist
 * and drops every other set. Single bans go through one long-lived `ipset -exist -` session
 * (its prompt is the acknowledgement); bulk loads through `ipset restore` with a swap, so a set
 * is replaced atomically. Commands are argument vectors, never a shell.
 *
 * An element ipset refuses ("Hash is full" at maxelem, ...) is reported, and the others are
 * added: the session reads each command's complaint before the next command; a restore that
 * stops at a refused line ("Error in line N") is run again without it before the swap.
 */
import { closeSync, fstatSync, ftruncateSync, openSync, readSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WatcherError } from "../errors";
import {
  byFamily,
  checkSetName,
  DEFAULT_MAX_ELEMENTS,
  type Firewall,
  type FirewallOutcome,
  type KernelOptions,
  type ListedElement,
  prepareElements,
  type Refusal,
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
  /** kinds of the sets seen in the kernel, by logical name */
  private readonly kinds = new Map<string, SetKind>();

  constructor(
    private readonly hookForward = false,
    options: KernelOptions = {},
  ) {
    this.maxElements = options.maxElements ?? DEFAULT_MAX_ELEMENTS;
  }

  private existingSets(): Map<string, SetKind> {
    const sets = new Map<string, SetKind>();
    let current: string | null = null;
    for (const line of exec(["ipset", "list", "-t"]).split("\n")) {
      if (line.startsWith("Name: ")) current = /^Name: (watcher_\w+)_v[46]$/.exec(line)?.[1] ?? null;
      else if (current && line.startsWith("Type: ")) sets.set(current, line.startsWith("Type: hash:net") ? "networks" : "addresses");
    }
    for (const [name, kind] of sets) this.kinds.set(name, kind);
    return sets;
  }

  /**
   * The elements a set of this kind can take: hash:ip would add every address of a network
   * one by one (and fill up half way), so a network in a set of single addresses is refused.
   */
  private fitting(set: string, elements: SetElement[], refused: Refusal[]): SetElement[] {
    if (!this.kinds.has(set)) this.existingSets();
    if (this.kinds.get(set) === "networks") return elements;
    return elements.filter((e) => {
      if (!e.address.includes("/")) return true;
      refused.push({ address: e.address, reason: "a network in a set of single addresses" });
      return false;
    });
  }

  private createCommands(name: string, kind: SetKind, suffix = ""): string[] {
    const type = kind === "networks" ? "hash:net" : "hash:ip";
    const opts = `timeout 0 maxelem ${this.maxElements}`;
    return [`create ${name}_v4${suffix} ${type} family inet ${opts}`, `create ${name}_v6${suffix} ${type} family inet6 ${opts}`];
  }

  async ensure(wanted: readonly SetSpec[]): Promise<void> {
    const sets = this.existingSets();
    const create = wanted.filter((s) => !sets.has(checkSetName(s.name))).flatMap((s) => this.createCommands(s.name, s.kind));
    if (create.length) exec(["ipset", "-exist", "restore"], `${create.join("\n")}\n`);
    for (const s of wanted) {
      if (sets.has(s.name)) continue;
      sets.set(s.name, s.kind);
      this.kinds.set(s.name, s.kind);
    }
    const names = [...sets.keys()].sort((a, b) => (verdictOf(a) === verdictOf(b) ? (a < b ? -1 : 1) : verdictOf(a) === "accept" ? -1 : 1));
    for (const [tool, family] of [["iptables", "v4"], ["ip6tables", "v6"]] as const) {
      /* declaring the chain in a --noflush restore empties it; its new rules commit at once. Loopback first. */
      const rules = [`-A ${CHAIN} -i lo -j RETURN`, ...names.map((n) => `-A ${CHAIN} -m set --match-set ${n}_${family} src -j ${verdictOf(n) === "accept" ? "RETURN" : "DROP"}`)];
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
    const { v4, v6 } = byFamily(this.fitting(set, ready, refused));
    const batch = [...v4.map((e) => ({ e, c: this.addCommand(set, "v4", e) })), ...v6.map((e) => ({ e, c: this.addCommand(set, "v6", e) }))];
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
    const { v4, v6 } = byFamily(addresses);
    const complaints = (await this.runSession([...v4.map((a) => `del ${set}_v4 ${a}`), ...v6.map((a) => `del ${set}_v6 ${a}`)])).filter(Boolean);
    if (complaints.length) throw new WatcherError(`ipset refused the change: ${complaints.join("; ")}`);
  }

  async restore(set: string, elements: readonly SetElement[]): Promise<FirewallOutcome> {
    checkSetName(set);
    const kind = this.existingSets().get(set) ?? "addresses";
    const { elements: ready, refused, clamped } = prepareElements(elements, this.maxTimeout);
    const lists = byFamily(this.fitting(set, ready, refused));
    /* fill a temporary set, swap it in, drop the old: the live set is never half-filled */
    for (const f of ["v4", "v6"]) Bun.spawnSync(["ipset", "destroy", `${set}_${f}_t`], { stderr: "ignore" }); /* a crash's leftover */
    const head = this.createCommands(set, kind, "_t");
    let adds = (["v4", "v6"] as const).flatMap((family) => lists[family].map((e) => ({ e, family, line: this.addCommand(set, `${family}_t`, e) })));
    for (;;) {
      const p = Bun.spawnSync(["ipset", "-exist", "restore"], { stdin: new TextEncoder().encode(`${[...head, ...adds.map((a) => a.line)].join("\n")}\n`), stdout: "pipe", stderr: "pipe" });
      if (p.exitCode === 0) break;
      const error = p.stderr.toString().trim();
      const line = Number(/Error in line (\d+):/.exec(error)?.[1] ?? 0) - head.length - 1;
      if (NOT_ABOUT_AN_ELEMENT.test(error) || line < 0 || line >= adds.length) {
        for (const f of ["v4", "v6"]) Bun.spawnSync(["ipset", "destroy", `${set}_${f}_t`], { stderr: "ignore" });
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
    exec(["ipset", "restore"], `swap ${set}_v4_t ${set}_v4\nswap ${set}_v6_t ${set}_v6\ndestroy ${set}_v4_t\ndestroy ${set}_v6_t\n`);
    return { refused, clamped };
  }

  async list(set: string): Promise<ListedElement[]> {
    checkSetName(set);
    const out: ListedElement[] = [];
    for (const family of ["v4", "v6"]) {
      let text: string;
      try {
        text = exec(["ipset", "save", `${set}_${family}`]);
      } catch {
        continue;
      }
      for (const line of text.split("\n")) {
        const m = /^add \S+ (\S+)(?: timeout (\d+))?/.exec(line);
        if (m) out.push({ address: m[1]!, timeout: Number(m[2] ?? 0) });
      }
    }
    return out;
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
    for (const name of this.existingSets().keys()) {
      for (const f of ["v4", "v6"]) Bun.spawnSync(["ipset", "destroy", `${name}_${f}`], { stderr: "ignore" });
    }    this.kinds.clear();
  }

  async close(): Promise<void> {
    this.session?.close();
    this.session = null;
  }
}
