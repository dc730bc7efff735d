/**
 * Bun ends a process whose garbage collector finds a FileHandle still open. A source read to its
 * end (stdin, `inject` from a file) or stopped (a module renewed, a file source left) must close
 * its handles itself: CI once lost an `inject` of 5,000 lines to that crash.
 */
import { expect, test } from "bun:test";
import { appendFileSync, mkdtempSync, openSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { fileSource } from "../../src/pipeline/read";
import { waitFor } from "../helpers/wait";

const READ = join(import.meta.dir, "../../src/pipeline/read.ts");

test("stdin read to its end and a file source stopped leave no handle for the collector: the process lives on", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sources-"));
  const log = join(dir, "auth.log");
  writeFileSync(log, "Nov 25 11:00:00 srv sshd[1]: Failed password for root from 198.51.100.7 port 40000 ssh2\n".repeat(1000));
  /* a position at the file's start, so the file source hands out a chunk at once */
  const position = join(dir, "auth.position");
  writeFileSync(position, JSON.stringify({ ino: statSync(log).ino, position: 0 }));
  const script = join(dir, "read.ts");
  writeFileSync(
    script,
    `import { fileSource, stdinSource } from ${JSON.stringify(READ)};
/* in a function of their own, so nothing but a leaked handle outlives the reading */
async function read(): Promise<number> {
  let bytes = 0;
  for await (const chunk of stdinSource().chunks()) bytes += chunk.length;
  const file = fileSource(${JSON.stringify(log)}, null, ${JSON.stringify(position)}, 10).chunks();
  bytes += (await file.next()).value!.length;
  await file.return(undefined);
  return bytes;
}
const bytes = await read();
/* garbage to collect, and time for the collector's finalizers to run */
for (let i = 0; i < 20; i++) {
  Array.from({ length: 100_000 }, (_, j) => ({ j }));
  Bun.gc(true);
  await Bun.sleep(10);
}
console.log(bytes);
`,
  );
  const p = Bun.spawn([process.execPath, script], { stdin: openSync(log, "r"), stdout: "pipe", stderr: "pipe" });
  const [code, out, err] = await Promise.all([p.exited, new Response(p.stdout).text(), new Response(p.stderr).text()]);
  expect({ code, err }).toEqual({ code: 0, err: "" });
  expect(Number(out)).toBeGreaterThan(statSync(log).size);
});

test("a file source hands out whole lines and remembers a position between lines: a line still being written is read again, whole, by the next process", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sources-"));
  const log = join(dir, "auth.log");
  const position = join(dir, "auth.position");
  writeFileSync(log, "first line\nsecond li");
  writeFileSync(position, JSON.stringify({ ino: statSync(log).ino, position: 0 }));
  const text = (chunk: Uint8Array | undefined) => new TextDecoder().decode(chunk);
  const running = fileSource(log, null, position, 10).chunks()[Symbol.asyncIterator]();
  expect(text((await running.next()).value)).toBe("first line\n");
  /* asked for the next chunk: the first is processed, and its end remembered; the half line waits */
  const next = running.next();
  await waitFor("the position after the first line", () => JSON.parse(readFileSync(position, "utf8")).position === "first line\n".length);
  /* a module started again now reads on from there */
  const restarted = fileSource(log, null, position, 10).chunks()[Symbol.asyncIterator]();
  const first = restarted.next();
  appendFileSync(log, "ne\n");
  expect(text((await next).value)).toBe("second line\n");
  expect(text((await first).value)).toBe("second line\n");
  await running.return?.(undefined);
  await restarted.return?.(undefined);
});
