#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""W2, the national load of SPEC section 6: one JSON Lines file of N events
from P parties (18-character unified social credit codes), interleaved in
time order so that neighbouring lines almost always belong to different
parties, as a provincial migration file is.  Category 3 stock flows only:
each party produces lots at its plant site, moves part of them to its
store, consumes from both sites, and counts every holding at month end
(a stocktake with the exact book count).  The regulator's `party` lines
come first.  Deterministic for a seed.

    w2gen.py N [--parties P] [--seed S] > w2.jsonl
"""
import argparse
import heapq
import random
import sys

SUBSTANCES = [("toluene", "L"), ("acetone", "L"), ("methyl-ethyl-ketone", "L"),
              ("sulfuric-acid", "kg"), ("hydrochloric-acid", "kg"),
              ("potassium-permanganate", "kg")]
ALNUM = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def uscc(rng, i):
    # 18 characters: registration authority and type, region, the
    # organisation code and a check character (a fixed stand-in here)
    region = "%06d" % (110000 + (i * 37) % 540000)
    org = "".join(rng.choice(ALNUM) for _ in range(8)) + ALNUM[i % 31]
    return "91" + region + org + ALNUM[(i * 7) % 31]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("n", type=int)
    ap.add_argument("--parties", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    out = sys.stdout
    parties = [uscc(rng, i) for i in range(a.parties)]
    assert len(set(parties)) == len(parties)
    for i, p in enumerate(parties):
        out.write('{"type":"party","id":"reg-%d","party":"REGULATOR",'
                  '"at":"2025-12-01T09:00:00+08:00","subject":"%s",'
                  '"name":"Enterprise %d","kind":"user","region":"CN-%s",'
                  '"licenses":["CN-PC-3"]}\n' % (i, p, i, p[2:4]))
    n = max(0, a.n - a.parties)
    per = max(1, n // a.parties)
    # each party's own stream of events, then merged by time
    state = []
    for i, p in enumerate(parties):
        sub, unit = SUBSTANCES[i % len(SUBSTANCES)]
        start = 1767196800 + rng.randrange(0, 86400)  # 2026-01-01 +08:00
        state.append({"p": p, "sub": sub, "unit": unit, "t": start,
                      "left": per + (1 if i < n - per * a.parties else 0),
                      "k": 0, "lots": [], "book": {}, "month": 1})
    gap = max(2, 365 * 86400 // per)
    heap = [(s["t"], i) for i, s in enumerate(state)]
    heapq.heapify(heap)
    written = a.parties
    while heap and written < a.n:
        t, i = heapq.heappop(heap)
        s = state[i]
        if s["left"] <= 0:
            continue
        s["k"] += 1
        k = s["k"]
        when = t
        month = 1 + (when - 1767196800) // (30 * 86400)
        at = ("%s" % _iso(when))
        line = None
        if month != s["month"] and s["book"]:
            # month end: count one holding exactly
            (lot, site), q = next(iter(sorted(s["book"].items())))
            line = ('{"type":"stocktake","id":"e%d","party":"%s","at":"%s",'
                    '"substance":"%s","lot":"%s","site":"%s","counted":"%d",'
                    '"unit":"%s"}' % (k, s["p"], at, s["sub"], lot, site, q,
                                      s["unit"]))
            s["month"] = month
        elif not s["lots"] or rng.random() < 0.2:
            lot = "L%s-%d" % (s["p"][-6:], len(s["lots"]) + 1)
            q = rng.randrange(500, 5000)
            s["lots"].append(lot)
            s["book"][(lot, "plant")] = s["book"].get((lot, "plant"), 0) + q
            line = ('{"type":"produce","id":"e%d","party":"%s","at":"%s",'
                    '"substance":"%s","lot":"%s","site":"plant","qty":"%d",'
                    '"unit":"%s"}' % (k, s["p"], at, s["sub"], lot, q, s["unit"]))
        else:
            lot = rng.choice(s["lots"][-3:])
            plant = s["book"].get((lot, "plant"), 0)
            store = s["book"].get((lot, "store"), 0)
            if plant > 20 and rng.random() < 0.5:
                q = rng.randrange(1, plant // 2)
                s["book"][(lot, "plant")] = plant - q
                s["book"][(lot, "store")] = store + q
                line = ('{"type":"transfer","id":"e%d","party":"%s","at":"%s",'
                        '"substance":"%s","lot":"%s","from_site":"plant",'
                        '"to_site":"store","qty":"%d","unit":"%s"}'
                        % (k, s["p"], at, s["sub"], lot, q, s["unit"]))
            else:
                site, have = ("store", store) if store > 1 else ("plant", plant)
                if have <= 1:
                    s["k"] -= 1
                    heapq.heappush(heap, (t + 60, i))
                    continue
                q = rng.randrange(1, max(2, have // 3))
                s["book"][(lot, site)] = have - q
                line = ('{"type":"consume","id":"e%d","party":"%s","at":"%s",'
                        '"substance":"%s","lot":"%s","site":"%s","qty":"%d",'
                        '"unit":"%s","purpose":"production"}'
                        % (k, s["p"], at, s["sub"], lot, site, q, s["unit"]))
        out.write(line + "\n")
        written += 1
        s["left"] -= 1
        # a party's events spread over a year
        heapq.heappush(heap, (t + rng.randrange(gap // 2, gap * 3 // 2 + 1), i))


def _iso(ts):
    import time
    return time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(ts + 8 * 3600))


if __name__ == "__main__":
    main()
