/**
 * The kernel's netfilter over a netlink socket of our own, for the calls where the tools cost
 * more than the kernel's work: a chunk's bans into nf_tables, and the bulk load of a restore
 * (nf_tables and ipset). libnftables parses text with its grammar and reads the table's sets
 * from the kernel before each command (its cache): 150–300 µs for one ban on this machine,
 * against about 30 µs for the same transaction sent here; for a restore of 100,000 bans the
 * tools' parsers (nft, `ipset restore`) were half the time, and building their text the rest
 * of ours.
 *
 * The kernel handles a netlink message inside the sender's send(), so its answers are waiting
 * when send() returns and are read without blocking. Whatever it refuses (a full set, a set
 * that is gone, an address these bytes cannot carry) makes a call return false: the backend
 * then runs the same change through its tool, whose messages name the element and the reason.
 * An nf_tables batch is one transaction (all or nothing); ipset has none, so what a false
 * leaves half-done is a temporary set the tool's path empties first.
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
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
const NLMSG_ERROR = 2;
const NLA_F_NESTED = 0x8000;
const NLA_F_NET_BYTEORDER = 0x4000;

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

const NFNL_SUBSYS_IPSET = 6;
const IPSET_PROTOCOL = 7;
const IPSET_CMD_DESTROY = 3;
const IPSET_CMD_SWAP = 6;
const IPSET_CMD_ADD = 9;
const IPSET_ATTR_PROTOCOL = 1;
const IPSET_ATTR_SETNAME = 2;
const IPSET_ATTR_SETNAME2 = 3;
const IPSET_ATTR_DATA = 7;
const IPSET_ATTR_ADT = 8;
const IPSET_ATTR_LINENO = 9;
const IPSET_ATTR_IP = 1;
const IPSET_ATTR_CIDR = 3;
const IPSET_ATTR_TIMEOUT = 6;
const AF_INET = 2;

/** An attribute's length is 16 bits: a message's element list stays under this, and the rest goes into the next message. */
const ELEMENTS_PER_MESSAGE_BYTES = 60_000;
/** the socket's send buffer as the kernel gives it (net.core.wmem_default); a larger batch asks for more */
const DEFAULT_SNDBUF = 212_992;

/** One change to one kernel set of the table: empty it, or add or delete elements (`timeouts`: with each element's timeout). */
export type SetChange =
  | { readonly kind: "flush"; readonly set: string }
  /* exclusive: an element already in the set makes the kernel refuse the whole transaction (EEXIST) instead of keeping the old one silently */
  | { readonly kind: "add"; readonly set: string; readonly elements: readonly SetElement[]; readonly timeouts: boolean; readonly exclusive?: boolean }
  | { readonly kind: "delete"; readonly set: string; readonly elements: readonly SetElement[] };

/** Messages under construction (header, nfgenmsg, attributes) in one growing buffer. */
class MessageWriter {
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

  /** An address's bytes (`text` may carry a /prefix: cut off); false when it is not an address. */
  address(type: number, text: string): boolean {
    const slash = text.indexOf("/");
    const a = this.open(type);
    this.room(16);
    const n = writeAddressBytes(slash < 0 ? text : text.slice(0, slash), this.buf, this.off);
    this.off += n;
    this.close(a);
    return n > 0;
  }

  u8(type: number, value: number): void {
    const a = this.open(type);
    this.room(1);
    this.buf[this.off++] = value;
    this.close(a);
  }

  u32be(type: number, value: number): void {
    const a = this.open(type);
    this.room(4);
    this.view.setUint32(this.off, value, false);
    this.off += 4;
    this.close(a);
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

/** One netfilter netlink socket: sequence numbers, a send, and the kernel's answers. */
class NetfilterSocket {
  private seq = 1;
  private sndbuf = DEFAULT_SNDBUF;
  private readonly answers = new Uint8Array(64 * 1024);
  private readonly answerView = new DataView(this.answers.buffer);
  private readonly int = new Int32Array(1);

  private constructor(private readonly fd: number) {}

  /** A socket in this process's network namespace; null when none can be had (then the tools do everything). */
  static open(): NetfilterSocket | null {
    let fd: number;
    try {
      fd = libc().socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    } catch {
      return null;
    }
    if (fd < 0) return null;
    const socket = new NetfilterSocket(fd);
    socket.int[0] = 1;
    libc().setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, socket.int, 4);
    return socket;
  }

  /** The next message's sequence number. */
  next(): number {
    return this.seq++;
  }

  /** A call is about to take up to `reserve` numbers: they must stay increasing within it, so wrap before, never inside. */
  start(reserve: number): void {
    if (this.seq + reserve > 0x7fffffff) this.seq = 1;
  }

  /**
   * Send what `w` holds, whose messages first..last ask for an answer at least on `last`; true
   * when the kernel answered `last` and refused nothing. Answers to earlier calls are skipped.
   */
  exchange(w: MessageWriter, first: number, last: number): boolean {
    if (w.off + 32 > this.sndbuf) {
      this.int[0] = w.off + 4096;
      if (libc().setsockopt(this.fd, SOL_SOCKET, SO_SNDBUFFORCE, this.int, 4) !== 0) return false;
      this.sndbuf = 2 * (w.off + 4096); /* the kernel doubles what it is asked for */
    }
    if (libc().send(this.fd, w.buf, w.off, 0) !== w.off) return false;
    let ok = true;
    for (;;) {
      const n = libc().recv(this.fd, this.answers, this.answers.length, MSG_DONTWAIT);
      if (n <= 0) return false; /* nothing more waits: the answer we need never came */
      for (let p = 0; p + 16 <= n; ) {
        const length = this.answerView.getUint32(p, true);
        const seq = this.answerView.getUint32(p + 8, true);
        if (this.answerView.getUint16(p + 4, true) === NLMSG_ERROR && seq >= first && seq <= last) {
          if (this.answerView.getInt32(p + 16, true) !== 0) ok = false;
          if (seq === last) return ok;
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

/** Writes of elements into nf_tables sets (plain hash sets of addresses: interval sets take start and end elements, and stay with libnftables). */
export class NftNetlink {
  private constructor(private readonly socket: NetfilterSocket) {}

  static open(): NftNetlink | null {
    const socket = NetfilterSocket.open();
    return socket ? new NftNetlink(socket) : null;
  }

  /**
   * Apply `changes` to kernel sets of table `inet <table>` in one transaction. True when the
   * kernel took all of it; false when it took none of it (refused, or an address without bytes).
   */
  transaction(table: string, changes: readonly SetChange[]): boolean {
    const count = changes.reduce((n, c) => n + (c.kind === "flush" ? 0 : c.elements.length), 0);
    const w = new MessageWriter(256 + changes.length * 128 + count * 48);
    this.socket.start(changes.length + 2 + Math.ceil((count * 48) / ELEMENTS_PER_MESSAGE_BYTES));
    const first = this.socket.next();
    w.end(w.begin(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, first, 0, NFNL_SUBSYS_NFTABLES));
    let last = -1;
    for (const c of changes) {
      if (c.kind === "flush") {
        /* a DELSETELEM without elements empties the set */
        last = this.setMessage(w, NFT_MSG_DELSETELEM, 0, table, c.set);
        w.end(last);
        continue;
      }
      const type = c.kind === "add" ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM;
      const flags = c.kind === "add" ? NLM_F_CREATE | (c.exclusive ? NLM_F_EXCL : 0) : 0;
      const timeouts = c.kind === "add" && c.timeouts;
      let i = 0;
      while (i < c.elements.length) {
        last = this.setMessage(w, type, flags, table, c.set);
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
        w.end(last);
      }
    }
    if (last < 0) return true;
    /* only the last message asks for an answer; a refused one answers anyway, and the batch is dropped */
    w.view.setUint16(last + 6, w.view.getUint16(last + 6, true) | NLM_F_ACK, true);
    const lastSeq = w.view.getUint32(last + 8, true);
    w.end(w.begin(NFNL_MSG_BATCH_END, NLM_F_REQUEST, this.socket.next(), 0, NFNL_SUBSYS_NFTABLES));
    return this.socket.exchange(w, first, lastSeq);
  }

  /** A set-element message's start (its offset in `w`), table and set written. */
  private setMessage(w: MessageWriter, type: number, flags: number, table: string, set: string): number {
    const message = w.begin((NFNL_SUBSYS_NFTABLES << 8) | type, NLM_F_REQUEST | flags, this.socket.next(), NFPROTO_INET, 0);
    w.string(NFTA_SET_ELEM_LIST_TABLE, table);
    w.string(NFTA_SET_ELEM_LIST_SET, set);
    return message;
  }

  close(): void {
    this.socket.close();
  }
}

/** The ipset commands of a restore: adds into the temporary sets, then swap and destroy. No transaction: each message stands alone. */
export class IpsetNetlink {
  private constructor(private readonly socket: NetfilterSocket) {}

  static open(): IpsetNetlink | null {
    const socket = NetfilterSocket.open();
    return socket ? new IpsetNetlink(socket) : null;
  }

  /**
   * Add `elements` to ipset `set` (hash:ip, or hash:net with `networks`: the prefix length
   * sent as well), timeouts as given, an element already there refreshed (like -exist). True
   * when every one went in; false when something was refused, and then some may be in.
   */
  add(set: string, elements: readonly SetElement[], networks: boolean): boolean {
    if (elements.length === 0) return true;
    const w = new MessageWriter(256 + elements.length * 40);
    this.socket.start(2 + Math.ceil((elements.length * 40) / ELEMENTS_PER_MESSAGE_BYTES));
    const first = this.socket.next();
    let seq = first;
    for (let i = 0; i < elements.length; ) {
      if (i > 0) seq = this.socket.next();
      const message = this.command(w, IPSET_CMD_ADD, seq, set);
      w.u32be(IPSET_ATTR_LINENO | NLA_F_NET_BYTEORDER, 0);
      const adt = w.open(IPSET_ATTR_ADT | NLA_F_NESTED);
      for (; i < elements.length && w.off - adt < ELEMENTS_PER_MESSAGE_BYTES; i++) {
        const e = elements[i]!;
        const data = w.open(IPSET_ATTR_DATA | NLA_F_NESTED);
        const ip = w.open(IPSET_ATTR_IP | NLA_F_NESTED);
        const v6 = e.address.includes(":");
        if (!w.address((v6 ? 2 : 1) | NLA_F_NET_BYTEORDER, e.address)) return false;
        w.close(ip);
        if (networks) w.u8(IPSET_ATTR_CIDR, e.address.includes("/") ? Number(e.address.slice(e.address.indexOf("/") + 1)) : v6 ? 128 : 32);
        if (e.timeout > 0) w.u32be(IPSET_ATTR_TIMEOUT | NLA_F_NET_BYTEORDER, e.timeout);
        w.close(data);
      }
      w.close(adt);
      w.end(message);
    }
    return this.socket.exchange(w, first, seq);
  }

  /** Swap each temporary set with its live one, then destroy the temporary (holding the old content). */
  swapAndDestroy(pairs: readonly (readonly [temporary: string, live: string])[]): boolean {
    const w = new MessageWriter(256 + pairs.length * 128);
    this.socket.start(2 * pairs.length);
    let first = -1;
    let seq = -1;
    for (const [temporary, live] of pairs) {
      seq = this.socket.next();
      if (first < 0) first = seq;
      const swap = this.command(w, IPSET_CMD_SWAP, seq, temporary);
      w.string(IPSET_ATTR_SETNAME2, live);
      w.end(swap);
      seq = this.socket.next();
      w.end(this.command(w, IPSET_CMD_DESTROY, seq, temporary));
    }
    return first < 0 || this.socket.exchange(w, first, seq);
  }

  /** An ipset command's start, every message answered (the protocol version and the set written). */
  private command(w: MessageWriter, cmd: number, seq: number, set: string): number {
    const message = w.begin((NFNL_SUBSYS_IPSET << 8) | cmd, NLM_F_REQUEST | NLM_F_ACK, seq, AF_INET, 0);
    w.u8(IPSET_ATTR_PROTOCOL, IPSET_PROTOCOL);
    w.string(IPSET_ATTR_SETNAME, set);
    return message;
  }

  close(): void {
    this.socket.close();
  }
}
