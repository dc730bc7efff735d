/**
 * A real redis-server for fleet tests: loopback on a free port and a Unix socket (reachable
 * from inside a network namespace), its own temporary folder, AOF with fsync on every write
 * so a restart keeps every acknowledged decision. With `tls`, it also listens for TLS with a
 * certificate for 127.0.0.1 signed by a CA of its own (`ca`). Ended by PID.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A TCP port on loopback that nothing listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function openssl(...args: string[]): void {
  const p = Bun.spawnSync(["openssl", ...args], { stdout: "ignore", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`openssl ${args[0]}: ${p.stderr.toString()}`);
}

export class TestRedis {
  readonly dir = mkdtempSync(join(tmpdir(), "watcher-redis-"));
  readonly socket = join(this.dir, "redis.sock");
  readonly ca = join(this.dir, "ca.pem");
  port = 0;
  tlsPort = 0;
  private proc: Bun.Subprocess | null = null;

  constructor(private readonly tls = false) {}

  get tlsUrl(): string {
    return `rediss://127.0.0.1:${this.tlsPort}`;
  }

  /** redis-server's TLS options; the certificates are made once (a restart keeps them) */
  private tlsArgs(): string[] {
    const at = (f: string) => join(this.dir, f);
    if (!existsSync(at("server.pem"))) this.makeCertificates();
    return ["--tls-port", String(this.tlsPort), "--tls-cert-file", at("server.pem"), "--tls-key-file", at("server.key"), "--tls-ca-cert-file", this.ca, "--tls-auth-clients", "no"];
  }

  private makeCertificates(): void {
    const at = (f: string) => join(this.dir, f);
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", at("ca.key"), "-out", this.ca, "-days", "2", "-subj", "/CN=watcher test CA");
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", at("server.key"), "-out", at("server.csr"), "-subj", "/CN=127.0.0.1");
    writeFileSync(at("ext.cnf"), "subjectAltName=IP:127.0.0.1\n");
    openssl("x509", "-req", "-in", at("server.csr"), "-CA", this.ca, "-CAkey", at("ca.key"), "-CAcreateserial", "-out", at("server.pem"), "-days", "2", "-extfile", at("ext.cnf"));
  }

  get running(): boolean {
    return this.proc !== null;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    if (this.port === 0) this.port = await freePort();
    if (this.tls && this.tlsPort === 0) this.tlsPort = await freePort();
    const tls = this.tls ? this.tlsArgs() : [];
    this.proc = Bun.spawn(
      ["redis-server", "--port", String(this.port), "--bind", "127.0.0.1", "--unixsocket", this.socket, "--unixsocketperm", "700",
       "--dir", this.dir, "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no", "--logfile", join(this.dir, "redis.log"), ...tls],
      { stdin: "ignore", stdout: "ignore", stderr: "pipe" },
    );
    for (const until = Date.now() + 60_000; Date.now() < until; await Bun.sleep(20)) {
      if (this.cli("PING").trim() === "PONG") return this;
    }
    throw new Error(`redis-server did not start on port ${this.port}`);
  }

  /** redis-cli against this server; returns its output. */
  cli(...args: string[]): string {
    return Bun.spawnSync(["redis-cli", "-p", String(this.port), ...args], { stdout: "pipe", stderr: "pipe" }).stdout.toString();
  }

  /** Stop the server where it stands (SIGSTOP): its sockets stay open and nothing answers, as a frozen VM's. */
  freeze(): void {
    this.proc?.kill("SIGSTOP");
  }

  thaw(): void {
    this.proc?.kill("SIGCONT");
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
