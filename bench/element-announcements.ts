/**
 * The kernel's own announcements of elements added to nf_tables sets: the multicast group `nft
 * monitor` listens to, joined in the benchmark's process. A blocking recv() wakes the benchmark
 * when the kernel commits an element, with no process in between: `nft monitor` adds its own
 * wake-up, its printing, a pipe and ours, about 0.2 ms a ban under load, and on two cores its
 * CPU competes with the processes being timed. Used by bench/kernel.ts in its namespace, and by
 * bench/fleet.ts through element-worker.ts, a thread that enters node B's namespace.
 */
import { dlopen, FFIType } from "bun:ffi";
import { closeSync, openSync } from "node:fs";
import { libc } from "../src/core/libc";

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const NETLINK_NETFILTER = 12;
const NFNLGRP_NFTABLES = 7;
const NFT_MSG_NEWSETELEM = (10 /* NFNL_SUBSYS_NFTABLES */ << 8) | 12;
const NFNETLINK_HEADER = 20; /* nlmsghdr 16 + nfgenmsg 4 */

/** An element the kernel added: its set's name and its key (4 or 16 bytes for our address sets). */
export interface Announced {
  readonly set: string;
  readonly key: Uint8Array;
}

export class ElementAnnouncements {
  private readonly fd: number;
  private readonly buf = new Uint8Array(1 << 16);
  private readonly view = new DataView(this.buf.buffer);
  private readonly decoder = new TextDecoder();

  /** `waitSeconds`: how long receive() blocks before it gives up (returns null). */
  constructor(waitSeconds: number) {
    this.fd = libc().socket(AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER);
    if (this.fd < 0) throw new Error("no netlink socket");
    const ok = (rc: number, what: string) => {
      if (rc !== 0) throw new Error(`setsockopt ${what} failed`);
    };
    /* bound (sockaddr_nl: family, pad, pid 0 = the kernel picks one, groups): an unbound socket's port id 0 is the one a broadcast skips */
    const address = new DataView(new ArrayBuffer(12));
    address.setUint16(0, AF_NETLINK, true);
    address.setUint32(8, 1 << (NFNLGRP_NFTABLES - 1), true);
    if (libc().bind(this.fd, new Uint8Array(address.buffer), 12) !== 0) throw new Error("cannot join the nf_tables multicast group");
    const seconds = Math.floor(waitSeconds);
    ok(libc().setsockopt(this.fd, 1 /* SOL_SOCKET */, 20 /* SO_RCVTIMEO */, new BigInt64Array([BigInt(seconds), BigInt(Math.round((waitSeconds - seconds) * 1e6))]), 16), "timeout");
    ok(libc().setsockopt(this.fd, 1, 33 /* SO_RCVBUFFORCE */, new Int32Array([1 << 22]), 4), "buffer");
  }

  /** Wait (blocking) for the kernel's next message: the elements it announces and performance.now() when it came; null after the wait. */
  receive(): { at: number; elements: Announced[] } | null {
    const n = libc().recv(this.fd, this.buf, this.buf.length, 0);
    const at = performance.now();
    if (n <= 0) return null;
    const elements: Announced[] = [];
    for (let p = 0; p + NFNETLINK_HEADER <= n; ) {
      const length = this.view.getUint32(p, true);
      if (this.view.getUint16(p + 4, true) === NFT_MSG_NEWSETELEM) this.collect(p + NFNETLINK_HEADER, p + length, elements);
      if (length < 16) break;
      p += (length + 3) & ~3;
    }
    return { at, elements };
  }

  /** The elements of one message's attributes in [from, to): set name (attribute 2), elements (3 > list 1 > key 1 > value 1). */
  private collect(from: number, to: number, into: Announced[]): void {
    let set = "";
    const keys: Uint8Array[] = [];
    this.attributes(from, to, (type, at, end) => {
      if (type === 2) set = this.decoder.decode(this.buf.subarray(at, end)).replace(/\0+$/, "");
      if (type === 3)
        this.attributes(at, end, (_, e, eEnd) =>
          this.attributes(e, eEnd, (t, k, kEnd) => {
            if (t === 1) this.attributes(k, kEnd, (v, d, dEnd) => v === 1 && keys.push(this.buf.slice(d, dEnd)));
          }),
        );
    });
    for (const key of keys) into.push({ set, key });
  }

  private attributes(from: number, to: number, each: (type: number, at: number, end: number) => void): void {
    for (let p = from; p + 4 <= to; ) {
      const length = this.view.getUint16(p, true);
      if (length < 4) return;
      each(this.view.getUint16(p + 2, true) & 0x3fff, p + 4, p + length);
      p += (length + 3) & ~3;
    }
  }

  close(): void {
    libc().close(this.fd);
  }
}

/** An address key as text: dotted IPv4, or IPv6 as eight hexadecimal groups (not compressed: parse it for the canonical form). */
export function keyText(key: Uint8Array): string {
  if (key.length === 4) return key.join(".");
  const groups: string[] = [];
  for (let i = 0; i + 1 < key.length; i += 2) groups.push(((key[i]! << 8) | key[i + 1]!).toString(16));
  return groups.join(":");
}

/** The two calls of libc's the probes need beyond src/core/libc.ts's, opened once. */
let probeCalls: ReturnType<typeof openProbeCalls> | null = null;
function openProbeCalls() {
  return dlopen("libc.so.6", {
    setns: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    sched_setscheduler: { args: [FFIType.i32, FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  }).symbols;
}

/** The calling thread into network namespace `name` (/var/run/netns): setns applies to this thread only. */
export function enterNetworkNamespace(name: string): void {
  probeCalls ??= openProbeCalls();
  const fd = openSync(`/var/run/netns/${name}`, "r");
  const entered = probeCalls.setns(fd, 0x40000000 /* CLONE_NEWNET */);
  closeSync(fd);
  if (entered !== 0) throw new Error(`cannot enter network namespace ${name}`);
}

/**
 * The calling thread (the one that waits in receive()) at real-time priority (SCHED_FIFO 10),
 * so that it wakes when the kernel announces an element, not when the processes being timed
 * leave it a CPU: on two cores, an observer of ordinary priority put its own 2-4 ms wake-ups
 * into the 99th percentile. It only reads the time and sleeps again. False when refused.
 */
export function listenAtRealTimePriority(): boolean {
  probeCalls ??= openProbeCalls();
  return probeCalls.sched_setscheduler(0 /* this thread */, 1 /* SCHED_FIFO */, new Int32Array([10])) === 0;
}
