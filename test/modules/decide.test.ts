import { describe, expect, test } from "bun:test";
import { type BanPolicy, banDuration, classifyHost, countAffair, forgiveAffairs, newHost } from "../../src/pipeline/decide";

const policy: BanPolicy = { maxAffairs: 3, findTime: 600, banTime: 3600, banTimeFactor: 2, maxBanTime: 86400 * 7 };

describe("counting", () => {
  test("maxAffairs within findTime bans, and the count starts over", () => {
    let h = newHost("203.0.113.5", 1000, "r");
    let d = countAffair(h, 1000, 1, "r", policy);
    d = countAffair(d.host, 1100, 1, "r", policy);
    expect(d.banSeconds).toBe(0);
    d = countAffair(d.host, 1200, 1, "r", policy);
    expect(d.banSeconds).toBe(3600);
    expect(d.reached).toBe(3);
    expect(d.host).toMatchObject({ affairs: 0, recent: [], banCount: 1, bannedUntil: 4800, lastRule: "r" });
    h = d.host;
    expect(countAffair(h, 1300, 5, "r", policy).banSeconds).toBe(0); /* banned already */
  });
  test("the window slides: only affairs within findTime of the latest count", () => {
    let d = countAffair(newHost("203.0.113.5", 0, "r"), 0, 2, "r", policy);
    d = countAffair(d.host, 601, 1, "r", policy);
    expect(d.banSeconds).toBe(0);
    expect(d.host).toMatchObject({ affairs: 1, recent: [601] });
  });
  test("pacing attempts around a window boundary does not escape: any findTime with maxAffairs bans", () => {
    /* a window fixed at the first affair (0) would start over at 610 and count only 2 by 620 */
    let h = newHost("203.0.113.5", 0, "r");
    const bans = [0, 590, 610, 620].map((t) => {
      const d = countAffair(h, t, 1, "r", policy);
      h = d.host;
      return d.banSeconds;
    });
    expect(bans).toEqual([0, 0, 0, 3600]);
  });
  test("a weight counts as that many affairs; banNow bans on the first", () => {
    expect(countAffair(newHost("a", 0, "r"), 0, 3, "r", policy).banSeconds).toBe(3600);
    expect(countAffair(newHost("a", 0, "r"), 0, 1, "r", policy, true).banSeconds).toBe(3600);
  });
  test("repeat offenders: each ban lasts banTimeFactor times longer, capped at maxBanTime", () => {
    expect([0, 1, 2, 3, 7, 8].map((n) => banDuration(policy, n))).toEqual([3600, 7200, 14400, 28800, 460800, 604800]);
    let h = newHost("a", 0, "r");
    const lengths: number[] = [];
    for (let t = 0; lengths.length < 3; t += 100000) {
      const d = countAffair(h, t, 3, "r", policy);
      lengths.push(d.banSeconds);
      h = d.host;
    }
    expect(lengths).toEqual([3600, 7200, 14400]);
  });
  test("forgiveness withdraws the latest affairs, never below zero, never from a banned host", () => {
    const h = { ...newHost("a", 0, "r"), affairs: 2, recent: [3, 7] };
    expect(forgiveAffairs(h, 1, 10)).toMatchObject({ affairs: 1, recent: [3] });
    expect(forgiveAffairs(h, 5, 10).affairs).toBe(0);
    expect(forgiveAffairs({ ...h, bannedUntil: 100 }, 2, 10).affairs).toBe(2);
  });
  test("a guilty DNS class presets the window to maxAffairs - 1; an innocent one only records the class", () => {
    const h = { ...newHost("a", 0, "r"), affairs: 1, recent: [5] };
    expect(classifyHost(h, "NXDOMAIN", policy, 9)).toMatchObject({ class: "NXDOMAIN", affairs: 2, recent: [9, 5] });
    expect(classifyHost(h, "TRUEHOST", policy, 9)).toMatchObject({ class: "TRUEHOST", affairs: 1, recent: [5] });
    expect(classifyHost({ ...h, bannedUntil: 100 }, "FAKEHOST", policy, 9).affairs).toBe(1);
  });
  test("preset affairs are told from logged ones, and the window lets them go first", () => {
    const h = classifyHost({ ...newHost("a", 0, "r"), affairs: 1, recent: [5] }, "NXDOMAIN", policy, 9);
    expect(h).toMatchObject({ recent: [9, 5], preset: 1 });
    const banned = countAffair(h, 20, 1, "r", policy);
    expect(banned).toMatchObject({ banSeconds: 3600, reached: 3, preset: 1 });
    expect(banned.host.preset).toBe(0);
    /* 600 s after the preset it is out of the window, and out of the preset count */
    expect(countAffair(h, 612, 1, "r", policy)).toMatchObject({ banSeconds: 0, reached: 1, preset: 0 });
  });
});
