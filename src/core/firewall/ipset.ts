/**
 * ipset + iptables/ip6tables backend, for hosts without nftables. Each logical set is two ipsets
 * (`_v4` hash:ip/hash:net family inet, `_v6` family inet6) with timeouts; a chain WATCHER,
 * jumped to first from INPUT (and FORWARD if asked), returns for loopback and the whitelist
 * and drops every other set. Single bans go through one long-lived `ipset -exist -` session (its prompt is the
 * acknowledgement); bulk loads through `ipset restore` with a swap, so a set is replaced
 * atomically. Commands are argument vectors, never a shell.
 */
import { WatcherError } from "../errors";
import { byFamily, checkSetName, type Firewall, type ListedElement, type SetElement, type SetKind, type SetSpec, verdictOf } from "./types";

const CHAIN = "WATCHER";
const MAX_ELEMENTS = 1 << 20;
const PROMPT = "ipset> ";

function exec(argv: string[], stdin?: string): string {
  const p = Bun.spawnSync(argv, { stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin), stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new WatcherError(`${argv[0]} ${argv.slice(1, 3).join(" ")}: ${p.stderr.toString().trim() || `exit ${p.exitCode}`}`);
  return p.stdout.toString();
}

export function ipsetAvailable(): boolean {
  return Bun.which("ipset") !== null && Bun.which("iptables") !== null && Bun.which("ip6tables") !== null;
}

/**
 * One `ipset -exist -` process: write a command, wait for the next prompt. ipset buffers its
 * prompt when stdout is a pipe, so it runs under `stdbuf -o0` (coreutils).
 */
class IpsetSession {
  private readonly proc = Bun.spawn(["stdbuf", "-o0", "ipset", "-exist", "-"], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  private readonly reader = this.proc.stdout.getReader();
  private readonly decoder = new TextDecoder();
  private buffered = "";
  private errors = "";
  private queue: Promise<void> = this.untilPrompt(); /* the first prompt: ready */

  constructor() {
    void (async () => {
      for await (const chunk of this.proc.stderr) this.errors += this.decoder.decode(chunk);
    })();
  }

  private async untilPrompt(): Promise<void> {
    while (!this.buffered.includes(PROMPT)) {
      const { value, done } = await this.reader.read();
      if (done) throw new WatcherError("the ipset session ended");
      this.buffered += this.decoder.decode(value, { stream: true });
    }
    this.buffered = this.buffered.slice(this.buffered.indexOf(PROMPT) + PROMPT.length);
  }

  /** Run commands one after the other; resolves when ipset has done the last. */
  run(commands: readonly string[]): Promise<void> {
    const done = this.queue.then(async () => {
      for (const c of commands) {
        this.proc.stdin.write(`${c}\n`);
        this.proc.stdin.flush();
        await this.untilPrompt();
      }
      await new Promise((resolve) => setImmediate(resolve)); /* let the stderr reader catch up */
      if (this.errors) {
        const errors = this.errors.trim();
        this.errors = "";
        throw new WatcherError(`ipset refused the change: ${errors}`);
      }
    });
    this.queue = done.catch(() => {});
    return done;
  }

  close(): void {
    this.proc.stdin.end();
    this.proc.kill();
  }
}

export class IpsetFirewall implements Firewall {
  readonly backend = "ipset";
  private session: IpsetSession | null = null;

  constructor(private readonly hookForward = false) {}

  private existingSets(): Map<string, SetKind> {
    const sets = new Map<string, SetKind>();
    let current: string | null = null;
    for (const line of exec(["ipset", "list", "-t"]).split("\n")) {
      if (line.startsWith("Name: ")) current = /^Name: (watcher_\w+)_v[46]$/.exec(line)?.[1] ?? null;
      else if (current && line.startsWith("Type: ")) sets.set(current, line.startsWith("Type: hash:net") ? "networks" : "addresses");
    }
    return sets;
  }

  private createCommands(name: string, kind: SetKind, suffix = ""): string[] {
    const type = kind === "networks" ? "hash:net" : "hash:ip";
    const opts = `timeout 0 maxelem ${MAX_ELEMENTS}`;
    return [`create ${name}_v4${suffix} ${type} family inet ${opts}`, `create ${name}_v6${suffix} ${type} family inet6 ${opts}`];
  }

  async ensure(wanted: readonly SetSpec[]): Promise<void> {
    const sets = this.existingSets();
    const create = wanted.filter((s) => !sets.has(checkSetName(s.name))).flatMap((s) => this.createCommands(s.name, s.kind));
    if (create.length) exec(["ipset", "-exist", "restore"], `${create.join("\n")}\n`);
    for (const s of wanted) sets.set(s.name, s.kind);
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
    return `add ${set}_${family} ${e.address}${e.timeout > 0 ? ` timeout ${Math.max(1, Math.round(e.timeout))}` : ""}`;
  }

  async ban(set: string, elements: readonly SetElement[]): Promise<void> {
    checkSetName(set);
    const { v4, v6 } = byFamily(elements);
    this.session ??= new IpsetSession();
    /* with -exist, add refreshes the timeout of an element already there */
    await this.session.run([...v4.map((e) => this.addCommand(set, "v4", e)), ...v6.map((e) => this.addCommand(set, "v6", e))]);
  }

  async unban(set: string, addresses: readonly string[]): Promise<void> {
    checkSetName(set);
    const { v4, v6 } = byFamily(addresses);
    this.session ??= new IpsetSession();
    await this.session.run([...v4.map((a) => `del ${set}_v4 ${a}`), ...v6.map((a) => `del ${set}_v6 ${a}`)]);
  }

  async restore(set: string, elements: readonly SetElement[]): Promise<void> {
    checkSetName(set);
    const kind = this.existingSets().get(set) ?? "addresses";
    const { v4, v6 } = byFamily(elements);
    /* fill a temporary set, swap it in, drop the old: the live set is never half-filled */
    const lines: string[] = this.createCommands(set, kind, "_t");
    for (const e of v4) lines.push(this.addCommand(set, "v4_t", e));
    for (const e of v6) lines.push(this.addCommand(set, "v6_t", e));
    lines.push(`swap ${set}_v4_t ${set}_v4`, `swap ${set}_v6_t ${set}_v6`, `destroy ${set}_v4_t`, `destroy ${set}_v6_t`);
    exec(["ipset", "-exist", "restore"], `${lines.join("\n")}\n`);
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
    }
  }

  async close(): Promise<void> {
    this.session?.close();
    this.session = null;
  }
}
