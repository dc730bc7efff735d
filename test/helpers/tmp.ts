/**
 * Preloaded by bun test (bunfig.toml): every temporary file of a run goes under one folder of its
 * own, removed when the run ends. The suite makes about a thousand roots (databases, FIFOs, logs)
 * a run; before this, each run left them in /tmp. Child processes (watcher, sshd, rsyslog) get the
 * folder through TMPDIR too. Readable by all: daemons that drop privileges walk into it.
 */
import { afterAll } from "bun:test";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const run = mkdtempSync(join(tmpdir(), "watcher-tests-"));
chmodSync(run, 0o755);
process.env.TMPDIR = run;
/* a preload's afterAll runs once, after the last file */
afterAll(() => rmSync(run, { recursive: true, force: true }));
