/**
 * Manual decisions go to watcher.log, the master's log, with who made them, so that the log
 * tells every ban and unban an operator made beside the ones watcher made. A log that cannot
 * be written is said on stderr: the decision stands.
 */
import { appendFileSync, mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { masterLogFile, type Paths } from "../core/layout";

/** The account name of `uid` in /etc/passwd, or null (the environment's USER could say anything). */
function accountName(uid: number): string | null {
  try {
    for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
      const fields = line.split(":");
      if (fields[2] === String(uid)) return fields[0] || null;
    }
  } catch {
    /* no passwd file: the uid alone */
  }
  return null;
}

/** Who runs this process: `uid 0 (root)`, and for whom sudo ran it (sudo's own variables). */
export function whoRuns(env: NodeJS.ProcessEnv = process.env): string {
  const uid = process.getuid?.() ?? -1;
  const name = accountName(uid);
  const sudo = env.SUDO_UID ? ` via sudo from uid ${env.SUDO_UID}${env.SUDO_USER ? ` (${env.SUDO_USER})` : ""}` : "";
  return `uid ${uid}${name ? ` (${name})` : ""}${sudo}`;
}

/** One line, as the master writes its own: `<ISO time> watcher: manual <message>; by <who>`. */
export function logManualDecision(paths: Paths, message: string, who = whoRuns()): void {
  const file = masterLogFile(paths);
  try {
    mkdirSync(dirname(file), { recursive: true });
    appendFileSync(file, `${new Date().toISOString()} watcher: manual ${message}; by ${who}\n`);
  } catch (e) {
    process.stderr.write(`watcher: could not write ${file}: ${(e as Error).message}\n`);
  }
}
