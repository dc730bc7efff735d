/**
 * watcher.toml: every key has a default, so the file is optional. zod validates it and an
 * error names the key and what was expected. The root is self-aware: `--root`, else
 * WATCHER_ROOT, else the folder above the one that holds the executable (dist/watcher) or
 * the source (src/); every path below is relative to it unless absolute.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import cron from "node-cron";
import { z } from "zod";
import { type ConfigFiles, diskFiles } from "./config-files";
import { isNameServer } from "./dns";
import { formatDuration, parseDuration } from "./duration";
import { ConfigError } from "./errors";
import * as layout from "./layout";
import type { Paths } from "./layout";
import { parseToml } from "./toml";

/** The modules watcher ships; an operator adds modules of their own as `[modules.XX]` (moduleNames). */
export const BUILTIN_MODULES = ["LG", "MX", "MB", "WB", "FT", "VP", "NS", "DB", "AD"] as const;
/** A module's name: also its FIFO's (WatchXX), database's (XX.db), set's (watcher_XX) and rule folder's. */
export type ModuleName = string;
/** What a module's name may be: 2 to 8 capital letters and digits, a letter first (AP, APP1). */
export const MODULE_NAME = /^[A-Z][A-Z0-9]{1,7}$/;

const Duration = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const seconds = parseDuration(value);
  if (seconds === null) {
    ctx.addIssue({ code: "custom", message: `expected a duration such as 600, "90s", "10m", "1h", "7d", got ${JSON.stringify(value)}` });
    return z.NEVER;
  }
  return seconds;
});

/**
 * A duration of at least one second: 0 would quietly switch off what the key controls
 * (banTime = 0 bans nobody, findTime = 0 counts nothing).
 */
const PositiveDuration = (zero: string) =>
  Duration.refine((seconds) => seconds >= 1, `expected a duration of at least 1 second, such as "10m": ${zero}`);

/** every line of the source, whole, is this program's (else the format is found from the lines, src/pipeline/formats.ts) */
const RawProgram = z.string().regex(/^[A-Za-z0-9_./-]{1,64}$/, "expected a program name such as \"nginx-access\"").optional();

const SourceSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("fifo") }).strict(),
  z.object({ type: z.literal("file"), path: z.string().min(1), program: RawProgram }).strict(),
  z.object({ type: z.literal("stdin"), program: RawProgram }).strict(),
  z
    .object({
      type: z.literal("journal"),
      /** journalctl matches (FIELD=value); default: SYSLOG_IDENTIFIER= each program of the module's rules */
      matches: z.array(z.string().regex(/^[A-Z0-9_]+=.+$/, 'expected a journal match such as "_SYSTEMD_UNIT=ssh.service"')).optional(),
    })
    .strict(),
]);
export type SourceConfig = z.infer<typeof SourceSchema>;

/** One module's settings; LG runs by default, the others where the server has their services. */
const moduleSchema = (enabledByDefault: boolean, dnsByDefault = true) =>
  z
  .object({
    enabled: z.boolean().default(enabledByDefault),
    /** what the module watches, for reports and status (default: the built-in module's own, or "module XX") */
    title: z.string().min(1).max(80).optional(),
    /** affairs within findTime that trigger a ban */
    maxAffairs: z.number().int().min(1).max(1000).default(5),
    findTime: PositiveDuration("with 0 no two affairs would ever count together").default(3600),
    banTime: PositiveDuration("a ban of 0 seconds never reaches the firewall").default(3600),
    /** each new ban of the same address lasts this many times longer than the one before */
    banTimeFactor: z.number().min(1).max(100).default(2),
    maxBanTime: Duration.default(7 * 86400),
    /** normal: rules that only clear attacks; aggressive: also scanners, probes, timeouts */
    mode: z.enum(["normal", "aggressive"]).default("normal"),
    /** a successful login in a session withdraws the affairs that session counted */
    forgiveOnSuccess: z.boolean().default(false),
    /** classify new addresses by forward-confirmed reverse DNS; NXDOMAIN and FAKEHOST are preset */
    dns: z.boolean().default(dnsByDefault),
    /** domains whose forward-confirmed hosts are never counted (e.g. "googlebot.com", "search.msn.com" for WB) */
    dnsAllow: z.array(z.string().regex(/^[a-z0-9-]+(\.[a-z0-9-]+)+$/, "expected a domain such as \"googlebot.com\"")).default([]),
    /**
     * Affairs also count for the network of this many leading bits of an IPv6 address (0: off):
     * an attacker who rotates the addresses of one /64 is banned as that /64 (pipeline/prefixes.ts)
     */
    ipv6Prefix: z
      .number()
      .int()
      .refine((p) => p === 0 || (p >= 32 && p <= 120), "expected 0 (off) or a prefix length from 32 to 120, such as 64 (one site's LAN)")
      .default(64),
    /** the same for IPv4 (24 for a /24); 0, the default: off, as a /24 is often shared by many customers */
    ipv4Prefix: z
      .number()
      .int()
      .refine((p) => p === 0 || (p >= 16 && p <= 31), "expected 0 (off) or a prefix length from 16 to 31, such as 24")
      .default(0),
    /** affairs within findTime from at least two addresses of one prefix that ban the prefix; default 4 × maxAffairs */
    prefixMaxAffairs: z.number().int().min(2).max(100000).optional(),
    /** addresses of one prefix banned within findTime that ban the prefix */
    prefixMaxBans: z.number().int().min(2).max(1000).default(3),
    /** `expire` removes hosts whose last affair is older (their events stay, for eventRetention) */
    expireAfter: Duration.default(30 * 86400),
    /**
     * `expire` deletes events (affairs, bans, unbans) older than this; 0 keeps them for ever. Three
     * months: the longest window the README's reports read is 30 days (`report --since 30d`), `why`
     * tells the story of every host expireAfter (30 days) keeps, and a month's `stat` CSV (written on
     * the 1st for the month before) can still be written again a month or two later. The bans and
     * unbans of a ban in force stay however old (`bans`, `why` show its reason). Events take about
     * 91 bytes each: without a bound a flood fills the disk. Never shorter than expireAfter (a longer
     * expireAfter wins): the events of a host still tracked stay, for `why` and `report --vhost`.
     */
    eventRetention: Duration.default(90 * 86400),
    sources: z.array(SourceSchema).min(1).default([{ type: "fifo" }]),
    /** with [fleet]: this module's bans go to the other nodes */
    fleetPublish: z.boolean().default(true),
    /** with [fleet]: bans that this module made on other nodes are dropped here too */
    fleetAccept: z.boolean().default(true),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.maxBanTime < m.banTime) {
      ctx.addIssue({
        code: "custom",
        path: ["maxBanTime"],
        message: `${formatDuration(m.maxBanTime)} is shorter than banTime (${formatDuration(m.banTime)}): every ban would be cut to maxBanTime; raise maxBanTime (default 7d) or lower banTime`,
      });
    }
  });

/** node names and rule names travel in fleet decisions: one line, no separators */
export const FLEET_NAME = /^[A-Za-z0-9._-]{1,64}$/;

function isFleetUrl(url: string): boolean {
  if (url.startsWith("/")) return true;
  try {
    return ["redis:", "rediss:", "valkey:", "valkeys:", "redis+unix:", "redis+tls:", "redis+tls+unix:"].includes(new URL(url).protocol);
  } catch {
    return false;
  }
}

const FleetUrl = z.string().refine(isFleetUrl, 'expected a Redis URL such as "redis://watcher:secret@redis.internal:6379", "rediss://..." or a socket path "/run/redis/redis.sock"');

/** The host name as a node name: the first label, in the alphabet decisions allow. */
function defaultNodeName(): string {
  return hostname().split(".")[0]!.replace(/[^A-Za-z0-9._-]/g, "-").slice(0, 64) || "node";
}

const FleetSchema = z
  .object({
    /** redis://user:password@host:port, rediss:// (TLS), or the path of a Unix socket; several:
        the primary and its replicas, of which the one that answers as the primary is used */
    url: z
      .union([FleetUrl, z.array(FleetUrl).min(1)], {
        error: (issue) => (typeof issue.input === "string" ? undefined : 'expected a Redis URL such as "redis://watcher:secret@redis.internal:6379", or a list of them'),
      })
      .transform((u) => (typeof u === "string" ? [u] : u)),
    node: z.string().regex(FLEET_NAME, "expected a node name of letters, digits, '.', '_' or '-'").default(defaultNodeName),
    /** the shared secret every decision is signed with */
    keyFile: z.string().default("etc/fleet.key"),
    /** keys start with this; the braces make it a Redis Cluster hash tag (one slot) */
    prefix: z.string().regex(/^[A-Za-z0-9{}:_-]{1,40}$/, 'expected a key prefix such as "{watcher}"').default("{watcher}"),
    /** count each address's affairs across the fleet too (within each module's findTime) */
    shareAffairs: z.boolean().default(false),
    /** the fleet-wide affairs that ban an address on every node */
    fleetMaxAffairs: z.number().int().min(1).max(100000).default(8),
    /** decisions kept in the stream (approximately); a node away longer catches up by a full sync */
    streamLength: z.number().int().min(100).default(100000),
    /** decisions waiting for Redis, per module; beyond this the oldest are dropped */
    outboxSize: z.number().int().min(100).default(100000),
    connectTimeout: Duration.default(5),
    /** PEM file of the CA that signed Redis's certificate (rediss://); default: the system's CAs */
    tlsCa: z.string().min(1).optional(),
  })
  .strict();
export type ModuleConfig = z.infer<ReturnType<typeof moduleSchema>>;

/** `host:port` or `[v6]:port` (where the master serves /metrics), or null when it is neither. */
export function parseListen(s: string): { hostname: string; port: number } | null {
  const m = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(s) ?? /^([^:[\]\s]+):(\d{1,5})$/.exec(s);
  const port = Number(m?.[2]);
  return m && port >= 1 && port <= 65535 ? { hostname: m[1]!, port } : null;
}

/** Prometheus exposition by the master (ops/metrics.ts); off unless `listen` is set. */
const MetricsSchema = z
  .object({
    /** e.g. "127.0.0.1:9469"; the endpoint has no authentication: keep it on loopback or a private network */
    listen: z.string().refine((s) => parseListen(s) !== null, 'expected an address and port such as "127.0.0.1:9469" or "[::1]:9469"'),
  })
  .strict();

/** A program of the operator's run on bans and unbans (ops/actions.ts). */
const ActionSchema = z
  .object({
    /** a name for the log */
    name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'expected a name such as "mail" (letters, digits, ".", "_", "-")'),
    /** the program and its arguments, run without a shell; the program by its absolute path */
    command: z
      .array(z.string())
      .min(1, 'expected the program and its arguments, such as ["/usr/local/bin/ban-mail", "root@example.org"]')
      .refine((c) => c[0]!.startsWith("/"), "expected the program as an absolute path, such as \"/usr/local/bin/ban-mail\" (no shell, no PATH search)"),
    /** which decisions run it */
    on: z.array(z.enum(["ban", "unban"])).min(1).default(["ban"]),
    /** modules whose decisions run it; default: every module */
    modules: z.array(z.string().regex(MODULE_NAME, "expected module names such as \"LG\" or \"FT\"")).min(1).optional(),
    /** a run that takes longer is killed (and logged) */
    timeout: PositiveDuration("a run needs time to run").default(30),
    /** runs of this action at the same time, per module */
    concurrency: z.number().int().min(1).max(64).default(2),
    /** >1: decisions that wait are handed over together, as a JSON list of at most this many */
    batch: z.number().int().min(1).max(10000).default(1),
    /** decisions waiting for a run; beyond this the oldest are dropped (and counted) */
    queueSize: z.number().int().min(1).max(1000000).default(10000),
  })
  .strict();
export type ActionConfig = z.infer<typeof ActionSchema>;

export const ConfigSchema = z
  .object({
    /** where the module FIFOs live (WatchLG, ...) */
    fifoBase: z.string().default("var/fifo"),
    dbDir: z.string().default("var/db"),
    logDir: z.string().default("var/log"),
    /** pid file and status files of the master and its modules */
    runDir: z.string().default("var/run"),
    /** FIFO permissions: writing to a FIFO is a way to ban addresses, so only root and this group may */
    fifoMode: z
      .string()
      .regex(/^0?[0-7]{3}$/, "expected an octal mode such as \"0620\"")
      .superRefine((mode, ctx) => {
        if ((Number.parseInt(mode, 8) & 0o007) !== 0 && /^0?[0-7]{3}$/.test(mode)) {
          ctx.addIssue({
            code: "custom",
            message: `${JSON.stringify(mode)} gives other users access to the FIFOs: whoever writes to one can ban any address, whoever reads one takes lines away from watcher; expected a mode that gives others nothing, such as "0620" (root and fifoGroup write)`,
          });
        }
      })
      .default("0620"),
    fifoGroup: z.string().min(1).default("root"),
    whitelist: z.string().default("etc/whitelist"),
    blacklist: z.string().default("etc/blacklist"),
    /** auto: nftables where libnftables loads, else ipset + iptables, as root; dry-run otherwise */
    firewall: z.enum(["auto", "nftables", "ipset", "dryrun"]).default("auto"),
    /** also drop banned addresses in the forward hook (routers, hosts with containers) */
    firewallForward: z.boolean().default(false),
    /** on stop, leave the sets in the kernel (their timeouts still lapse) or remove them */
    keepFirewallOnStop: z.boolean().default(true),
    /** the resolver behind host classes (modules with dns = true) */
    dns: z
      .object({
        /** `address` or `address:port` ([v6]:port); empty: the system's (/etc/resolv.conf) */
        servers: z.array(z.string().refine(isNameServer, 'expected an address such as "192.0.2.53", "192.0.2.53:5353" or "[2001:db8::53]:5353"')).default([]),
        /** seconds per try */
        timeout: z.number().positive().max(30).default(2),
        retries: z.number().int().min(0).max(5).default(1),
        concurrency: z.number().int().min(1).max(1000).default(32),
        /** lookups waiting beyond this are dropped: those hosts stay unclassified for now */
        queueSize: z.number().int().min(1).default(10000),
        cacheSize: z.number().int().min(1).default(100000),
        positiveTtl: Duration.default(86400),
        negativeTtl: Duration.default(6 * 3600),
      })
      .strict()
      .prefault({}),
    /** blocklists: built-in sources (spamhaus, nixspam) and your own, each into watcher_dl_<name> */
    dynload: z
      .object({
        /** a list that lost more than this share of its entries since the last one is suspicious: the old stays */
        maxShrink: z.number().min(0).max(1).default(0.5),
        /** seconds to wait for one download */
        timeout: z.number().positive().max(600).default(30),
        lists: z
          .record(
            z.string().regex(/^[a-z0-9]{1,12}$/, "a list name is 1 to 12 lower-case letters and digits"),
            z
              .object({
                /** built-in lists (spamhaus, nixspam) are off until enabled; your own are on */
                enabled: z.boolean().optional(),
                /** http(s) URLs or local paths; the entries of all of them make the list (built-ins have theirs) */
                urls: z.array(z.string().min(1)).min(1).optional(),
                /** spamhaus-json, spamhaus-txt, nixspam, ip-lines, cidr-lines, or a line template with <HOST> */
                format: z.string().min(1).optional(),
                /** at most one download per interval */
                interval: Duration.optional(),
                maxEntries: z.number().int().min(1).optional(),
              })
              .strict(),
          )
          .default({}),
      })
      .strict()
      .prefault({}),
    /** cron expressions (node-cron, with optional seconds) of the jobs start runs */
    schedule: z
      .object({
        expire: z
          .string()
          .refine((e) => cron.validate(e), "expected a cron expression such as \"30 3 * * *\"")
          .default("17 * * * *"),
        dynload: z
          .string()
          .refine((e) => cron.validate(e), "expected a cron expression such as \"23 * * * *\"")
          .default("23 * * * *"),
      })
      .strict()
      .prefault({}),
    modules: z
      .object({
        LG: moduleSchema(true).prefault({}),
        MX: moduleSchema(false).prefault({}),
        MB: moduleSchema(false).prefault({}),
        /* crawlers and CDNs are legion on the web: no presumption from DNS unless asked */
        WB: moduleSchema(false, false).prefault({}),
        FT: moduleSchema(false).prefault({}),
        VP: moduleSchema(false).prefault({}),
        NS: moduleSchema(false).prefault({}),
        DB: moduleSchema(false).prefault({}),
        AD: moduleSchema(false).prefault({}),
      } satisfies Record<(typeof BUILTIN_MODULES)[number], unknown>)
      /* a module of the operator's own: on once defined; its rules are rules/<XX>/*.rule */
      .catchall(moduleSchema(true))
      .superRefine((modules, ctx) => {
        for (const name of Object.keys(modules)) {
          if (MODULE_NAME.test(name)) continue;
          ctx.addIssue({
            code: "custom",
            path: [name],
            message: `a module's name is 2 to 8 capital letters and digits, a letter first (built in: ${BUILTIN_MODULES.join(", ")}; your own such as AP)`,
          });
        }
      })
      .prefault({}),
    /** fleet mode: share bans and affair counts with other nodes through Redis; off unless set */
    fleet: FleetSchema.optional(),
    /** `[metrics] listen = "127.0.0.1:9469"`: the master serves Prometheus metrics there; off unless set */
    metrics: MetricsSchema.optional(),
    /** `[[actions]]`: programs run on bans and unbans */
    actions: z.array(ActionSchema).default([]),
  })
  .strict()
  .superRefine((c, ctx) => {
    const seen = new Set<string>();
    for (const [i, a] of c.actions.entries()) {
      if (seen.has(a.name)) ctx.addIssue({ code: "custom", path: ["actions", i, "name"], message: `a second action named ${JSON.stringify(a.name)}: each needs its own name` });
      seen.add(a.name);
      for (const [j, m] of (a.modules ?? []).entries()) {
        if (!(m in c.modules) && !(BUILTIN_MODULES as readonly string[]).includes(m)) ctx.addIssue({ code: "custom", path: ["actions", i, "modules", j], message: `no module ${m} is defined (built in: ${BUILTIN_MODULES.join(", ")}, or a [modules.${m}] section of your own)` });
      }
    }
  });
export type FleetConfig = z.infer<typeof FleetSchema>;
export type Config = z.infer<typeof ConfigSchema>;

export type { Paths } from "./layout";

/** `--root`, else WATCHER_ROOT, else the folder above the executable's (or src/'s) folder. */
export function discoverRoot(explicit?: string): string {
  if (explicit) return resolve(explicit);
  if (process.env.WATCHER_ROOT) return resolve(process.env.WATCHER_ROOT);
  /* compiled, the code lives in /$bunfs/ and the executable (dist/watcher) is process.execPath */
  if (import.meta.dir.startsWith("/$bunfs")) return resolve(dirname(process.execPath), "..");
  return resolve(import.meta.dir, "..", ".."); /* src/core/ → the checkout */
}

/** How to run this watcher again (the master forks its modules with it). */
export function selfCommand(): string[] {
  if (import.meta.dir.startsWith("/$bunfs")) return [process.execPath];
  return [process.execPath, resolve(import.meta.dir, "..", "cli.ts")];
}

/**
 * The gid of fifoGroup, a group name or a numeric gid, as /etc/group has it; a ConfigError when
 * this machine has no such group. `groupFile` is a parameter for tests.
 */
export function fifoGroupId(group: string, groupFile = "/etc/group"): number {
  let text: string;
  try {
    text = readFileSync(groupFile, "utf8");
  } catch (e) {
    throw new ConfigError(`fifoGroup: cannot read ${groupFile} to find group ${JSON.stringify(group)}: ${(e as Error).message}`);
  }
  const numeric = /^[0-9]+$/.test(group);
  for (const line of text.split("\n")) {
    const [name, , gid] = line.split(":");
    if (gid === undefined || !/^[0-9]+$/.test(gid)) continue;
    if (numeric ? Number(gid) === Number(group) : name === group) return Number(gid);
  }
  throw new ConfigError(
    `fifoGroup: there is no group ${numeric ? `with gid ${group}` : JSON.stringify(group)} in ${groupFile}: set fifoGroup in etc/watcher.toml to the group your logger writes as (e.g. "adm" or "syslog"), or create it (groupadd)`,
  );
}

/**
 * Throws a ConfigError when fifoGroup names no group on this machine. The master calls it with
 * its other checks, before anything is touched; loadConfig does not, so that read-only commands
 * work whatever the group.
 */
export function checkFifoGroup(group: string, groupFile = "/etc/group"): void {
  fifoGroupId(group, groupFile);
}

export function describeConfigIssues(file: string, error: z.ZodError): string {
  return error.issues
    .map((i) => {
      const key = i.path.length ? i.path.join(".") : "(top level)";
      const message = i.code === "unrecognized_keys" ? `unknown key(s) ${i.keys.map((k) => JSON.stringify(k)).join(", ")}` : i.message;
      return `${file}: ${key}: ${message}`;
    })
    .join("\n");
}

export function parseConfig(file: string, text: string): Config {
  const data = parseToml(file, text);
  const parsed = ConfigSchema.safeParse(data);
  if (!parsed.success) throw new ConfigError(describeConfigIssues(file, parsed.error));
  return parsed.data;
}

export interface LoadedConfig {
  readonly config: Config;
  readonly paths: Paths;
}

/** Every module the configuration knows: the built-in ones, then the operator's own by name. */
export function moduleNames(config: Config): ModuleName[] {
  const own = Object.keys(config.modules).filter((m) => !(BUILTIN_MODULES as readonly string[]).includes(m));
  return [...BUILTIN_MODULES, ...own.sort()];
}

/** The modules this configuration enables, in moduleNames order. */
export function enabledModules(config: Config): ModuleName[] {
  return moduleNames(config).filter((m) => moduleConfig(config, m).enabled);
}

/** A module's settings; a ConfigError naming the known modules when there is no such module. */
export function moduleConfig(config: Config, module: ModuleName): ModuleConfig {
  const settings = config.modules[module];
  if (!settings) throw new ConfigError(`unknown module ${JSON.stringify(module)}: expected one of ${moduleNames(config).join(", ")} (a module of your own is a [modules.${MODULE_NAME.test(module) ? module : "XX"}] section in etc/watcher.toml)`);
  return settings;
}

/**
 * A root is a folder with etc/ in it: a mistyped --root must neither start on the real firewall
 * nor report zeros as if all were quiet.
 */
export function requireRoot(root: string): void {
  const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();
  if (!isDir(layout.etcDir(root))) {
    throw new ConfigError(
      `${root} is not a watcher root: ${isDir(root) ? "it has no etc/ folder" : "no such folder"}. ` +
        `Make one with "mkdir -p ${layout.etcDir(root)}" (every setting has a default; etc/watcher.toml is optional), or install with scripts/install.sh --prefix ${root}`,
    );
  }
}

/** `files`: where the text comes from (the disk, or a module's configuration in force). */
export function loadConfig(rootOption?: string, files: ConfigFiles = diskFiles): LoadedConfig {
  const root = discoverRoot(rootOption);
  const configFile = layout.configFile(root);
  const parsed = parseConfig(configFile, files.read(configFile) ?? "");
  const at = (p: string) => (isAbsolute(p) ? p : join(root, p));
  /* the fleet's CA file travels with its settings, so it is resolved here, like every path */
  const fleet = parsed.fleet?.tlsCa ? { ...parsed.fleet, tlsCa: at(parsed.fleet.tlsCa) } : parsed.fleet;
  const config = { ...parsed, fleet };
  return {
    config,
    paths: {
      root,
      configFile,
      fifoBase: at(config.fifoBase),
      dbDir: at(config.dbDir),
      logDir: at(config.logDir),
      runDir: at(config.runDir),
      whitelist: at(config.whitelist),
      blacklist: at(config.blacklist),
      rulesDir: layout.rulesDir(root),
      fleetKey: at(config.fleet?.keyFile ?? "etc/fleet.key"),
    },
  };
}
