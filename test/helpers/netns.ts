/**
 * Network namespaces for kernel tests: a server namespace and an attacker namespace joined by
 * a veth pair, documentation addresses only. Everything is deleted by cleanup(); processes
 * started here are ended by PID.
 */
import { afterAll, beforeAll } from "bun:test";
import { join } from "node:path";

export const BUN = join(import.meta.dir, "..", "..", "node_modules", ".bin", "bun");
const TCP = join(import.meta.dir, "tcp.ts");

export const SERVER_V4 = "198.51.100.1";
export const SERVER_V6 = "2001:db8:1::1";
export const ATTACKER_V4 = "198.51.100.66";
export const ATTACKER_V6 = "2001:db8:1::66";
/** a second address of the attacker namespace, whitelisted by the tests */
export const FRIEND_V4 = "198.51.100.7";
export const PORT = 8022;

function sh(argv: string[]): string {
  const p = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${p.stderr.toString().trim()}`);
  return p.stdout.toString();
}

export class TestNet {
  readonly id = `${process.pid % 10000}${Math.floor(Math.random() * 1000)}`;
  readonly server = `wt-srv-${this.id}`;
  readonly attacker = `wt-att-${this.id}`;
  private readonly procs: Bun.Subprocess[] = [];

  setup(): this {
    try {
      this.create();
    } catch (e) {
      this.cleanup(); /* a half-made pair must not outlive the test */
      throw e;
    }
    return this;
  }

  private create(): void {
    const [vs, va] = [`wts${this.id}`, `wta${this.id}`];
    sh(["ip", "netns", "add", this.server]);
    sh(["ip", "netns", "add", this.attacker]);
    sh(["ip", "link", "add", vs, "netns", this.server, "type", "veth", "peer", "name", va, "netns", this.attacker]);
    for (const [ns, dev, addrs] of [
      [this.server, vs, [`${SERVER_V4}/24`, `${SERVER_V6}/64`]],
      [this.attacker, va, [`${ATTACKER_V4}/24`, `${FRIEND_V4}/24`, `${ATTACKER_V6}/64`]],
    ] as const) {
      for (const a of addrs) sh(["ip", "-n", ns, "addr", "add", a, "dev", dev, ...(a.includes(":") ? ["nodad"] : [])]);
      sh(["ip", "-n", ns, "link", "set", dev, "up"]);
      sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
    }
  }

  /** Run to completion inside a namespace. */
  exec(ns: string, argv: string[], stdin?: string) {
    const p = Bun.spawnSync(["ip", "netns", "exec", ns, ...argv], { stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin), stdout: "pipe", stderr: "pipe" });
    return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
  }

  /** Start in the background inside a namespace; ended by cleanup(). */
  spawn(ns: string, argv: string[]): Bun.Subprocess<"ignore", "pipe", "pipe"> {
    const p = Bun.spawn(["ip", "netns", "exec", ns, ...argv], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    this.procs.push(p);
    return p;
  }

  /** A TCP service in the server namespace that answers every connection. */
  async serve(): Promise<void> {
    const p = this.spawn(this.server, [BUN, TCP, "serve", String(PORT)]);
    const reader = p.stdout.getReader();
    const { value } = await reader.read();
    reader.releaseLock();
    if (!new TextDecoder().decode(value).includes("listening")) throw new Error("the test service did not start");
  }

  /** Can `from` (an address of the attacker namespace) open a connection to the server's `port`? */
  reachable(from: string, timeoutMs = 700, port = PORT): boolean {
    const to = from.includes(":") ? SERVER_V6 : SERVER_V4;
    const r = this.exec(this.attacker, [BUN, TCP, "probe", to, String(port), from, String(timeoutMs)]);
    if (r.out.trim() !== "open" && r.out.trim() !== "blocked") throw new Error(`probe failed: ${r.out} ${r.err}`);
    return r.out.trim() === "open";
  }

  cleanup(): void {
    for (const p of this.procs) if (p.exitCode === null) p.kill("SIGKILL");
    /* and whatever those started inside (an sshd's per-connection children, a forked master) */
    for (const ns of [this.server, this.attacker]) {
      const pids = Bun.spawnSync(["ip", "netns", "pids", ns], { stdout: "pipe", stderr: "ignore" }).stdout.toString();
      for (const pid of pids.split("\n").filter(Boolean)) {
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {
          /* gone already */
        }
      }
    }
    Bun.spawnSync(["ip", "netns", "del", this.server]);
    Bun.spawnSync(["ip", "netns", "del", this.attacker]);
  }
}

/** One TestNet, with its TCP service, for the tests of a file: made before them, deleted after. */
export function testNetForFile(): () => TestNet {
  let net: TestNet | null = null;
  beforeAll(async () => {
    net = new TestNet().setup();
    await net.serve();
  });
  afterAll(() => net?.cleanup());
  return () => net!;
}

let sshdPid = 3000;

/** `n` failed logins from `address` in sshd's words, now (ISO time), each of a new sshd process. */
export function invalidUsers(address: string, n: number): string {
  const stamp = new Date().toISOString().replace(/\.\d+Z$/, "+00:00");
  return Array.from({ length: n }, () => `${stamp} srv sshd[${sshdPid++}]: Invalid user admin from ${address} port 4000\n`).join("");
}
