/**
 * Prometheus metrics: the text exposition format (version 0.0.4) of what `watcher status`
 * gathers, the status files the master and each module keep (modules/loop.ts) and the kernel
 * sets' sizes. The master serves it on `[metrics] listen` (master.ts); `watcher metrics`
 * prints it for node_exporter's textfile collector. The counters themselves are plain
 * integers the stages increment (the hot path pays nothing more); this file only names and
 * formats them: every name with the `watcher_` prefix, HELP and TYPE once per family, label
 * values escaped.
 */
import type { StatusReport } from "../master/control";

/** seconds from a chunk's arrival to the kernel's answer for its bans */
export const LATENCY_BOUNDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

/** A histogram's state as the status file carries it: counts per bucket (not cumulative), the last for +Inf. */
export interface HistogramSnapshot {
  bounds: readonly number[];
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  snapshot(): HistogramSnapshot {
    return { bounds: this.bounds, counts: [...this.counts], sum: this.sum, count: this.count };
  }
}

type Labels = Record<string, string>;
type Kind = "counter" | "gauge" | "histogram";

/** HELP text: backslash and newline escaped. */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** A label value: backslash, double quote and newline escaped. */
export function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Number.POSITIVE_INFINITY) return "+Inf";
  if (v === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(v);
}

function labelText(labels: Labels): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return pairs.length ? `{${pairs.join(",")}}` : "";
}

/** The exposition being written: each family's samples together, under its HELP and TYPE. */
class Exposition {
  private readonly families = new Map<string, { help: string; kind: Kind; lines: string[] }>();

  private family(name: string, kind: Kind, help: string): string[] {
    let f = this.families.get(name);
    if (!f) {
      f = { help, kind, lines: [] };
      this.families.set(name, f);
    }
    return f.lines;
  }

  counter(name: string, help: string, value: number, labels: Labels = {}): void {
    this.family(`watcher_${name}_total`, "counter", help).push(`watcher_${name}_total${labelText(labels)} ${formatValue(value)}`);
  }

  gauge(name: string, help: string, value: number, labels: Labels = {}): void {
    this.family(`watcher_${name}`, "gauge", help).push(`watcher_${name}${labelText(labels)} ${formatValue(value)}`);
  }

  histogram(name: string, help: string, h: HistogramSnapshot, labels: Labels): void {
    const full = `watcher_${name}`;
    const lines = this.family(full, "histogram", help);
    let cumulative = 0;
    h.bounds.forEach((bound, i) => {
      cumulative += h.counts[i] ?? 0;
      lines.push(`${full}_bucket${labelText({ ...labels, le: formatValue(bound) })} ${cumulative}`);
    });
    lines.push(`${full}_bucket${labelText({ ...labels, le: "+Inf" })} ${h.count}`);
    lines.push(`${full}_sum${labelText(labels)} ${formatValue(h.sum)}`);
    lines.push(`${full}_count${labelText(labels)} ${h.count}`);
  }

  text(): string {
    const out: string[] = [];
    for (const [name, f] of this.families) {
      out.push(`# HELP ${name} ${escapeHelp(f.help)}`, `# TYPE ${name} ${f.kind}`, ...f.lines);
    }
    return `${out.join("\n")}\n`;
  }
}

/** The HTTP Content-Type of the text format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** The text format of one status report. Counters count from each process's start (Prometheus handles the resets). */
export function renderMetrics(s: StatusReport): string {
  const e = new Exposition();
  e.gauge("up", "1 when the master of this root runs", s.running ? 1 : 0);
  if (s.startedAt !== null) e.gauge("master_start_time_seconds", "when the master started (epoch seconds)", s.startedAt);
  for (const m of s.modules) {
    const module = m.module;
    e.gauge("module_up", "1 when the module process runs", m.running ? 1 : 0, { module });
    e.counter("module_restarts", "restarts of the module process by the master", m.restarts, { module });
    e.counter("lines", "log lines read", m.lines, { module });
    e.counter("matched_lines", "lines a rule matched", m.matched, { module });
    e.counter("affairs", "affairs counted", m.affairs, { module });
    for (const [rule, c] of Object.entries(m.rules)) {
      e.counter("rule_matched_lines", "lines matched, by rule", c.matched, { module, rule });
      e.counter("rule_affairs", "affairs counted, by rule", c.affairs, { module, rule });
    }
    e.counter("bans", "bans decided (addresses and prefixes)", m.bans, { module });
    e.counter("bans_refused", "bans the kernel refused (a full set): recorded, not in force", m.refused, { module });
    for (const [how, n] of Object.entries(m.bansEnded)) e.counter("unbans", "bans of this module that ended: expired (their time ran out) or lifted (watcher unban, expire, the fleet)", n, { module, how });
    if (m.latency) e.histogram("line_to_ban_seconds", "from a chunk's arrival in the module to the kernel's answer for the bans its lines decided", m.latency, { module });
    e.gauge("pending_hosts", "host records waiting in memory for the database (a full disk)", m.pending.hosts, { module });
    e.gauge("pending_events", "events waiting in memory for the database (a full disk)", m.pending.events, { module });
    e.counter("pending_dropped_events", "events dropped from the memory queue while the database could not be written", m.pending.droppedEvents, { module });
    e.gauge("database_writable", "0 while the module's database cannot be written", m.pending.error ? 0 : 1, { module });
    if (m.dns) {
      for (const [cls, n] of Object.entries(m.dns.classes ?? {})) e.counter("dns_lookups", "DNS classifications done, by the class they gave (UNKNOWN: no usable answer)", n, { module, class: cls });
      e.counter("dns_cache_hits", "classes taken from the cache", m.dns.cacheHits, { module });
      e.counter("dns_dropped", "lookups dropped because the queue was full", m.dns.dropped, { module });
      const r = m.dns.resolver;
      if (r) {
        e.counter("dns_queries", "DNS queries sent", r.queries, { module });
        e.counter("dns_timeouts", "DNS tries without an acceptable answer in time", r.timeouts, { module });
        const outcomes = { accepted: r.answers, from_elsewhere: r.fromElsewhere, wrong_id: r.wrongId, wrong_question: r.wrongQuestion, malformed: r.malformed };
        for (const [outcome, n] of Object.entries(outcomes)) e.counter("dns_replies", "DNS replies, by outcome (all but accepted are dropped: forged, late or stray)", n, { module, outcome });
      }
    }
    if (m.fleet) {
      e.counter("fleet_published", "decisions published to the fleet", m.fleet.published, { module });
      e.gauge("fleet_outbox", "decisions waiting to be published", m.fleet.outbox, { module });
      e.counter("fleet_outbox_dropped", "decisions dropped from a full outbox", m.fleet.dropped, { module });
      e.counter("fleet_bans", "bans because the fleet-wide count was reached", m.fleet.fleetBans, { module });
    }
    for (const [action, a] of Object.entries(m.actions)) {
      for (const [outcome, n] of [["ok", a.ok], ["failed", a.failed], ["timeout", a.timedOut]] as const) e.counter("action_runs", "runs of an action, by outcome", n, { module, action, outcome });
      e.counter("action_dropped", "decisions dropped from an action's full queue", a.dropped, { module, action });
      e.gauge("action_waiting", "decisions waiting for an action's run", a.waiting, { module, action });
    }
  }
  for (const f of s.firewall ?? []) {
    e.gauge("set_entries", "entries in the kernel set", f.entries, { set: f.set });
    if (f.full !== null) e.gauge("set_fill_ratio", "the fuller family's share of the backend's limit", f.full, { set: f.set });
  }
  if (s.fleet) {
    const f = s.fleet;
    e.gauge("fleet_connected", "1 while the master reads the fleet's stream", f.connected ? 1 : 0);
    if (f.lagMs !== null) e.gauge("fleet_lag_seconds", "how far the stream is ahead of what this node applied", f.lagMs / 1000);
    const outcomes = { applied: f.applied, protected: f.protected, not_accepted: f.notAccepted, expired: f.expired, duplicate: f.duplicates, bad_signature: f.badSignature };
    e.counter("fleet_received", "decisions of other nodes received", f.received);
    for (const [outcome, n] of Object.entries(outcomes)) e.counter("fleet_decisions", "decisions of other nodes, by what became of them (all but applied are refusals)", n, { outcome });
    e.counter("fleet_syncs", "full syncs from the fleet's active set", f.syncs);
  }
  return e.text();
}
