/** Which long bans expire gives the kernel's longest timeout again (src/ops/renew.ts). */
import { describe, expect, test } from "bun:test";
import { CidrSet, parseCidr } from "../../src/core/ip";
import { Lists } from "../../src/core/lists";
import { RENEW_SLACK, renewals } from "../../src/ops/renew";
import { PERMANENT_UNTIL } from "../../src/store/module-db";

const NOW = 1_800_000_000;
const MAX = 2_147_483; /* ipset's longest timeout */
const whitelist = new CidrSet();
whitelist.add(parseCidr("198.51.100.7")!);
const lists = new Lists(whitelist, new CidrSet(), new CidrSet());

describe("renewals", () => {
  test("a permanent ban the kernel holds for less than its longest timeout is given it again", () => {
    const bans = [{ address: "203.0.113.5", until: PERMANENT_UNTIL }];
    expect(renewals(bans, [{ address: "203.0.113.5", timeout: MAX - RENEW_SLACK - 1 }], lists, MAX, NOW)).toEqual([{ address: "203.0.113.5", timeout: MAX }]);
    expect(renewals(bans, [{ address: "203.0.113.5", timeout: MAX - 1 }], lists, MAX, NOW)).toEqual([]); /* still fresh */
  });
  test("a ban longer than the kernel takes ends with its own time, never beyond", () => {
    const bans = [{ address: "2001:db8::/48", until: NOW + 30 * 86400 }];
    expect(renewals(bans, [{ address: "2001:db8::/48", timeout: 100 }], lists, MAX, NOW)).toEqual([{ address: "2001:db8::/48", timeout: MAX }]);
    const late = [{ address: "2001:db8::/48", until: NOW + 86400 }];
    expect(renewals(late, [{ address: "2001:db8::/48", timeout: 100 }], lists, MAX, NOW)).toEqual([{ address: "2001:db8::/48", timeout: 86400 }]);
  });
  test("what the kernel does not hold, holds without a timeout, or the lists protect now is left alone", () => {
    const bans = [
      { address: "203.0.113.6", until: PERMANENT_UNTIL },
      { address: "203.0.113.8", until: PERMANENT_UNTIL },
      { address: "198.51.100.7", until: PERMANENT_UNTIL },
      { address: "198.51.100.0/29", until: PERMANENT_UNTIL },
    ];
    const held = [
      { address: "203.0.113.8", timeout: 0 },
      { address: "198.51.100.7", timeout: 10 },
      { address: "198.51.100.0/29", timeout: 10 },
    ];
    expect(renewals(bans, held, lists, MAX, NOW)).toEqual([]);
  });
});
