/** Fresh install roots for tests, and the binary they run. */
import { afterAll } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The dry-run firewall and no DNS: tests run as root in CI and must touch neither the host's firewall nor the network. */
export const SAFE_CONFIG = 'firewall = "dryrun"\n[modules.LG]\ndns = false\n';

/** A root under the temp folder with these files (paths relative to it); SAFE_CONFIG unless etc/watcher.toml is given. */
export function makeRoot(name: string, files: Record<string, string> = {}): string {
  const root = mkdtempSync(join(tmpdir(), `watcher-${name}-`));
  for (const [path, text] of Object.entries({ "etc/watcher.toml": SAFE_CONFIG, ...files })) {
    mkdirSync(join(root, path, ".."), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

/** The compiled binary the integration tests run (the test script builds it first). */
export const WATCHER = join(import.meta.dir, "..", "..", "dist", "watcher");

/** `watcher --root ROOT ARGS...`, run to completion. */
export function watcher(root: string, ...args: string[]) {
  const p = Bun.spawnSync([WATCHER, "--root", root, ...args], { stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

/**
 * Roots a test file makes (each with a watcher that may be running) and anything else to end
 * (network namespaces, servers): after the file's last test every watcher is stopped, every
 * root removed and every `cleanup()` called.
 */
export function cleanedUpAfterAll(): { roots: string[]; others: { cleanup(): unknown }[] } {
  const made = { roots: [] as string[], others: [] as { cleanup(): unknown }[] };
  afterAll(async () => {
    for (const root of made.roots) {
      watcher(root, "stop");
      rmSync(root, { recursive: true, force: true });
    }
    for (const other of made.others) await other.cleanup();
  });
  return made;
}
