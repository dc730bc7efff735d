/**
 * bench/fleet.ts's kernel probe: a thread that enters a network namespace (setns applies to the
 * calling thread only), listens there for the kernel's announcements of added set elements, and
 * posts each with the time it came (performance.timeOrigin + now: the parent's clock differs).
 * Its blocking recv leaves the parent's event loop free for the stream probe's timings.
 * The parent sends the namespace's name once; the thread then listens until terminated (each
 * recv gives up after 0.2 s, so a terminate takes effect).
 */
import { ElementAnnouncements, enterNetworkNamespace, keyText, listenAtRealTimePriority } from "./element-announcements";

declare const self: Worker;

self.onmessage = (event: MessageEvent<string>) => {
  enterNetworkNamespace(event.data);
  const announcements = new ElementAnnouncements(0.2);
  if (!listenAtRealTimePriority()) throw new Error("cannot give the kernel probe real-time priority (sched_setscheduler: root or CAP_SYS_NICE needed)");
  self.postMessage({ ready: true });
  for (;;) {
    const message = announcements.receive();
    if (message === null) continue;
    const at = performance.timeOrigin + message.at;
    for (const e of message.elements) self.postMessage({ set: e.set, address: keyText(e.key), at });
  }
};
