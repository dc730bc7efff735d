/**
 * Metrics through the built binary: a real master on a temp root with `[metrics] listen`, a
 * module fed lines through its FIFO, a real HTTP client scraping the endpoint, and the counts
 * found equal to what was injected; `watcher metrics` prints the same series. Every text is
 * read by a strict parser of the exposition format (below), which fails on anything a
 * Prometheus server would refuse or misread.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { FleetStatusReport } from "../../src/fleet/nodes";
import type { StatusReport } from "../../src/master/control";
import { Histogram, LATENCY_BOUNDS, renderMetrics } from "../../src/ops/metrics";
import { TestDnsServer } from "../helpers/dns-server";
import { ATTACKER_V4, BUN, SERVER_V4, TestNet } from "../helpers/netns";
import { freePort, TestRedis } from "../helpers/redis";
import { makeRoot, watcher, WATCHER } from "../helpers/root";
import { timeoutForHangsOnly, waitFor } from "../helpers/wait";

timeoutForHangsOnly();

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A label set `{a="x",b="y"}` from `text` at `at` (just after the `{`); returns the labels and the offset after `}`. */
function parseLabels(text: string, at: number, where: string): [Record<string, string>, number] {
  const labels: Record<string, string> = {};
  let i = at;
  while (text[i] !== "}") {
    const eq = text.indexOf("=", i);
    const name = text.slice(i, eq);
    if (!LABEL_NAME.test(name) || name.startsWith("__")) throw new Error(`${where}: bad label name ${JSON.stringify(name)}`);
    if (text[eq + 1] !== '"') throw new Error(`${where}: label ${name} without a quoted value`);
    let value = "";
    for (i = eq + 2; text[i] !== '"'; i++) {
      if (i >= text.length) throw new Error(`${where}: unterminated label value`);
      if (text[i] === "\\") {
        const next = text[++i];
        if (next === "\\") value += "\\";
        else if (next === '"') value += '"';
        else if (next === "n") value += "\n";
        else throw new Error(`${where}: bad escape \\${next} in a label value`);
      } else if (text[i] === "\n") throw new Error(`${where}: raw newline in a label value`);
      else value += text[i];
    }
    if (name in labels) throw new Error(`${where}: label ${name} twice`);
    labels[name] = value;
    i++;
    if (text[i] === ",") i++;
    else if (text[i] !== "}") throw new Error(`${where}: expected , or } after label ${name}`);
  }
  return [labels, i + 1];
}

/** The text format, version 0.0.4, read strictly: HELP/TYPE once per family and before its samples, samples of one family together, no series twice, histograms whole. */
function parseExposition(text: string): { types: Map<string, string>; help: Map<string, string>; samples: Sample[] } {
  if (!text.endsWith("\n")) throw new Error("the text must end with a newline");
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const samples: Sample[] = [];
  const series = new Set<string>();
  const closed = new Set<string>();
  let current: string | null = null;
  const familyOf = (name: string) => {
    for (const suffix of ["_bucket", "_sum", "_count"]) {
      const base = name.slice(0, -suffix.length);
      if (name.endsWith(suffix) && types.get(base) === "histogram") return base;
    }
    return name;
  };
  const enter = (family: string, where: string) => {
    if (family !== current) {
      if (closed.has(family)) throw new Error(`${where}: family ${family} is split`);
      if (current) closed.add(current);
      current = family;
    }
  };
  text
    .slice(0, -1)
    .split("\n")
    .forEach((line, n) => {
      const where = `line ${n + 1} (${line})`;
      if (line.startsWith("#")) {
        const m = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
        if (!m) throw new Error(`${where}: a comment that is neither HELP nor TYPE`);
        const [, kind, name, rest] = m as unknown as [string, string, string, string];
        if (!NAME.test(name)) throw new Error(`${where}: bad metric name`);
        enter(name, where);
        if (kind === "TYPE") {
          if (types.has(name)) throw new Error(`${where}: TYPE twice`);
          if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(rest)) throw new Error(`${where}: unknown type`);
          if (samples.some((s) => familyOf(s.name) === name)) throw new Error(`${where}: TYPE after samples`);
          types.set(name, rest);
        } else {
          if (help.has(name)) throw new Error(`${where}: HELP twice`);
          if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ""))) throw new Error(`${where}: bad escape in HELP`);
          help.set(name, rest);
        }
        return;
      }
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{)?/.exec(line);
      if (!m) throw new Error(`${where}: not a sample`);
      const name = m[1]!;
      let [labels, at] = [{} as Record<string, string>, name.length];
      if (m[2]) [labels, at] = parseLabels(line, name.length + 1, where);
      const v = /^ (\S+)$/.exec(line.slice(at));
      if (!v) throw new Error(`${where}: expected one space and a value (no timestamps here)`);
      const value = v[1] === "+Inf" ? Infinity : v[1] === "-Inf" ? -Infinity : v[1] === "NaN" ? NaN : Number(v[1]);
      if (!/^(\+Inf|-Inf|NaN|-?[0-9.]+(e[-+]?[0-9]+)?)$/.test(v[1]!) || (Number.isNaN(value) && v[1] !== "NaN")) throw new Error(`${where}: bad value`);
      const family = familyOf(name);
      if (!types.has(family)) throw new Error(`${where}: sample before its TYPE`);
      enter(family, where);
      const type = types.get(family);
      if (type === "counter" && (!name.endsWith("_total") || value < 0)) throw new Error(`${where}: a counter is named *_total and never negative`);
      if (type === "histogram" && name.endsWith("_bucket") && !("le" in labels)) throw new Error(`${where}: a bucket without le`);
      const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
      if (series.has(key)) throw new Error(`${where}: the same series twice`);
      series.add(key);
      samples.push({ name, labels, value });
    });
  /* histograms: cumulative buckets ending in +Inf, which equals _count */
  for (const [family, type] of types) {
    if (type !== "histogram") continue;
    const groups = new Map<string, Sample[]>();
    for (const s of samples.filter((s) => s.name === `${family}_bucket`)) {
      const { le, ...rest } = s.labels;
      const key = JSON.stringify(rest);
      groups.set(key, [...(groups.get(key) ?? []), { ...s, value: s.value, labels: { le: le! } }]);
    }
    for (const [key, buckets] of groups) {
      const les = buckets.map((b) => (b.labels.le === "+Inf" ? Infinity : Number(b.labels.le)));
      if (les.at(-1) !== Infinity) throw new Error(`${family}${key}: no +Inf bucket`);
      for (let i = 1; i < buckets.length; i++) {
        if (!(les[i]! > les[i - 1]!)) throw new Error(`${family}${key}: le not increasing`);
        if (buckets[i]!.value < buckets[i - 1]!.value) throw new Error(`${family}${key}: buckets not cumulative`);
      }
      const count = samples.find((s) => s.name === `${family}_count` && JSON.stringify(s.labels) === key);
      if (!count || count.value !== buckets.at(-1)!.value) throw new Error(`${family}${key}: _count differs from the +Inf bucket`);
      if (!samples.some((s) => s.name === `${family}_sum` && JSON.stringify(s.labels) === key)) throw new Error(`${family}${key}: no _sum`);
    }
  }
  for (const name of types.keys()) {
    if (!name.startsWith("watcher_")) throw new Error(`${name}: without the watcher_ prefix`);
    if (!help.has(name)) throw new Error(`${name}: no HELP`);
  }
  return { types, help, samples };
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}


const roots: string[] = [];
afterEach(() => {
  for (const root of roots.splice(0)) watcher(root, "stop");
});

function newRoot(toml: string, files: Record<string, string> = {}): string {
  const root = makeRoot("metrics", { "etc/watcher.toml": toml, ...files });
  roots.push(root);
  return root;
}

const failed = (pid: number, address: string) => `Dec  6 06:00:01 web1 sshd[${pid}]: Failed password for root from ${address} port ${40000 + pid} ssh2`;

describe("metrics", () => {
  test("the master serves what the module counted; watcher metrics prints the same series", async () => {
    const port = await freePort();
    const root = newRoot("", { "blocklist.txt": "198.51.100.200\n198.51.100.201\n203.0.113.128/28\n" });
    writeFileSync(
      join(root, "etc", "watcher.toml"),
      `firewall = "dryrun"\n[metrics]\nlisten = "127.0.0.1:${port}"\n[modules.LG]\ndns = false\nmaxAffairs = 3\n[dynload.lists.mine]\nurls = ["${join(root, "blocklist.txt")}"]\nformat = "cidr-lines"\n`,
    );
    expect(watcher(root, "start").code).toBe(0);
    expect(watcher(root, "dynload").code).toBe(0);
    const lines = [
      failed(101, "203.0.113.7"),
      failed(102, "203.0.113.7"),
      failed(103, "203.0.113.7"),
      failed(104, "198.51.100.9"),
      "Dec  6 06:00:02 web1 sshd[105]: Accepted password for alice from 192.0.2.10 port 50105 ssh2",
      "Dec  6 06:00:03 web1 CRON[106]: (root) CMD (run-parts /etc/cron.hourly)",
    ];
    const inject = Bun.spawnSync([WATCHER, "--root", root, "inject", "LG"], { stdin: new Blob([`${lines.join("\n")}\n`]), stderr: "pipe" });
    expect(inject.exitCode).toBe(0);

    const url = `http://127.0.0.1:${port}/metrics`;
    const scraped = await waitFor("the scrape to show the injected lines", async () => {
      const res = await fetch(url);
      const text = await res.text();
      return value(parseExposition(text).samples, "watcher_lines_total", { module: "LG" }) === lines.length ? { res, text } : null;
    });
    expect(scraped.res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const { samples, types } = parseExposition(scraped.text);
    expect(value(samples, "watcher_up")).toBe(1);
    expect(value(samples, "watcher_module_up", { module: "LG" })).toBe(1);
    expect(value(samples, "watcher_matched_lines_total", { module: "LG" })).toBe(5);
    expect(value(samples, "watcher_rule_matched_lines_total", { module: "LG", rule: "failed-auth" })).toBe(4);
    expect(value(samples, "watcher_rule_matched_lines_total", { module: "LG", rule: "accepted" })).toBe(1);
    expect(value(samples, "watcher_rule_affairs_total", { module: "LG", rule: "failed-auth" })).toBe(4);
    expect(value(samples, "watcher_affairs_total", { module: "LG" })).toBe(4);
    expect(value(samples, "watcher_bans_total", { module: "LG" })).toBe(1);
    expect(value(samples, "watcher_set_entries", { set: "watcher_LG" })).toBe(1);
    expect(value(samples, "watcher_set_entries", { set: "watcher_dl_mine" })).toBe(3);
    expect(value(samples, "watcher_line_to_ban_seconds_count", { module: "LG" })).toBe(1);
    expect(value(samples, "watcher_line_to_ban_seconds_bucket", { module: "LG", le: "+Inf" })).toBe(1);
    expect(value(samples, "watcher_pending_events", { module: "LG" })).toBe(0);
    expect(value(samples, "watcher_database_writable", { module: "LG" })).toBe(1);
    expect(types.get("watcher_line_to_ban_seconds")).toBe("histogram");

    /* the command prints the same series (the counts have settled) */
    const printed = watcher(root, "metrics");
    expect(printed.code).toBe(0);
    const series = (t: string) => parseExposition(t).samples.filter((s) => s.name !== "watcher_line_to_ban_seconds_sum").map((s) => `${s.name}${JSON.stringify(s.labels)} ${s.value}`);
    expect(series(printed.out)).toEqual(series(await (await fetch(url)).text()));

    /* that address only, and /metrics only */
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(404);
    expect(await fetch(`http://127.0.0.2:${port}/metrics`).then(() => "answered", (e: Error) => e.message)).not.toBe("answered");

    expect(watcher(root, "stop").code).toBe(0);
    await waitFor("the endpoint to close", () => fetch(url).then(() => false, () => true));
    const stopped = parseExposition(watcher(root, "metrics").out).samples;
    expect(value(stopped, "watcher_up")).toBe(0);
  });

  test("DNS classes and the fleet: a real name server on loopback, a real Redis, two nodes", async () => {
    const dns = await new TestDnsServer({
      ptr: { "61.100.51.198.in-addr.arpa": ["mail.good.example"] } /* 203.0.113.60 has none: NXDOMAIN */,
      a: { "mail.good.example": ["198.51.100.61"] },
    }).start();
    const redis = await new TestRedis().start();
    try {
      const fleetNode = (name: string, lg: string, files: Record<string, string> = {}) => {
        const fleet = `[fleet]\nurl = "${redis.url}"\nnode = "${name}"\n`;
        const root = newRoot(`firewall = "dryrun"\n[dns]\nservers = ["${dns.address}"]\n[modules.LG]\nmaxAffairs = 1\n${lg}\n${fleet}`, { "etc/fleet.key": "metrics-test-key-0123456789abcdef\n", ...files });
        chmodSync(join(root, "etc", "fleet.key"), 0o600);
        return root;
      };
      const a = fleetNode("a", "dns = true");
      const b = fleetNode("b", "dns = false", { "etc/whitelist": "198.51.100.61\n" });
      expect(watcher(a, "start").code).toBe(0);
      expect(watcher(b, "start").code).toBe(0);
      /* B reads the stream before A bans: decisions it found in its first full sync would not count as received */
      await waitFor("B to join the fleet", () => ((JSON.parse(watcher(b, "fleet", "status", "--json").out) as FleetStatusReport).master?.syncs ?? 0) >= 1);
      expect(watcher(a, "inject", "LG", failed(1, "203.0.113.60"), failed(2, "198.51.100.61")).code).toBe(0);

      const scrape = (root: string) => parseExposition(watcher(root, "metrics").out).samples;
      const onA = await waitFor("A's classes and publications", () => {
        const m = scrape(a);
        return value(m, "watcher_dns_lookups_total", { class: "NXDOMAIN" }) === 1 && value(m, "watcher_dns_lookups_total", { class: "TRUEHOST" }) === 1 && value(m, "watcher_fleet_published_total", { module: "LG" }) === 2 ? m : null;
      });
      expect(value(onA, "watcher_dns_replies_total", { outcome: "accepted" })).toBeGreaterThanOrEqual(3); /* two PTR, one A */
      expect(value(onA, "watcher_dns_replies_total", { outcome: "wrong_id" })).toBe(0);
      expect(value(onA, "watcher_dns_timeouts_total")).toBe(0);
      /* B applies one decision and refuses the other: its whitelist wins */
      const onB = await waitFor("B's fleet figures", () => {
        const m = scrape(b);
        return value(m, "watcher_fleet_decisions_total", { outcome: "applied" }) === 1 && value(m, "watcher_fleet_decisions_total", { outcome: "protected" }) === 1 ? m : null;
      });
      expect(value(onB, "watcher_fleet_received_total")).toBe(2);
      expect(value(onB, "watcher_fleet_connected")).toBe(1);
      expect(value(onB, "watcher_fleet_lag_seconds")).toBeGreaterThanOrEqual(0);
      expect(value(onB, "watcher_set_entries", { set: "watcher_fleet" })).toBe(1);
    } finally {
      await redis.cleanup();
      dns.stop();
    }
  });

  test("with nftables in a network namespace: the kernel set's size, scraped over a veth from another namespace", async () => {
    const net = new TestNet().setup();
    try {
      const root = newRoot(`firewall = "nftables"\n[metrics]\nlisten = "${SERVER_V4}:9469"\n[modules.LG]\ndns = false\nmaxAffairs = 1\n`);
      const inServer = (...args: string[]) => net.exec(net.server, [WATCHER, "--root", root, ...args]);
      expect(inServer("start").code).toBe(0);
      expect(inServer("inject", "LG", failed(1, "203.0.113.71"), failed(2, "203.0.113.72"), failed(3, "2001:db8:77::1")).code).toBe(0);
      /* a real client on the other side of the link: the attacker's namespace is not banned */
      const scrape = () => {
        const r = net.exec(net.attacker, [BUN, "-e", `process.stdout.write(await (await fetch("http://${SERVER_V4}:9469/metrics")).text())`]);
        if (r.code !== 0) throw new Error(`the scrape from ${ATTACKER_V4} failed: ${r.err}`);
        return parseExposition(r.out).samples;
      };
      /* the set answers at once; the module's counts come with its next status file (every 2 s) */
      const m = await waitFor("the three bans in the kernel set and in the counts", () => {
        const samples = scrape();
        return value(samples, "watcher_set_entries", { set: "watcher_LG" }) === 3 && value(samples, "watcher_bans_total", { module: "LG" }) === 3 ? samples : null;
      });
      expect(value(m, "watcher_set_fill_ratio", { set: "watcher_LG" })).toBeGreaterThan(0);
      const kernel = net.exec(net.server, ["nft", "list", "set", "inet", "watcher", "watcher_LG_v4"]).out;
      expect(kernel).toContain("203.0.113.71");
      expect(kernel).toContain("203.0.113.72");
      expect(inServer("stop").code).toBe(0);
    } finally {
      net.cleanup();
    }
  });

  test("a bad listen address is a configuration error; a port in use stops the start", async () => {
    const bad = newRoot('firewall = "dryrun"\n[metrics]\nlisten = "9469"\n[modules.LG]\ndns = false\n');
    const r = watcher(bad, "start");
    expect(r.code).toBe(2);
    expect(r.err).toContain("metrics.listen: expected an address and port");

    const taken = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("someone else") });
    try {
      const root = newRoot(`firewall = "dryrun"\n[metrics]\nlisten = "127.0.0.1:${taken.port}"\n[modules.LG]\ndns = false\n`);
      const s = watcher(root, "start");
      expect(s.code).not.toBe(0);
      expect(s.err).toContain(`[metrics] listen = "127.0.0.1:${taken.port}": cannot serve there`);
      expect(watcher(root, "status").code).toBe(3);
      expect(readFileSync(join(root, "var", "log", "watcher.log"), "utf8")).toContain("cannot serve there");
    } finally {
      taken.stop(true);
    }
  });

  test("the parser of these tests refuses what a Prometheus server would refuse or misread", () => {
    const ok = "# HELP watcher_x_total x\n# TYPE watcher_x_total counter\nwatcher_x_total{a=\"1\"} 2\n";
    expect(parseExposition(ok).samples).toEqual([{ name: "watcher_x_total", labels: { a: "1" }, value: 2 }]);
    const bad = [
      ok.slice(0, -1), /* no final newline */
      ok.replace('a="1"', 'a="1\\q"'), /* a bad escape */
      ok.replace('a="1"', "a=1"), /* an unquoted value */
      ok.replace("counter", "countr"),
      ok.replace("watcher_x_total{", "watcher_x{"), /* a sample of no declared family */
      `${ok}watcher_x_total{a="1"} 3\n`, /* the same series twice */
      ok.replace("} 2", "} -2"), /* a negative counter */
      `${ok}# HELP watcher_y y\n# TYPE watcher_y gauge\nwatcher_y 1\nwatcher_x_total{a="2"} 1\n`, /* a split family */
      "# HELP watcher_h h\n# TYPE watcher_h histogram\nwatcher_h_bucket{le=\"1\"} 2\nwatcher_h_bucket{le=\"+Inf\"} 1\nwatcher_h_sum 1\nwatcher_h_count 1\n", /* not cumulative */
      "# HELP x_total x\n# TYPE x_total counter\nx_total 1\n", /* no prefix */
    ];
    for (const text of bad) expect(() => parseExposition(text)).toThrow();
  });

  test("label values are escaped: a backslash, a double quote and a newline come back as they were", () => {
    const odd = 'a\\b"c\nd';
    const report: StatusReport = {
      running: true, pid: 1, configError: null, strayModules: [], startedAt: 1, root: "/", backend: "dryrun", jobs: [], restore: null, fleet: null, modulesDown: [],
      firewall: [{ set: odd, entries: 2, full: 0.5 }],
      modules: [{
        module: "LG", pid: 2, startedAt: 1, updatedAt: 1, lines: 10, matched: 3, affairs: 2, bans: 1, dns: null, fleet: null, restarts: 0, running: true, lastExit: null,
        pending: { hosts: 0, events: 0, droppedEvents: 0, error: null }, configError: null, refused: 0,
        rules: { [odd]: { matched: 3, affairs: 2 } }, latency: new Histogram(LATENCY_BOUNDS).snapshot(), bansEnded: { expired: 0, lifted: 0 }, actions: {},
      }],
    };
    const { samples } = parseExposition(renderMetrics(report));
    expect(value(samples, "watcher_rule_matched_lines_total", { rule: odd })).toBe(3);
    expect(value(samples, "watcher_set_entries", { set: odd })).toBe(2);
    expect(renderMetrics(report)).toContain('rule="a\\\\b\\"c\\nd"');
  });
});
