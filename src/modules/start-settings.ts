/**
 * What a module reads only when it starts, so that a SIGHUP cannot change it in place: its
 * sources (and, for a journal source without `matches`, the programs of its rules, which name
 * what it reads), its DNS client (`dns`, `dnsAllow` and the `[dns]` resolver settings, when dns
 * is on) and its `[[actions]]`. A reload that changes one of them has the module started again
 * (loop.ts). The firewall, the fleet and the FIFOs' mode and group are the master's: they take
 * a `watcher restart`, which the master's log names (master.ts).
 */
import type { Config, ModuleConfig, ModuleName } from "../core/config";

/** Each setting read at start, by the name the log gives it, as comparable text. */
export type StartSettings = Readonly<Record<string, string>>;

/** `ownSources`: the module reads its configured sources (not --stdin or --file). */
export function startSettings(module: ModuleName, config: Config, settings: ModuleConfig, programs: readonly string[], ownSources: boolean): StartSettings {
  const journalPrograms = settings.sources.some((s) => s.type === "journal" && !s.matches);
  return {
    ...(ownSources ? { sources: JSON.stringify([settings.sources, journalPrograms ? programs : null]) } : {}),
    dns: JSON.stringify(settings.dns ? [settings.dnsAllow, config.dns] : false),
    "[[actions]]": JSON.stringify(config.actions.filter((a) => !a.modules || a.modules.includes(module))),
  };
}

/** The names of the settings read at start that `next` changes. */
export function changedAtStart(running: StartSettings, next: StartSettings): string[] {
  return Object.keys(running).filter((name) => running[name] !== next[name]);
}
