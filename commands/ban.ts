import type { CommandModule } from "yargs";
import { loadConfig, type ModuleName } from "../src/core/config";
import { formatDuration, parseDuration } from "../src/core/duration";
import { ConfigError } from "../src/core/errors";
import { Lists, parseOperatorAddress } from "../src/core/lists";
import { openModule } from "../src/modules/context";
import { manualBan, manualUnban, refuseProtected } from "../src/ops/ban";
import { publishNow } from "../src/fleet/publisher";
import { type GlobalArgs, isoTime, moduleArg, printJson } from "./common";
import { checkFirewallFree } from "../src/master/claim";

interface Args extends GlobalArgs {
  module: ModuleName;
  address: string;
  time?: string;
  json?: boolean;
}

function fleetNote(fleet: Awaited<ReturnType<typeof publishNow>>): string {
  if (!fleet) return "";
  if (fleet.waiting === 0) return "; published to the fleet";
  return `; ${fleet.waiting} decision(s) wait in the outbox for Redis (${fleet.error ?? "not reachable"})`;
}

export const banCommand: CommandModule<GlobalArgs, Args> = {
  command: "ban <module> <address>",
  describe: "ban an address now, recorded in the module's database like any other ban",
  builder: (y) =>
    moduleArg(y)
      .positional("address", { type: "string", demandOption: true, describe: "IPv4 or IPv6 address" })
      .option("time", { type: "string", describe: 'ban time, e.g. "1h", "7d" (default: the module\'s ban time, grown for repeat offenders)' })
      .option("json", { type: "boolean" }),
  handler: async (argv) => {
    const ip = parseOperatorAddress(argv.address);
    let seconds: number | undefined;
    if (argv.time !== undefined) {
      const parsed = parseDuration(argv.time);
      if (!parsed) throw new ConfigError(`--time: expected a duration such as "90s", "10m", "1h", "7d", got ${JSON.stringify(argv.time)}`);
      seconds = parsed;
    }
    /* before the module is opened, so a refused ban leaves no database or firewall set behind */
    const { paths } = loadConfig(argv.root);
    refuseProtected(Lists.of(paths), ip);
    const ctx = openModule(argv.root, argv.module);
    try {
      checkFirewallFree(ctx.firewall.backend, ctx.paths.root, `ban ${ip.text}`);
      const ban = await manualBan(ctx, ip, seconds);
      const fleet = await publishNow(ctx);
      if (argv.json) printJson({ ...ban, fleet });
      else console.log(`banned ${ban.address} in ${ctx.module} for ${formatDuration(ban.seconds)} (until ${isoTime(ban.until)})${fleetNote(fleet)}`);
    } finally {
      await ctx.close();
    }
  },
};

export const unbanCommand: CommandModule<GlobalArgs, Args> = {
  command: "unban <module> <address>",
  describe: "lift a ban and reset the address's count, in the database and the firewall",
  builder: (y) =>
    moduleArg(y)
      .positional("address", { type: "string", demandOption: true, describe: "IPv4 or IPv6 address" })
      .option("json", { type: "boolean" }),
  handler: async (argv) => {
    const ip = parseOperatorAddress(argv.address);
    const ctx = openModule(argv.root, argv.module);
    try {
      checkFirewallFree(ctx.firewall.backend, ctx.paths.root, `unban ${ip.text}`);
      const wasBanned = await manualUnban(ctx, ip);
      const fleet = await publishNow(ctx);
      if (argv.json) printJson({ address: ip.text, wasBanned, fleet });
      else console.log((wasBanned ? `unbanned ${ip.text} in ${ctx.module}` : `${ip.text} was not banned in ${ctx.module}; removed from the firewall set if it was there`) + fleetNote(fleet));
    } finally {
      await ctx.close();
    }
  },
};
