import { describe, expect, test } from "bun:test";
import { type BanPolicy, banDuration, countAffair, forgiveAffairs, newHost } from "../../src/modules/decide";

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
    expect(d.host).toMatchObject({ affairs: 0, banCount: 1, bannedUntil: 4800, lastRule: "r" });
    h = d.host;
    expect(countAffair(h, 1300, 5, "r", policy).banSeconds).toBe(0); /* banned already */
  });
  test("affairs older than findTime from the window's first no longer count", () => {
    let d = countAffair(newHost("203.0.113.5", 0, "r"), 0, 2, "r", policy);
    d = countAffair(d.host, 601, 1, "r", policy);
    expect(d.banSeconds).toBe(0);
    expect(d.host.affairs).toBe(1);
    expect(d.host.windowStart).toBe(601);
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
  test("forgiveness withdraws affairs, never below zero, never from a banned host", () => {
    const h = { ...newHost("a", 0, "r"), affairs: 2 };
    expect(forgiveAffairs(h, 1, 10).affairs).toBe(1);
    expect(forgiveAffairs(h, 5, 10).affairs).toBe(0);
    expect(forgiveAffairs({ ...h, bannedUntil: 100 }, 2, 10).affairs).toBe(2);
  });
});
