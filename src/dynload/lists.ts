/**
 * The blocklists watcher knows: the built-in ones and those of the config, merged. Spamhaus
 * asks for at most one download an hour, which no setting or --force can undercut.
 */
import type { Config } from "../core/config";
import { ConfigError } from "../core/errors";
import { checkSetName } from "../core/firewall/types";
import { FORMATS } from "./formats";

export interface DynList {
  readonly name: string;
  readonly enabled: boolean;
  readonly urls: readonly string[];
  readonly format: string;
  /** seconds between downloads at least */
  readonly interval: number;
  /** the publisher's own minimum, which --force does not lift */
  readonly hardInterval: number;
  readonly maxEntries: number;
  readonly builtin: boolean;
}

const BUILTIN: Record<string, Omit<DynList, "name" | "builtin">> = {
  spamhaus: {
    enabled: false,
    urls: ["https://www.spamhaus.org/drop/drop_v4.json", "https://www.spamhaus.org/drop/drop_v6.json"],
    format: "spamhaus-json",
    interval: 3600,
    hardInterval: 3600,
    maxEntries: 100000,
  },
  /* NiX Spam stopped publishing entries in January 2025: kept for its format, off */
  nixspam: {
    enabled: false,
    urls: ["https://www.nixspam.net/download/nixspam-ip.dump.gz"],
    format: "nixspam",
    interval: 3600,
    hardInterval: 900,
    maxEntries: 1000000,
  },
};

export function dynloadSetName(list: string): string {
  return checkSetName(`watcher_dl_${list}`);
}

export function dynLists(config: Config): DynList[] {
  const names = new Set([...Object.keys(BUILTIN), ...Object.keys(config.dynload.lists)]);
  return [...names].sort().map((name) => {
    const own = config.dynload.lists[name] ?? {};
    const base = BUILTIN[name];
    const urls = own.urls ?? base?.urls;
    const format = own.format ?? base?.format;
    if (!urls) throw new ConfigError(`etc/watcher.toml: dynload.lists.${name}.urls: a list of your own needs its URLs or paths`);
    if (!format) throw new ConfigError(`etc/watcher.toml: dynload.lists.${name}.format: a list of your own needs its format`);
    if (!(FORMATS as readonly string[]).includes(format) && !format.includes("<HOST>")) {
      throw new ConfigError(`etc/watcher.toml: dynload.lists.${name}.format: expected one of ${FORMATS.join(", ")}, or a line template with <HOST>`);
    }
    const hardInterval = base?.hardInterval ?? 0;
    return {
      name,
      enabled: own.enabled ?? base?.enabled ?? true,
      urls,
      format,
      interval: Math.max(own.interval ?? base?.interval ?? 3600, hardInterval),
      hardInterval,
      maxEntries: own.maxEntries ?? base?.maxEntries ?? 1000000,
      builtin: !!base,
    };
  });
}
