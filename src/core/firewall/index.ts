/** Firewall backends by name; the config's `firewall` key picks one. */
import { join } from "node:path";
import type { Config, Paths } from "../config";
import { DryRunFirewall } from "./dryrun";
import type { Firewall } from "./types";

export function createFirewall(kind: Config["firewall"], paths: Paths): Firewall {
  switch (kind) {
    case "dryrun":
      return new DryRunFirewall(join(paths.dbDir, "firewall-dryrun.db"), join(paths.logDir, "firewall-dryrun.log"));
  }
}
