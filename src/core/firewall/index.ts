/** Firewall backends by name; the config's `firewall` key picks one. */
import { dryRunFiles } from "../layout";
import type { Config, Paths } from "../config";
import { DryRunFirewall } from "./dryrun";
import { IpsetFirewall, ipsetAvailable } from "./ipset";
import { NftablesFirewall, nftablesAvailable } from "./nftables";
import type { Firewall } from "./types";

export type Backend = Exclude<Config["firewall"], "auto">;

/** What `auto` means on this machine: a kernel backend as root where one is installed. */
export function resolveBackend(kind: Config["firewall"]): Backend {
  if (kind !== "auto") return kind;
  if (process.getuid?.() !== 0) return "dryrun";
  if (nftablesAvailable()) return "nftables";
  if (ipsetAvailable()) return "ipset";
  return "dryrun";
}

export function createFirewall(config: Config, paths: Paths): Firewall {
  const backend = resolveBackend(config.firewall);
  switch (backend) {
    case "nftables":
      return new NftablesFirewall(config.firewallForward);
    case "ipset":
      return new IpsetFirewall(config.firewallForward);
    case "dryrun":
      const files = dryRunFiles(paths);
      return new DryRunFirewall(files.db, files.log);
  }
}
