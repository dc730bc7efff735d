import type { CommandModule } from "yargs";
import { type ModuleName } from "../src/core/config";
import { formatDuration, parseDuration } from "../src/core/duration";
import { ConfigError } from "../src/core/errors";
import { createFirewall } from "../src/core/firewall";
import { Lists } from "../src/core/lists";
import { controlConfig, openModule } from "../src/modules/context";
import { type BanLength, FOREVER, type Lifted, manualBan, manualUnban, parseOperatorTarget, refuseProtected, unbanEverywhere } from "../src/ops/ban";
import { logManualDecision } from "../src/ops/manual-log";
import { publishNow } from "../src/fleet/publisher";
import { type GlobalArgs, isoTime, moduleArg, printJson, MODULES_HELP } from "./common";
import { checkFirewallFree } from "../src/master/claim";
import { listedDrops, listsStory } from "../src/ops/why";
import { parseIp } from "../src/core/ip";

interface BanArgs extends GlobalArgs {
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

function banLength(time: string | undefined): BanLength {
  if (time === undefined) return undefined;
  if (time === FOREVER) return FOREVER;
  const seconds = parseDuration(time);
  if (!seconds) throw new ConfigError(`--time: expected a duration such as "90s", "10m", "1h", "7d", or "forever", got ${JSON.stringify(time)}`);
  return seconds;
}

export const banCommand: CommandModule<GlobalArgs, BanArgs> = {
  command: "ban <module> <address>",
  describe: "ban an address or network now, recorded in the module's database like any other ban",
  builder: (y) =>
    moduleArg(y)
      .positional("address", { type: "string", demandOption: true, describe: "IPv4 or IPv6 address, or a network (CIDR)" })
      /* nargs: the word after --time is its value even when it starts with a dash: "-1h" is refused as a duration, not read as -1 -h (help, exit 0, no ban) */
      .option("time", { type: "string", nargs: 1, describe: 'ban time, e.g. "1h", "7d", or "forever" (until unbanned) (default: the module\'s ban time, grown for repeat offenders)' })
      .option("json", { type: "boolean" }),
  handler: async (argv) => {
    const target = parseOperatorTarget(argv.address);
    const length = banLength(argv.time);
    /* before the module is opened, so a refused ban leaves no database or firewall set behind */
    const { loaded, files } = controlConfig(argv.root);
    refuseProtected(Lists.of(loaded.paths, files), target);
    const ctx = openModule(argv.root, argv.module, undefined, files);
    try {
      checkFirewallFree(ctx.firewall.backend, ctx.paths.root, `ban ${target.text}`);
      const ban = await manualBan(ctx, target, length);
      const until = ban.permanent ? "until unbanned" : `for ${formatDuration(ban.seconds)} (until ${isoTime(ban.until)})`;
      logManualDecision(ctx.paths, `ban ${ban.address} in ${ctx.module} ${until}`);
      const fleet = await publishNow(ctx);
      if (argv.json) printJson({ address: ban.address, module: ctx.module, seconds: ban.seconds, until: isoTime(ban.until), permanent: ban.permanent, reason: ban.reason, fleet });
      else console.log(`banned ${ban.address} in ${ctx.module} ${until}${fleetNote(fleet)}`);
    } finally {
      await ctx.close();
    }
  },
};

interface UnbanArgs extends GlobalArgs {
  "address-or-module": string;
  address?: string;
  json?: boolean;
}

/** `203.0.113.9 in LG, MB; and the network ban that held it: 203.0.113.0/24 in LG` */
function liftedText(target: string, lifted: readonly Lifted[]): string {
  const own = lifted.filter((l) => l.address === target).map((l) => l.where);
  const networks = lifted.filter((l) => l.address !== target).map((l) => `${l.address} in ${l.where}`);
  const held = networks.length ? `the network ban${networks.length > 1 ? "s" : ""} that held it: ${networks.join(", ")}` : "";
  return own.length ? `${target} in ${own.join(", ")}${held ? `; and ${held}` : ""}` : `${target}: ${held}`;
}

export const unbanCommand: CommandModule<GlobalArgs, UnbanArgs> = {
  command: "unban <address-or-module> [address]",
  describe: "lift a ban and reset the count: `unban ADDRESS` everywhere (every module and the fleet), `unban MODULE ADDRESS` in one module",
  builder: (y) =>
    y
      .usage("$0 unban [MODULE] <address>")
      .positional("address-or-module", { type: "string", demandOption: true, describe: `a module (${MODULES_HELP}) followed by the address, or the address alone (lifted everywhere)` })
      .positional("address", { type: "string", describe: "IPv4 or IPv6 address, or a network (CIDR)" })
      .option("json", { type: "boolean" }),
  handler: async (argv) => {
    const module = argv.address === undefined ? null : (argv["address-or-module"].toUpperCase() as ModuleName);
    const target = parseOperatorTarget(argv.address ?? argv["address-or-module"]);
    let lifted: Lifted[];
    let where: string;
    let fleet: Awaited<ReturnType<typeof publishNow>> = null;
    const { loaded, files } = controlConfig(argv.root);
    if (module) {
      const ctx = openModule(argv.root, module, undefined, files);
      try {
        checkFirewallFree(ctx.firewall.backend, ctx.paths.root, `unban ${target.text}`);
        lifted = await manualUnban(ctx, target);
        where = module;
        logManualDecision(ctx.paths, `unban ${target.text} in ${module}: ${lifted.length ? `lifted ${liftedText(target.text, lifted)}` : "was not banned"}`);
        fleet = await publishNow(ctx);
      } finally {
        await ctx.close();
      }
    } else {
      const lists = Lists.of(loaded.paths, files);
      const firewall = createFirewall(loaded.config, loaded.paths);
      try {
        checkFirewallFree(firewall.backend, loaded.paths.root, `unban ${target.text}`);
        const r = await unbanEverywhere(loaded, firewall, lists, target);
        lifted = r.lifted;
        where = [...r.modules, ...(loaded.config.fleet ? ["fleet"] : [])].join(", ");
        logManualDecision(loaded.paths, `unban ${target.text} everywhere${where ? ` (${where})` : ""}: ${lifted.length ? `lifted ${liftedText(target.text, lifted)}` : "was not banned"}`);
      } finally {
        await firewall.close();
      }
    }
    /* a list's drop is no ban: unban cannot lift it, and must not seem to */
    const address = parseIp(target.text);
    const stillDroppedBy = address ? listedDrops(listsStory(loaded, address, files)) : [];
    if (argv.json) printJson({ address: target.text, where: module ?? "everywhere", wasBanned: lifted.length > 0, lifted, fleet, stillDroppedBy });
    else {
      if (lifted.length) console.log(`unbanned ${liftedText(target.text, lifted)}${fleetNote(fleet)}`);
      else if (where === "") console.log(`${target.text} was not banned: no module has a database yet`);
      else console.log(`${target.text} was not banned in ${where}; removed from the firewall sets if it was there${fleetNote(fleet)}`);
      if (stillDroppedBy.length) console.log(`note: ${target.text} is still dropped by ${stillDroppedBy.join("; ")}: remove it from that list (and reload) to let it in`);
    }
  },
};
