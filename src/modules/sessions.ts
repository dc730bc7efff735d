/**
 * Session attribution and merging. A session is one `program[pid]`: sshd writes several lines
 * per connection, some without the address, some describing the same failed attempt twice
 * (PAM's `authentication failure` and sshd's `Failed password`).
 *  - Address: the session remembers the address its lines were extracted from; a line without
 *    one belongs to it, and lines that come before the address wait for it.
 *  - Merging: within one rule group, each stream (a rule, or rules sharing `stream`) adds up the
 *    attempts it has seen; the session's attempts are the largest of those totals, and only
 *    an increase counts. So `pam`+`Failed password`+`PAM 2 more` over three tries is 3, not 6.
 * The map is bounded (oldest sessions go first) and sessions expire, so a flood of new pids
 * cannot grow memory.
 */
import { BoundedMap } from "../core/bounded-map";
import type { Ip } from "../core/ip";
import type { CompiledRule } from "../core/rules";
import { type HeaderScan, sessionKey } from "../core/syslog";

interface Tally {
  readonly group: string;
  readonly stream: string;
  total: number;
}

interface Session {
  host: Ip | null;
  lastSeen: number;
  /** attempts per group and stream: a few entries, so a list (Maps churn memory) */
  tallies: Tally[] | null;
  /** affairs counted against the host for this session (what a success may forgive) */
  counted: number;
  /** weight seen before the address was known, by rule */
  waiting: { rule: CompiledRule; weight: number }[] | null;
}

export interface Attributed {
  readonly host: Ip;
  readonly rule: CompiledRule;
  /** the line being attributed (true) or an earlier one that waited for the address */
  readonly current: boolean;
  /** affairs to count: 0 when merged into attempts already counted */
  readonly weight: number;
}

const MAX_WAITING = 16;

/** Sessions by key, bounded (see BoundedMap): a flood of new pids cannot grow memory. */
export class SessionTable {
  private readonly sessions: BoundedMap<string, Session>;

  constructor(
    maxSessions = 8192,
    private readonly ttlSeconds = 600,
  ) {
    this.sessions = new BoundedMap(maxSessions);
  }

  get size(): number {
    return this.sessions.size;
  }

  private touch(key: string, now: number): Session {
    let s = this.sessions.get(key);
    if (s && now - s.lastSeen > this.ttlSeconds) s = undefined; /* pid reused long after */
    if (!s) {
      s = { host: null, lastSeen: now, tallies: null, counted: 0, waiting: null };
      this.sessions.set(key, s);
    }
    s.lastSeen = now;
    return s;
  }

  /** Weight after merging: how much this line raises the session's attempts in its group. */
  private merge(s: Session, rule: CompiledRule, weight: number): number {
    const group = rule.group;
    if (!group) return weight;
    s.tallies ??= [];
    let before = 0;
    let tally: Tally | undefined;
    for (const t of s.tallies) {
      if (t.group !== group) continue;
      before = Math.max(before, t.total);
      if (t.stream === rule.stream) tally = t;
    }
    if (!tally) s.tallies.push((tally = { group, stream: rule.stream, total: 0 }));
    tally.total = rule.once ? Math.min(1, tally.total + weight) : tally.total + weight;
    return Math.max(0, tally.total - before);
  }

  /**
   * Attribute one matched line. `key` is program[pid] ("" when the line has no pid: then
   * only lines with their own address count, each alone). Returns what to count now, which
   * may include earlier lines that were waiting for this session's address.
   */
  attribute(key: string, host: Ip | null, rule: CompiledRule, weight: number, now: number): Attributed[] {
    if (key === "") return host ? [{ host, rule, current: true, weight }] : [];
    let s = this.touch(key, now);
    if (host && s.host && s.host.text !== host.text) {
      /* a new connection under a reused pid */
      this.sessions.delete(key);
      s = this.touch(key, now);
    }
    const out: Attributed[] = [];
    if (host && !s.host) {
      s.host = host;
      for (const w of s.waiting ?? []) out.push({ host, rule: w.rule, current: false, weight: this.merge(s, w.rule, w.weight) });
      s.waiting = null;
    }
    if (!s.host) {
      s.waiting ??= [];
      if (rule.action === "count" && s.waiting.length < MAX_WAITING) s.waiting.push({ rule, weight });
      return out;
    }
    out.push({ host: s.host, rule, current: true, weight: rule.action === "count" ? this.merge(s, rule, weight) : weight });
    for (const a of out) if (a.rule.action === "count") s.counted += a.weight;
    return out;
  }

  /** A successful login: returns the affairs this session had counted, and forgets them. */
  forgive(key: string): number {
    const s = this.sessions.get(key);
    if (!s) return 0;
    const counted = s.counted;
    s.counted = 0;
    s.tallies = null;
    return counted;
  }
}

/**
 * The session a line belongs to: the service's own session id where the rule found one
 * (Dovecot's `session=<...>`), else `program[pid]`, else none.
 */
export function sessionOf(text: string, h: HeaderScan, serviceSession: string | null): string {
  return serviceSession ? `${text.slice(h.programStart, h.programEnd)}:${serviceSession}` : sessionKey(text, h);
}
