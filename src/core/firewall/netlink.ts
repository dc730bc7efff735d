/**
 * nf_tables over a netlink socket of our own, for the two calls where libnftables costs more
 * than the kernel's work: a chunk's bans and a restore of single addresses. libnftables parses
 * text with its grammar and reads the table's sets from the kernel before each command (its
 * cache): 150–300 µs for one ban on this machine, against about 50 µs for the same transaction
 * sent here as one batch; for a restore of 100,000 bans its parser is half the time.
 *
 * One call is one batch, and a batch is one transaction: the kernel takes all of it or nothing.
 * The kernel handles a netlink message inside the sender's send(), so its answers are waiting
 * when send() returns and are read without blocking. Whatever it refuses (a full set, a set that
 * is gone, an address these bytes cannot carry) makes the call return false, having changed
 * nothing: the backend then runs the same change through libnftables, whose messages name the
 * element and the reason. Only plain hash sets of addresses are written here; interval sets
 * (networks, prefix bans) take start and end elements, and stay with libnftables.
 */
import { libc } from "../libc";
import { writeAddressBytes } from "../ip";
import type { SetElement } from "./types";

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_NETFILTER = 12;
const SOL_SOCKET = 1;
const SO_SNDBUFFORCE = 32;
const SOL_NETLINK = 270;
/** errors come back without a copy of the message they answer (a restore's messages are 60 KiB each) */
const NETLINK_CAP_ACK = 10;
const MSG_DONTWAIT = 0x40;

const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_CREATE = 0x400;
const NLMSG_ERROR = 2;
const NLA_F_NESTED = 0x8000;

const NFNL_MSG_BATCH_BEGIN = 16;
const NFNL_MSG_BATCH_END = 17;
const NFNL_SUBSYS_NFTABLES = 10;
const NFT_MSG_NEWSETELEM = 12;
const NFT_MSG_DELSETELEM = 14;
const NFPROTO_INET = 1;

const NFTA_SET_ELEM_LIST_TABLE = 1;
const NFTA_SET_ELEM_LIST_SET = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS = 3;
const NFTA_LIST_ELEM = 1;
const NFTA_SET_ELEM_KEY = 1;
const NFTA_SET_ELEM_TIMEOUT = 4;
const NFTA_DATA_VALUE = 1;

/** An attribute's length is 16 bits: a message's element list stays under this, and the rest goes into the next message. */
const ELEMENTS_PER_MESSAGE_BYTES = 60_000;
/** the socket's send buffer as the kernel gives it (net.core.wmem_default); a larger batch asks for more */
const DEFAULT_SNDBUF = 212_992;

/** One change to one kernel set of the table: empty it, or add or delete elements (`timeouts`: with each element's timeout). */
export type SetChange =
  | { readonly kind: "flush"; readonly set: string }
  | { readonly kind: "add"; readonly set: string; readonly elements: readonly SetElement[]; readonly timeouts: boolean }
  | { readonly kind: "delete"; readonly set: string; readonly elements: readonly SetElement[] };

/** A batch under construction: netlink messages (header, nfgenmsg, attributes) in one growing buffer. */
class BatchWriter {
  buf: Uint8Array;
  view: DataView;
  off = 0;
  private readonly encoder = new TextEncoder();

  constructor(size: number) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
  }

  private room(n: number): void {
    if (this.off + n <= this.buf.length) return;
    const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.off + n));
    bigger.set(this.buf.subarray(0, this.off));
    this.buf = bigger;
    this.view = new DataView(bigger.buffer);
  }

  /** Start a message; its length is written by end(). */
  begin(type: number, flags: number, seq: number, family: number, resId: number): number {
    this.room(20);
    const start = this.off;
    this.view.setUint16(start + 4, type, true);
    this.view.setUint16(start + 6, flags, true);
    this.view.setUint32(start + 8, seq, true);
    this.view.setUint32(start + 12, 0, true);
    this.buf[start + 16] = family;
    this.buf[start + 17] = 0; /* NFNETLINK_V0 */
    this.view.setUint16(start + 18, resId, false);
    this.off = start + 20;
    return start;
  }

  end(start: number): void {
    this.view.setUint32(start, this.off - start, true);
  }

  /** Start an attribute; its length is written by close(). */
  open(type: number): number {
    this.room(4);
    const start = this.off;
    this.view.setUint16(start + 2, type, true);
    this.off += 4;
    return start;
  }

  close(start: number): void {
    this.view.setUint16(start, this.off - start, true);
    const padded = (this.off + 3) & ~3;
    this.room(padded - this.off);
    this.buf.fill(0, this.off, padded);
    this.off = padded;
  }

  string(type: number, text: string): void {
    const a = this.open(type);
    this.room(text.length + 1);
    this.off += this.encoder.encodeInto(text, this.buf.subarray(this.off)).written;
    this.buf[this.off++] = 0;
    this.close(a);
  }

  /** An address's bytes; false when the text is not an address. */
  address(type: number, text: string): boolean {
    const a = this.open(type);
    this.room(16);
    const n = writeAddressBytes(text, this.buf, this.off);
    this.off += n;
    this.close(a);
    return n > 0;
  }

  /** A big-endian u64 (milliseconds), written as two halves: no BigInt on the hot path. */
  u64(type: number, value: number): void {
    const a = this.open(type);
    this.room(8);
    this.view.setUint32(this.off, Math.floor(value / 2 ** 32), false);
    this.view.setUint32(this.off + 4, value >>> 0, false);
    this.off += 8;
    this.close(a);
  }
}

export class NftNetlink {
  private seq = 1;
  private sndbuf = DEFAULT_SNDBUF;
  private readonly answers = new Uint8Array(64 * 1024);
  private readonly answerView = new DataView(this.answers.buffer);
  private readonly int = new Int32Array(1);

  private constructor(private readonly fd: number) {}

  /** A netfilter netlink socket in this process's network namespace; null when none can be had (then libnftables does everything). */
  static open(): NftNetlink | null {
    let fd: number;
    try {
      fd = libc().socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    } catch {
      return null;
    }
    if (fd < 0) return null;
    const link = new NftNetlink(fd);
    link.int[0] = 1;
    libc().setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, link.int, 4);
    return link;
  }

  /**
   * Apply `changes` to kernel sets of table `inet <table>` in one transaction. True when the
   * kernel took all of it; false when it took none of it (refused, or an address without bytes).
   */
  transaction(table: string, changes: readonly SetChange[]): boolean {
    const count = changes.reduce((n, c) => n + (c.kind === "flush" ? 0 : c.elements.length), 0);
    const w = new BatchWriter(256 + changes.length * 128 + count * 48);
    if (this.seq > 0x70000000) this.seq = 1; /* sequence numbers stay increasing within a batch */
    const first = this.seq;
    w.end(w.begin(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, this.seq++, 0, NFNL_SUBSYS_NFTABLES));
    const messages: number[] = [];
    for (const c of changes) {
      if (c.kind === "flush") {
        /* a DELSETELEM without elements empties the set */
        messages.push(this.setMessage(w, NFT_MSG_DELSETELEM, 0, table, c.set));
        w.end(messages.at(-1)!);
        continue;
      }
      const type = c.kind === "add" ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM;
      const flags = c.kind === "add" ? NLM_F_CREATE : 0;
      const timeouts = c.kind === "add" && c.timeouts;
      let i = 0;
      while (i < c.elements.length) {
        const message = this.setMessage(w, type, flags, table, c.set);
        messages.push(message);
        const list = w.open(NFTA_SET_ELEM_LIST_ELEMENTS | NLA_F_NESTED);
        for (; i < c.elements.length && w.off - list < ELEMENTS_PER_MESSAGE_BYTES; i++) {
          const e = c.elements[i]!;
          const elem = w.open(NFTA_LIST_ELEM | NLA_F_NESTED);
          const k = w.open(NFTA_SET_ELEM_KEY | NLA_F_NESTED);
          if (!w.address(NFTA_DATA_VALUE, e.address)) return false;
          w.close(k);
          if (timeouts && e.timeout > 0) w.u64(NFTA_SET_ELEM_TIMEOUT, e.timeout * 1000);
          w.close(elem);
        }
        w.close(list);
        w.end(message);
      }
    }
    if (messages.length === 0) return true;
    /* only the last message asks for an answer; a refused one answers anyway, and the batch is dropped */
    const lastMessage = messages.at(-1)!;
    w.view.setUint16(lastMessage + 6, w.view.getUint16(lastMessage + 6, true) | NLM_F_ACK, true);
    const last = w.view.getUint32(lastMessage + 8, true);
    w.end(w.begin(NFNL_MSG_BATCH_END, NLM_F_REQUEST, this.seq++, 0, NFNL_SUBSYS_NFTABLES));
    if (w.off + 32 > this.sndbuf) {
      this.int[0] = w.off + 4096;
      if (libc().setsockopt(this.fd, SOL_SOCKET, SO_SNDBUFFORCE, this.int, 4) !== 0) return false;
      this.sndbuf = 2 * (w.off + 4096); /* the kernel doubles what it is asked for */
    }
    if (libc().send(this.fd, w.buf, w.off, 0) !== w.off) return false;
    return this.answered(first, last);
  }

  private setMessage(w: BatchWriter, type: number, flags: number, table: string, set: string): number {
    const message = w.begin((NFNL_SUBSYS_NFTABLES << 8) | type, NLM_F_REQUEST | flags, this.seq++, NFPROTO_INET, 0);
    w.string(NFTA_SET_ELEM_LIST_TABLE, table);
    w.string(NFTA_SET_ELEM_LIST_SET, set);
    return message;
  }

  /**
   * Read the kernel's answers to the batch of sequence numbers first..last: true when the last
   * message was acknowledged and nothing was refused. Answers to earlier batches are skipped.
   */
  private answered(first: number, last: number): boolean {
    let ok = true;
    for (;;) {
      const n = libc().recv(this.fd, this.answers, this.answers.length, MSG_DONTWAIT);
      if (n <= 0) return false; /* nothing more waits: the answer we need never came */
      for (let p = 0; p + 16 <= n; ) {
        const length = this.answerView.getUint32(p, true);
        const type = this.answerView.getUint16(p + 4, true);
        const seq = this.answerView.getUint32(p + 8, true);
        if (type === NLMSG_ERROR && seq >= first && seq <= last) {
          if (this.answerView.getInt32(p + 16, true) !== 0) ok = false;
          /* the batch header refused (out of memory): the kernel stopped there */
          if (seq === last || seq === first) return ok && seq === last;
        }
        if (length < 16) break;
        p += (length + 3) & ~3;
      }
    }
  }

  close(): void {
    libc().close(this.fd);
  }
}
