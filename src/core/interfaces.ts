/**
 * The addresses configured on this machine's interfaces, asked of the kernel (an RTM_GETADDR
 * dump on a NETLINK_ROUTE socket): those of interfaces that are down or have no carrier
 * included. Node's networkInterfaces() leaves those out, and an address whose link comes up
 * later is still this machine's: a blacklist or a ban must never hold it.
 */
import { networkInterfaces } from "node:os";
import { libc } from "./libc";

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0x80000;
const NETLINK_ROUTE = 0;
const RTM_NEWADDR = 20;
const RTM_GETADDR = 22;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLM_F_REQUEST = 0x1;
const NLM_F_DUMP = 0x300;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const NLMSG_HEADER = 16;
const IFADDRMSG = 8;

/** Every address on this machine's interfaces, as text (IPv6 not compressed: parse it for the canonical form). */
export function interfaceAddresses(): string[] {
  return dumpAddresses() ?? Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address));
}

/** The kernel's answer, or null when netlink cannot be used (then Node's view of the interfaces that are up). */
function dumpAddresses(): string[] | null {
  const c = libc();
  const fd = c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return null;
  try {
    /* a dump never waits on anything but the kernel; the timeout only guards against the impossible */
    if (c.setsockopt(fd, 1 /* SOL_SOCKET */, 20 /* SO_RCVTIMEO */, new BigInt64Array([1n, 0n]), 16) !== 0) return null;
    const request = new DataView(new ArrayBuffer(NLMSG_HEADER + IFADDRMSG));
    request.setUint32(0, request.byteLength, true);
    request.setUint16(4, RTM_GETADDR, true);
    request.setUint16(6, NLM_F_REQUEST | NLM_F_DUMP, true);
    request.setUint32(8, 1, true); /* sequence number; the family (AF_UNSPEC: both) and the rest stay 0 */
    if (c.send(fd, new Uint8Array(request.buffer), request.byteLength, 0) !== request.byteLength) return null;
    const buffer = new Uint8Array(1 << 16);
    const view = new DataView(buffer.buffer);
    const addresses: string[] = [];
    for (;;) {
      const n = c.recv(fd, buffer, buffer.length, 0);
      if (n <= 0) return null;
      for (let p = 0; p + NLMSG_HEADER <= n; ) {
        const length = view.getUint32(p, true);
        const type = view.getUint16(p + 4, true);
        if (type === NLMSG_DONE) return addresses;
        if (type === NLMSG_ERROR || length < NLMSG_HEADER) return null;
        if (type === RTM_NEWADDR) {
          const address = addressOf(buffer, view, p + NLMSG_HEADER, p + length);
          if (address) addresses.push(address);
        }
        p += (length + 3) & ~3;
      }
    }
  } finally {
    c.close(fd);
  }
}

/**
 * One RTM_NEWADDR message's address: IFA_LOCAL where present (on a point-to-point link
 * IFA_ADDRESS is the peer's), else IFA_ADDRESS.
 */
function addressOf(buffer: Uint8Array, view: DataView, from: number, to: number): string | null {
  let local: Uint8Array | null = null;
  let address: Uint8Array | null = null;
  for (let p = from + IFADDRMSG; p + 4 <= to; ) {
    const length = view.getUint16(p, true);
    if (length < 4) break;
    const type = view.getUint16(p + 2, true);
    const value = buffer.subarray(p + 4, p + length);
    if (type === IFA_LOCAL) local = value;
    if (type === IFA_ADDRESS) address = value;
    p += (length + 3) & ~3;
  }
  const bytes = local ?? address;
  if (bytes?.length === 4) return bytes.join(".");
  if (bytes?.length === 16) return Array.from({ length: 8 }, (_, i) => ((bytes[2 * i]! << 8) | bytes[2 * i + 1]!).toString(16)).join(":");
  return null;
}
