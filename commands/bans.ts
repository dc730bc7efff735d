import type { CommandModule } from "yargs";
import { type ModuleName } from "../src/core/config";
import { nowSeconds, parseDuration } from "../src/core/duration";
import { ConfigError } from "../src/core/errors";
import { type BanInForce, type BanOrder, bansInForce } from "../src/ops/bans";
import { parseOperatorTarget } from "../src/ops/ban";
import { type GlobalArgs, isoTime, moduleOption, printJson, table, outputWidth } from "./common";
import { controlConfig } from "../src/modules/context";

interface Args extends GlobalArgs {
  address?: string;
  module?: ModuleName;
  since?: string;
  sort: BanOrder;
  limit?: number;
  blocklists?: boolean;
  json?: boolean;
}

/** rows a terminal shows unless --limit says otherwise; a pipe gets them all */
const TERMINAL_ROWS = 50;

/** "2h" (that long ago) or an ISO 8601 time, as epoch seconds. */
function parseSince(text: string, now: number): number {
  const ago = parseDuration(text);
  if (ago !== null) return now - ago;
  const time = Date.parse(text);
  if (/^\d{4}-\d{2}-\d{2}/.test(text) && !Number.isNaN(time)) return Math.floor(time / 1000);
  throw new ConfigError(`--since: expected a duration such as "2h" or "7d", or an ISO 8601 time such as 2026-12-06T08:00:00Z, got ${JSON.stringify(text)}`);
}

function jsonOf(b: BanInForce) {
  return {
    ...b,
    since: b.since === null ? null : isoTime(b.since),
    until: b.until === null ? null : isoTime(b.until),
    permanent: b.until === null,
  };
}

export const bansCommand: CommandModule<GlobalArgs, Args> = {
  command: "bans [address]",
  describe: "every ban in force: modules, fleet, blacklist (and blocklists), newest first",
  builder: (y) =>
    y
      .positional("address", { type: "string", describe: "only bans of this address or network (CIDR), of networks that hold it, or of addresses it holds; blocklists included" })
      .option("module", moduleOption("only this module's bans (and the fleet's bans decided by it)"))
      .option("since", { type: "string", describe: 'only bans decided since: a duration ("2h": in the last two hours) or an ISO 8601 time' })
      .option("sort", { choices: ["newest", "until"] as const, default: "newest" as const, describe: "newest: latest decided first; until: soonest to end first (permanent ones last)" })
      .option("limit", { type: "number", describe: `at most this many rows (default: ${TERMINAL_ROWS} on a terminal, with a line saying how many more; all on a pipe and in JSON; 0: all)` })
      .option("blocklists", { type: "boolean", describe: "list every blocklist network too (by default they are counted, and listed only for an address)" })
      .option("json", { type: "boolean", describe: "a JSON array; times in ISO 8601 (UTC), null until lifted" }),
  handler: (argv) => {
    const now = nowSeconds();
    if (argv.limit !== undefined && !(Number.isInteger(argv.limit) && argv.limit >= 0)) throw new ConfigError(`--limit: expected a whole number, 0 for all, got ${argv.limit}`);
    const match = argv.address === undefined ? undefined : parseOperatorTarget(argv.address);
    const since = argv.since === undefined ? undefined : parseSince(argv.since, now);
    const { loaded, files } = controlConfig(argv.root);
    const view = bansInForce(loaded, { now, module: argv.module, since, match, blocklists: argv.blocklists, order: argv.sort }, files);
    const limit = argv.limit ?? (process.stdout.isTTY && !argv.json ? TERMINAL_ROWS : 0);
    const shown = limit > 0 ? view.bans.slice(0, limit) : view.bans;
    if (argv.json) {
      printJson(shown.map(jsonOf));
      return;
    }
    if (view.bans.length === 0) console.log(match ? `no ban in force holds ${match.text}` : "no ban in force");
    else {
      const t = table(["address", "where", "since", "until", "rule", "class", "origin", "reason"], outputWidth(argv));
      for (const b of shown) {
        t.push([b.address, b.where, b.since === null ? "" : isoTime(b.since), b.until === null ? "until lifted" : isoTime(b.until), b.rule ?? "", b.class ?? "", b.origin ?? "", b.reason ?? ""]);
      }
      console.log(t.toString());
      const more = view.bans.length - shown.length;
      if (more > 0) console.log(`${more} more (--limit 0 shows all, --json gives every field)`);
    }
    if (view.blocklistEntries > 0) console.log(`and ${view.blocklistEntries} networks from blocklists (--blocklists lists them)`);
  },
};
