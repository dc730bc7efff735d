/**
 * Firewall calls inside a network namespace, for the kernel tests:
 * `ip netns exec NS bun driver.ts BACKEND [MAX_ELEMENTS]` reads a JSON list of operations on
 * stdin, runs them in order on one backend object (one ipset session, one nft context), and
 * prints a JSON list of their results; an operation that throws gives `{ error: message }`.
 * `kill-ipset-session` reaches into the backend's private session: a test of its restart.
 * `netlink` writes elements into one kernel set through firewall/netlink.ts alone (no fallback
 * to the tools): its answer, true or false.
 */
import { IpsetFirewall } from "../../src/core/firewall/ipset";
import { NftablesFirewall } from "../../src/core/firewall/nftables";
import type { Firewall, SetElement, SetSpec } from "../../src/core/firewall/types";
import { IpsetNetlink, NftNetlink } from "../../src/core/firewall/netlink";

export type Operation =
  | { op: "limits" }
  | { op: "ensure"; sets: SetSpec[] }
  | { op: "ban" | "restore"; set: string; elements: SetElement[] }
  | { op: "unban"; set: string; addresses: string[] }
  | { op: "list"; set: string }
  | { op: "intact" }
  /** the ipset backend's session process dies (SIGKILL), as if the OOM killer took it */
  | { op: "kill-ipset-session" }
  /** elements straight into kernel set `kernelSet` (`watcher_LG_v4`) over netlink */
  | { op: "netlink"; kernelSet: string; elements: SetElement[] };

const [backend, max] = process.argv.slice(2);
const options = max ? { maxElements: Number(max) } : {};
const fw: Firewall = backend === "nftables" ? new NftablesFirewall(false, options) : new IpsetFirewall(false, options);
const ops = JSON.parse(await Bun.stdin.text()) as Operation[];
const results: unknown[] = [];
for (const o of ops) {
  try {
    if (o.op === "limits") results.push({ maxTimeout: fw.maxTimeout ?? null, maxElements: fw.maxElements ?? null });
    else if (o.op === "intact") results.push(await fw.intact());
    else if (o.op === "ensure") results.push((await fw.ensure(o.sets)) ?? null);
    else if (o.op === "ban") results.push((await fw.ban(o.set, o.elements)) ?? null);
    else if (o.op === "restore") results.push((await fw.restore(o.set, o.elements)) ?? null);
    else if (o.op === "unban") results.push((await fw.unban(o.set, o.addresses)) ?? null);
    else if (o.op === "kill-ipset-session") {
      const session = (fw as unknown as { session: { proc: Bun.Subprocess } | null }).session;
      session?.proc.kill("SIGKILL");
      results.push(session ? await session.proc.exited : null);
    } else if (o.op === "netlink") {
      if (backend === "nftables") {
        const link = NftNetlink.open()!;
        results.push(link.transaction("watcher", [{ kind: "add", set: o.kernelSet, elements: o.elements, timeouts: true }]));
        link.close();
      } else {
        const link = IpsetNetlink.open()!;
        results.push(link.add(o.kernelSet, o.elements, false));
        link.close();
      }
    } else results.push(await fw.list(o.set));
  } catch (e) {
    results.push({ error: (e as Error).message });
  }
}
await fw.close();
console.log(JSON.stringify(results));
