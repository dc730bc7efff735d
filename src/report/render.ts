/**
 * The report as text: plain tables (no colours: the same in a terminal, a pipe and a mail),
 * placed side by side where the width allows, optional columns dropped where it does not.
 */
import Table from "cli-table3";
import { formatDuration } from "../core/duration";
import type { ModuleReport, Report } from "./report";

const BLOCKS = "▁▂▃▄▅▆▇█";
const GAP = 3;
/* no rule between rows: a report is read down its columns */
const COMPACT = { mid: "", "left-mid": "", "mid-mid": "", "right-mid": "" };

/** One character per hour: `·` for none, then eight heights relative to the busiest hour. */
export function sparkline(counts: readonly number[]): string {
  const max = Math.max(0, ...counts);
  return counts.map((n) => (n === 0 ? "·" : BLOCKS[Math.max(0, Math.ceil((n / max) * BLOCKS.length) - 1)])).join("");
}

function widthOf(block: string): number {
  return Math.max(0, ...block.split("\n").map((l) => l.length));
}

/** Blocks left to right while they fit in `columns`, then on below. */
export function layout(blocks: readonly string[], columns: number): string {
  const rows: string[][] = [];
  let used = 0;
  for (const b of blocks) {
    const row = rows.at(-1);
    if (row && used + GAP + widthOf(b) <= columns) {
      row.push(b);
      used += GAP + widthOf(b);
    } else {
      rows.push([b]);
      used = widthOf(b);
    }
  }
  return rows
    .map((row) => {
      const cells = row.map((b) => b.split("\n"));
      const widths = row.map(widthOf);
      const height = Math.max(...cells.map((c) => c.length));
      const lines: string[] = [];
      for (let i = 0; i < height; i++) lines.push(cells.map((c, j) => (c[i] ?? "").padEnd(widths[j]!)).join(" ".repeat(GAP)).trimEnd());
      return lines.join("\n");
    })
    .join("\n\n");
}

interface Column {
  readonly head: string;
  readonly align?: "left" | "right";
  /** dropped, last first, when the table is wider than the terminal */
  readonly optional?: boolean;
}

/* a column is never narrower than this, its padding included: one character */
const MIN_COLUMN = 3;
/* prose (a reason, an event) wraps first, down to this width, before every column narrows alike */
const PROSE_COLUMN = 18;

/**
 * The column widths (cli-table3's colWidths, padding included) that make a table of these
 * cells fit in `width`, its borders included; [] when it fits as it is. Columns of prose
 * (cells with spaces) are narrowed first, then the widest of all are cut to one level; the
 * caller wraps the cells (wordWrap), so nothing is lost.
 */
export function fittedWidths(head: readonly string[], rows: readonly (readonly (string | number)[])[], width: number): number[] {
  const natural = head.map((h, i) => 2 + Math.max(h.length, ...rows.map((r) => Math.max(...String(r[i] ?? "").split("\n").map((l) => l.length)))));
  /* a border before, between and after the columns */
  const room = width - (natural.length + 1);
  const sum = (widths: number[]) => widths.reduce((a, b) => a + b, 0);
  if (sum(natural) <= room) return [];
  const prose = head.map((_, i) => rows.some((r) => String(r[i] ?? "").trim().includes(" ")));
  const proseCut = (cap: number) => natural.map((w, i) => (prose[i] ? Math.min(w, cap) : w));
  let level = Math.max(...natural);
  while (level > PROSE_COLUMN && sum(proseCut(level)) > room) level--;
  const widths = proseCut(level);
  if (sum(widths) <= room) return widths;
  level = Math.max(...widths);
  while (level > MIN_COLUMN && sum(widths.map((w) => Math.min(w, level))) > room) level--;
  return widths.map((w) => Math.min(w, level));
}

/** A titled table; optional columns go (last first) until it fits in `columns`, then its cells wrap (fittedWidths). */
function titledTable(title: string, columns: readonly Column[], rows: readonly (string | number)[][], width: number): string {
  if (rows.length === 0) return `${title}\n(none)`;
  let keep = columns.map((_, i) => i);
  for (;;) {
    const t = new Table({ head: keep.map((i) => columns[i]!.head), colAligns: keep.map((i) => columns[i]!.align ?? "left"), style: { head: [], border: [] }, chars: COMPACT });
    for (const r of rows) t.push(keep.map((i) => r[i]!));
    const text = `${title}\n${t.toString()}`;
    const drop = keep.findLast((i) => columns[i]!.optional);
    if (widthOf(text) <= width) return text;
    if (drop === undefined) {
      const head = keep.map((i) => columns[i]!.head);
      const cells = rows.map((r) => keep.map((i) => r[i]!));
      const colWidths = fittedWidths(head, cells, width);
      const fitted = new Table({ head, colAligns: keep.map((i) => columns[i]!.align ?? "left"), style: { head: [], border: [] }, chars: COMPACT, colWidths, wordWrap: true, wrapOnWordBoundary: false });
      fitted.push(...cells);
      return `${title}\n${fitted.toString()}`;
    }
    keep = keep.filter((i) => i !== drop);
  }
}

/** Parts joined by " · ", on as few lines as the width allows. */
function wrap(parts: readonly string[], width: number): string {
  const lines: string[] = [];
  for (const p of parts) {
    const last = lines.at(-1);
    if (last !== undefined && last.length + 3 + p.length <= width) lines[lines.length - 1] = `${last} · ${p}`;
    else lines.push(p);
  }
  return lines.join("\n");
}


function moduleSection(m: ModuleReport, report: Report, width: number): string {
  const heading = m.vhost === null ? `${m.module}: ${m.title}` : `${m.module}: ${m.title}, vhost ${m.vhost}`;
  const summary = wrap([`tracked ${m.tracked}`, `banned now ${m.banned}`, `affairs today ${m.affairsToday}`, `since ${report.since}: affairs ${m.affairs}, bans ${m.bans}`], width);
  const max = Math.max(0, ...m.hourly.affairs);
  /* the hour it starts at alone read as a time to come (since 02:00Z at 01:58Z): the hours are named by their place */
  const spark = `affairs in each of the last 24 hours: ${sparkline(m.hourly.affairs)} (max ${max})`;
  const right = { align: "right" } as const;
  const blocks = [
    titledTable("by class", [{ head: "class" }, { head: "addresses", ...right }, { head: "affairs", ...right }], m.byClass.map((c) => [c.class, c.addresses, c.affairs]), width),
    titledTable("by rule", [{ head: "rule" }, { head: "affairs", ...right }, { head: "addresses", ...right }, { head: "bans", ...right }], m.byRule.map((r) => [r.rule, r.affairs, r.addresses, r.bans]), width),
    titledTable(
      "top attackers",
      [{ head: "address" }, { head: "affairs", ...right }, { head: "bans", ...right }, { head: "class", optional: true }, { head: "last seen", optional: true }],
      m.topAttackers.map((a) => [a.address, a.affairs, a.bans, a.class, a.lastSeen]),
      width,
    ),
  ];
  /* the vhost column only where there are several vhosts to tell apart */
  const vhostColumn = m.vhost === null && m.latestBans.some((b) => b.vhost !== null);
  const banColumns: Column[] = [
    { head: "time" },
    { head: "address" },
    ...(vhostColumn ? [{ head: "vhost", optional: true }] : []),
    { head: "reason (last rule)" },
    { head: "for", ...right },
    { head: "until", optional: true },
  ];
  blocks.push(
    titledTable(
      "latest bans",
      banColumns,
      m.latestBans.map((b) => [b.time, b.address, ...(vhostColumn ? [b.vhost ?? "-"] : []), b.rule, b.seconds === null ? "forever" : formatDuration(b.seconds), b.lifted ? `${b.until} (lifted)` : (b.until ?? "until unbanned")]),
      width,
    ),
  );
  if (m.prefixBans.length > 0) {
    blocks.push(
      titledTable(
        "networks banned whole (prefix bans)",
        [{ head: "prefix" }, { head: "until" }, { head: "bans", ...right, optional: true }, { head: "reason", optional: true }],
        m.prefixBans.map((p) => [p.prefix, p.until ?? "until unbanned", p.bans, p.reason ?? "-"]),
        width,
      ),
    );
  }
  return [`== ${heading}`, summary, spark, "", layout(blocks, width)].join("\n");
}

/** The whole report at a terminal width (columns). */
export function renderReport(report: Report, width: number): string {
  const parts = [report.vhost === null ? `watcher report ${report.generatedAt}` : `watcher report for ${report.vhost}, ${report.generatedAt}`];
  if (report.firewall) {
    parts.push(
      titledTable(
        `firewall (${report.firewall.backend})`,
        [{ head: "set" }, { head: "entries", align: "right" }],
        report.firewall.sets.map((s) => [s.set, s.entries]),
        width,
      ),
    );
  }
  if (report.blocklists.length > 0) {
    parts.push(
      titledTable(
        "blocklists",
        [{ head: "list" }, { head: "entries", align: "right" }, { head: "last fetch" }, { head: "next due" }, { head: "last error" }],
        report.blocklists.map((b) => [b.enabled ? b.list : `${b.list} (off)`, b.entries, b.lastFetch ?? "never", b.nextDue ?? (b.enabled ? "next dynload run" : "-"), b.lastError ?? "-"]),
        width,
      ),
    );
  }
  if (report.fleet && report.fleet.byOrigin.length > 0) {
    parts.push(
      titledTable(
        `fleet: decisions received by ${report.fleet.node}`,
        [{ head: "from node" }, { head: "bans", align: "right" }, { head: "unbans", align: "right" }, { head: "refused here", align: "right" }],
        report.fleet.byOrigin.map((o) => [o.origin, o.bans, o.unbans, o.refused]),
        width,
      ),
      titledTable(
        "fleet: latest decisions received",
        [{ head: "received" }, { head: "action" }, { head: "address" }, { head: "module" }, { head: "rule" }, { head: "from node" }, { head: "outcome" }],
        report.fleet.latest.map((d) => [d.time, d.action, d.address, d.module, d.rule, d.origin, d.outcome]),
        width,
      ),
    );
  }
  for (const m of report.modules) parts.push(moduleSection(m, report, width));
  return `${parts.join("\n\n")}\n`;
}
