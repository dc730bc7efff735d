/**
 * A real redis-server for fleet tests: loopback on a free port and a Unix socket (reachable
 * from inside a network namespace), its own temporary folder, AOF with fsync on every write
 * so a restart keeps every acknowledged decision. Ended by PID.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export class TestRedis {
  readonly dir = mkdtempSync(join(tmpdir(), "watcher-redis-"));
  readonly socket = join(this.dir, "redis.sock");
  port = 0;
  private proc: Bun.Subprocess | null = null;

  get running(): boolean {
    return this.proc !== null;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    if (this.port === 0) this.port = await freePort();
    this.proc = Bun.spawn(
      ["redis-server", "--port", String(this.port), "--bind", "127.0.0.1", "--unixsocket", this.socket, "--unixsocketperm", "700",
       "--dir", this.dir, "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no", "--logfile", join(this.dir, "redis.log")],
      { stdin: "ignore", stdout: "ignore", stderr: "pipe" },
    );
    for (const until = Date.now() + 5000; Date.now() < until; await Bun.sleep(20)) {
      if (this.cli("PING").trim() === "PONG") return this;
    }
    throw new Error(`redis-server did not start on port ${this.port}`);
  }

  /** redis-cli against this server; returns its output. */
  cli(...args: string[]): string {
    return Bun.spawnSync(["redis-cli", "-p", String(this.port), ...args], { stdout: "pipe", stderr: "pipe" }).stdout.toString();
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (!p) return;
    p.kill("SIGTERM");
    await p.exited;
  }

  async cleanup(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
