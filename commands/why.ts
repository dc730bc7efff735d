import type { CommandModule } from "yargs";
import { formatDuration, nowSeconds } from "../src/core/duration";
import { ConfigError } from "../src/core/errors";
import { parseOperatorAddress } from "../src/core/lists";
import { type KernelStory, kernelStory, type ModuleStory, NAMES_NOT_KEPT, type Story, whyStory } from "../src/ops/why";
import { WHITELIST_SET } from "../src/core/firewall/types";
import type { StoredEvent } from "../src/store/ban-queries";
import { PERMANENT_UNTIL } from "../src/store/module-db";
import { type GlobalArgs, isoTime, printJson, table, outputWidth } from "./common";
import { controlConfig } from "../src/modules/context";

interface Args extends GlobalArgs {
  address: string;
  limit: number;
  json?: boolean;
}

const iso = (t: number | null) => (t === null || t >= PERMANENT_UNTIL ? null : isoTime(t));

function eventJson(e: StoredEvent) {
  return { ...e, time: isoTime(e.time) };
}

/** The story with every time in ISO 8601 (UTC); null for "until unbanned". */
function storyJson(s: Story) {
  return {
    address: s.address,
    asOf: isoTime(s.now),
    droppedBy: s.droppedBy,
    lists: s.lists,
    modules: s.modules.map((m) => ({
      module: m.module,
      class: m.class,
      host: m.host && {
        firstSeen: isoTime(m.host.firstSeen),
        lastSeen: isoTime(m.host.lastSeen),
        lastRule: m.host.lastRule,
        banCount: m.host.banCount,
        bannedUntil: m.host.bannedUntil === 0 ? null : iso(m.host.bannedUntil),
        permanent: m.host.bannedUntil >= PERMANENT_UNTIL,
      },
      window: m.window && { ...m.window, oldest: iso(m.window.oldest) },
      inForce: m.inForce,
      bans: m.bans.map((b) => ({ ...b, time: isoTime(b.time), until: iso(b.until) })),
      events: m.events.map(eventJson),
      eventsTotal: m.eventsTotal,
      countedLines: m.lines.map((l) => ({ ...l, time: isoTime(l.time) })),
      networks: m.networks.map((n) => ({ ...n, bannedUntil: n.bannedUntil === 0 ? null : iso(n.bannedUntil), events: n.events.map(eventJson) })),
    })),
    fleet: s.fleet && {
      ban: s.fleet.ban && { ...s.fleet.ban, until: iso(s.fleet.ban.until) },
      decisions: s.fleet.decisions.map((d) => ({ ...d, until: d.action === "unban" ? null : iso(d.until), time: isoTime(d.time), received: isoTime(d.received) })),
    },
  };
}

function listsText(s: Story): string {
  const l = s.lists;
  const parts = [
    l.protection === "whitelist" ? `whitelisted (${l.whitelist}): accepted before any drop, never counted` : l.protection ? `protected (${l.protection === "own" ? "an address of this machine" : "loopback or reserved"}): never counted or banned` : "not whitelisted",
    l.blacklist ? `blacklisted (${l.blacklist})` : "not blacklisted",
    l.blocklists.length ? `in blocklist ${l.blocklists.map((b) => `${b.list} (${b.entry})`).join(", ")}` : "in no blocklist",
  ];
  return parts.join("; ");
}

function eventText(e: StoredEvent): string {
  if (e.kind === "affair") return `affair x${e.value}${e.user ? ` user ${e.user}` : ""}${e.vhost ? ` vhost ${e.vhost}` : ""}`;
  if (e.kind === "ban") return `ban ${e.time + e.value >= PERMANENT_UNTIL ? "until unbanned" : formatDuration(e.value)}${e.reason ? `: ${e.reason}` : ""}`;
  return `unban${e.reason ? `: ${e.reason}` : ""}`;
}

function moduleText(m: ModuleStory, out: string[], width: number): void {
  out.push(`${m.module}:`);
  out.push(`  class: ${m.class.class ?? "none"} — ${m.class.meaning}`);
  if (m.host) {
    out.push(`  seen: ${isoTime(m.host.firstSeen)} to ${isoTime(m.host.lastSeen)}, last rule ${m.host.lastRule}, banned ${m.host.banCount} time${m.host.banCount === 1 ? "" : "s"}`);
    if (m.inForce) out.push(`  banned now ${m.host.bannedUntil >= PERMANENT_UNTIL ? "until unbanned" : `until ${isoTime(m.host.bannedUntil)}`}`);
  }
  if (m.window) {
    const preset = m.window.preset ? ` (${m.window.preset} preset by its DNS class)` : "";
    const oldest = m.window.oldest === null ? "" : `; the oldest leaves the window at ${isoTime(m.window.oldest + m.window.findTime)}`;
    out.push(`  counter: ${m.window.affairs} of ${m.window.maxAffairs} affairs within ${formatDuration(m.window.findTime)}${preset}${oldest}`);
  }
  for (const b of m.bans) {
    out.push(`  ban at ${isoTime(b.time)} ${b.until === null ? "until unbanned" : `until ${isoTime(b.until)}`}, rule ${b.rule}`);
    if (b.reason) out.push(`    why: ${b.reason}`);
    out.push(`    length: ${b.length}`);
  }
  for (const n of m.networks) {
    out.push(`  network ${n.network} holds it: ${n.inForce ? (n.bannedUntil === null ? "banned until unbanned" : `banned until ${isoTime(n.bannedUntil)}`) : "not banned now"}`);
    for (const e of n.events) out.push(`    ${isoTime(e.time)} ${e.rule}: ${eventText(e)}`);
  }
  if (m.events.length) {
    const earlier = m.eventsTotal - m.events.length;
    out.push(`  events (${m.eventsTotal}${earlier > 0 ? `, the latest ${m.events.length}; --limit 0 shows all` : ""}):`);
    const t = table(["time", "rule", "event", "class"], width - 2);
    for (const e of m.events) t.push([isoTime(e.time), e.rule, eventText(e), e.class ?? ""]);
    out.push(...t.toString().split("\n").map((l) => `  ${l}`));
  }
  if (m.lines.length) {
    out.push(`  log lines that counted (the latest ${m.lines.length}):`);
    for (const l of m.lines) out.push(`    ${isoTime(l.time)} ${l.rule}: ${l.line}`);
  }
}

/** What the firewall itself holds, and where it disagrees with what watcher decided. */
function kernelText(s: Story, k: KernelStory): string {
  if ("error" in k) return `kernel: not read (${k.error})\n`;
  const drops = k.sets.filter((set) => set !== WHITELIST_SET);
  const lines = [`kernel: ${k.sets.length ? `held by ${k.sets.join(", ")}` : "in none of watcher's sets"}`];
  if (s.droppedBy.length && drops.length === 0) lines.push(`warning: watcher dropped it, but the firewall holds it in none of its sets (flushed, or changed by hand): "watcher doctor --fix" puts the bans back`);
  if (!s.droppedBy.length && drops.length) lines.push(`warning: the firewall drops it (${drops.join(", ")}) though no ban or list of watcher's does: "watcher doctor" shows the drift`);
  return `${lines.join("\n")}\n`;
}

/** The story as text for a terminal or a mail. */
export function storyText(s: Story, width = Infinity): string {
  const out: string[] = [];
  const head = s.droppedBy.length ? `dropped by ${s.droppedBy.join("; ")}` : s.lists.protection ? `not dropped: never banned (${s.lists.protection})` : "not dropped by watcher";
  out.push(`${s.address}: ${head} (as of ${isoTime(s.now)})`);
  out.push(`lists: ${listsText(s)}`);
  if (s.modules.length === 0) out.push("no module has a record of it");
  for (const m of s.modules) moduleText(m, out, width);
  if (s.modules.some((m) => m.class.class !== null)) out.push(`(${NAMES_NOT_KEPT})`);
  if (s.fleet) {
    out.push(`fleet: ${s.fleet.ban ? `banned ${s.fleet.ban.until === null ? "until unbanned" : `until ${isoTime(s.fleet.ban.until)}`} by ${s.fleet.ban.origin} (${s.fleet.ban.module} rule ${s.fleet.ban.rule})` : "no fleet ban"}`);
    for (const d of s.fleet.decisions) out.push(`  ${isoTime(d.received)} ${d.action} from ${d.origin} (${d.module} rule ${d.rule}${d.action === "ban" ? `, ${d.until >= PERMANENT_UNTIL ? "until unbanned" : `until ${isoTime(d.until)}`}` : ""}): ${d.outcome}`);
  }
  return `${out.join("\n")}\n`;
}

export const whyCommand: CommandModule<GlobalArgs, Args> = {
  command: "why <address>",
  describe: "the whole story of one address: lists, DNS class, counter, affairs and the log lines that counted, bans and why, fleet decisions",
  builder: (y) =>
    y
      .positional("address", { type: "string", demandOption: true, describe: "IPv4 or IPv6 address" })
      .option("limit", { type: "number", default: 50, describe: "the latest this many events per module (0: all)" })
      .option("json", { type: "boolean", describe: "the story as JSON; times in ISO 8601 (UTC), null until unbanned" }),
  handler: async (argv) => {
    if (!(Number.isInteger(argv.limit) && argv.limit >= 0)) throw new ConfigError(`--limit: expected a whole number, 0 for all, got ${argv.limit}`);
    const ip = parseOperatorAddress(argv.address);
    const { loaded, files } = controlConfig(argv.root);
    const story = whyStory(loaded, ip, nowSeconds(), argv.limit, files);
    const kernel = await kernelStory(loaded, ip);
    if (argv.json) printJson({ ...storyJson(story), kernel });
    else process.stdout.write(`${storyText(story, outputWidth(argv))}${kernelText(story, kernel)}`);
  },
};
