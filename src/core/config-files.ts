/**
 * The files a configuration is made of (watcher.toml, the lists, the rule files), read through
 * one reader. A module keeps what it read when its configuration was last good (the
 * configuration in force) and reads that back when it restarts while a file on disk is broken,
 * e.g. after a kill -9, before the operator has fixed an edit that was never reloaded.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { ConfigError } from "./errors";
import { readJson, writeJson } from "./runfiles";

export interface ConfigFiles {
  /** the file's text, or null when it does not exist; throws when it exists but cannot be read */
  read(path: string): string | null;
  /** the names in a folder, or null when it does not exist; throws when it cannot be listed */
  list(dir: string): string[] | null;
}

/** What a configuration was read from, path by path. */
interface Snapshot {
  readonly savedAt: number;
  readonly files: Record<string, string | null>;
  readonly dirs: Record<string, string[] | null>;
}

/** Reads the disk and remembers what it read, so that it can be saved once it proved good. */
export class RecordingFiles implements ConfigFiles {
  private readonly files: Record<string, string | null> = {};
  private readonly dirs: Record<string, string[] | null> = {};

  read(path: string): string | null {
    return (this.files[path] = diskFiles.read(path));
  }

  list(dir: string): string[] | null {
    return (this.dirs[dir] = diskFiles.list(dir));
  }

  /** Keep what was read as the configuration in force; false when it cannot be written (a full disk). */
  save(path: string, now: number): boolean {
    return writeJson(path, { savedAt: now, files: this.files, dirs: this.dirs } satisfies Snapshot);
  }
}

/** The disk, for commands that do not keep what they read. */
export const diskFiles: ConfigFiles = {
  read: (path) => {
    if (!existsSync(path)) return null;
    if (statSync(path).isDirectory()) throw new ConfigError(`${path}: is a folder, not a file`);
    return readFileSync(path, "utf8");
  },
  list: (dir) => (existsSync(dir) ? readdirSync(dir) : null),
};

/** The configuration in force, as a module saved it; null when there is none. */
export function savedFiles(path: string): (ConfigFiles & { readonly savedAt: number }) | null {
  const snapshot = readJson<Snapshot>(path);
  if (!snapshot?.files || !snapshot.dirs) return null;
  return {
    savedAt: snapshot.savedAt,
    read: (p) => snapshot.files[p] ?? null,
    list: (d) => snapshot.dirs[d] ?? null,
  };
}
