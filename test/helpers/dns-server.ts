/**
 * A small authoritative DNS server over UDP on loopback, for classification tests: PTR, A and
 * AAAA answers from a table, NXDOMAIN for unknown names, answers that come late or never, and
 * a count of the queries each name received.
 */
import type { udp } from "bun";

export interface DnsRecords {
  /** name → PTR targets */
  ptr?: Record<string, string[]>;
  a?: Record<string, string[]>;
  aaaa?: Record<string, string[]>;
  /** names answered only after this many milliseconds */
  delayMs?: Record<string, number>;
  /** names never answered */
  silent?: string[];
  /** names answered SERVFAIL */
  servfail?: string[];
}

const TYPE = { A: 1, PTR: 12, AAAA: 28 } as const;

function encodeName(name: string): number[] {
  const out: number[] = [];
  for (const label of name.replace(/\.$/, "").split(".")) {
    out.push(label.length, ...new TextEncoder().encode(label));
  }
  out.push(0);
  return out;
}

function readName(buf: Uint8Array, at: number): { name: string; end: number } {
  const labels: string[] = [];
  let i = at;
  while (buf[i]! !== 0) {
    const len = buf[i]!;
    labels.push(new TextDecoder().decode(buf.subarray(i + 1, i + 1 + len)));
    i += 1 + len;
  }
  return { name: labels.join(".").toLowerCase(), end: i + 1 };
}

function ipv6Bytes(text: string): number[] {
  const [head, tail] = text.split("::") as [string, string | undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  return groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 255]);
}

export class TestDnsServer {
  readonly queries = new Map<string, number>();
  private socket: udp.Socket<"buffer"> | null = null;

  constructor(private readonly records: DnsRecords) {}

  get port(): number {
    return this.socket!.port;
  }

  /** `127.0.0.1:port`, for a resolver's server list */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.socket = await Bun.udpSocket({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        data: (sock, data, port, address) => {
          const reply = this.answer(new Uint8Array(data));
          if (!reply) return;
          const delay = this.records.delayMs?.[this.lastName] ?? 0;
          const send = () => {
            if (this.socket) sock.send(reply, port, address); /* stopped meanwhile: stay silent */
          };
          if (delay > 0) setTimeout(send, delay);
          else send();
        },
      },
    });
    return this;
  }

  private lastName = "";

  private answer(q: Uint8Array): Uint8Array | null {
    const { name, end } = readName(q, 12);
    const type = (q[end]! << 8) | q[end + 1]!;
    this.lastName = name;
    this.queries.set(name, (this.queries.get(name) ?? 0) + 1);
    if (this.records.silent?.includes(name)) return null;
    const question = Array.from(q.subarray(12, end + 4));
    const answers: number[][] = [];
    let rcode = 0;
    if (this.records.servfail?.includes(name)) rcode = 2;
    else {
      const table = type === TYPE.PTR ? this.records.ptr : type === TYPE.A ? this.records.a : type === TYPE.AAAA ? this.records.aaaa : undefined;
      const known = [this.records.ptr, this.records.a, this.records.aaaa].some((t) => t && name in t);
      if (!known) rcode = 3; /* NXDOMAIN */
      for (const value of table?.[name] ?? []) {
        const rdata = type === TYPE.PTR ? encodeName(value) : type === TYPE.A ? value.split(".").map(Number) : ipv6Bytes(value);
        answers.push([0xc0, 12, type >> 8, type & 255, 0, 1, 0, 0, 0x0e, 0x10, rdata.length >> 8, rdata.length & 255, ...rdata]);
      }
    }
    const header = [q[0]!, q[1]!, 0x84 | (q[2]! & 1), 0x80 | rcode, 0, 1, answers.length >> 8, answers.length & 255, 0, 0, 0, 0];
    return new Uint8Array([...header, ...question, ...answers.flat()]);
  }

  stop(): void {
    this.socket?.close();
    this.socket = null;
  }
}
