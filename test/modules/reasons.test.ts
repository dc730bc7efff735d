/**
 * A ban's reason says what happened (issue 16, item 5): a host whose DNS class preset its
 * counter is banned with its logged affairs and the preset, not as if the logs held them all.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DryRunFirewall } from "../../src/core/firewall/dryrun";
import { CidrSet, type Ip } from "../../src/core/ip";
import { Lists } from "../../src/core/lists";
import { ModuleStore } from "../../src/store/module-db";
import { loadRules } from "../../src/modules/registry";
import { type BanReport, ModuleRuntime } from "../../src/pipeline/run";
import { waitFor } from "../helpers/wait";

const line = (pid: number) => `Dec  6 10:00:00 host sshd[${pid}]: Invalid user a${pid} from 203.0.113.70 port 4000\n`;

describe("ban reasons", () => {
  test("an NXDOMAIN host banned on its second affair: 2 affairs (NXDOMAIN: counter preset to 4)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "watcher-reasons-"));
    const bans: BanReport[] = [];
    const runtime = new ModuleRuntime({
      module: "LG",
      config: { maxAffairs: 5, findTime: 3600, banTime: 3600, banTimeFactor: 2, maxBanTime: 7 * 86400, forgiveOnSuccess: false, dns: true } as never,
      rules: loadRules("LG", join(dir, "rules"), "normal"),
      store: new ModuleStore(join(dir, "LG.db")),
      firewall: new DryRunFirewall(join(dir, "fw.db"), join(dir, "fw.log")),
      lists: new Lists(new CidrSet(), new CidrSet(), new CidrSet()),
      clock: () => Math.floor(Date.now() / 1000),
      useLineTime: false,
      onBan: (b) => bans.push(b),
      dns: { client: { classify: async (_ip: Ip) => "NXDOMAIN" as const }, options: { concurrency: 4, queueSize: 100, cacheSize: 100, positiveTtl: 86400, negativeTtl: 3600 } as never },
    });
    await runtime.processBlock(line(1));
    await waitFor("the class", () => runtime.dns!.cached("203.0.113.70") === "NXDOMAIN");
    await runtime.processBlock(line(2));
    expect(bans.map((b) => b.reason)).toEqual(["2 affairs (NXDOMAIN: counter preset to 4), last by rule invalid-user"]);
  });
});
