#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A GS1 EPCIS 2.0 document of N events for the interchange benchmark
(SPEC 11), and the master data a ledger needs to map it: parties with
GLNs, one morphine product.  A narcotics supply chain in time order:
manufacturers commission lots (ObjectEvent ADD, commissioning), ship
packs to distributors (shipping, a despatch advice, source and
destination owning parties), distributors receive them (receiving, the
same despatch advice), ship part on to hospitals, which receive them and
now and then destroy a pack (destroying, witnessed by the regulator in a
trace:fields extension).  Every event carries a urn:uuid eventID; stock
never goes below zero, so checks at entry find nothing.  Deterministic.

    epcisgen.py N --master MASTER.jsonl > doc.jsonld
"""
import argparse
import sys
import time

REG = "REGULATOR"
CP = "0614141"  # GS1 company prefix of every GLN and the GTIN


def check_digit(s):
    t = sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(reversed(s)))
    return str((10 - t % 10) % 10)


def gln(i):
    k = CP + "%05d" % i
    return k + check_digit(k)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("n", type=int)
    ap.add_argument("--master", required=True)
    ap.add_argument("--manufacturers", type=int, default=20)
    ap.add_argument("--distributors", type=int, default=100)
    ap.add_argument("--hospitals", type=int, default=400)
    a = ap.parse_args()
    kinds = ([("manufacturer", "M")] * a.manufacturers +
             [("distributor", "D")] * a.distributors +
             [("hospital", "H")] * a.hospitals)
    parties = []
    with open(a.master, "w") as m:
        for i, (kind, tag) in enumerate(kinds):
            subj = "9131%04dMA1K%06d" % (i % 10000, i)
            parties.append((subj, gln(i + 1), tag))
            m.write('{"type":"party","id":"bench-reg-%d","party":"%s",'
                    '"at":"2025-01-01T09:00:00+08:00","subject":"%s",'
                    '"name":"Bench %s %d","kind":"%s","region":"CN-31",'
                    '"licenses":["CN-NARC"],"gln":"%s"}\n'
                    % (i, REG, subj, kind, i, kind, gln(i + 1)))
        gtin = "1" + CP + "07346"
        gtin += check_digit(gtin)
        m.write('{"type":"product","id":"bench-prod-1","party":"%s",'
                '"at":"2025-01-01T09:00:00+08:00","gtin":"%s",'
                '"substance":"morphine","content":{"qty":"1","unit":"unit"},'
                '"units_per_pack":10,"name":"Morphine 10 mg x 10",'
                '"form":"tablet"}\n' % (REG, gtin))
    mans = [p for p in parties if p[2] == "M"]
    dists = [p for p in parties if p[2] == "D"]
    hosps = [p for p in parties if p[2] == "H"]
    # LGTIN class: company prefix . indicator + item reference . lot
    cls_pre = "urn:epc:class:lgtin:%s.%s%s." % (CP, gtin[0], gtin[8:13])
    out = sys.stdout
    out.write('{"@context":["https://ref.gs1.org/standards/epcis/2.0.0/'
              'epcis-context.jsonld",{"trace":"urn:x-trace:epcis:"}],'
              '"type":"EPCISDocument","schemaVersion":"2.0",'
              '"creationDate":"2025-12-31T00:00:00Z",'
              '"epcisBody":{"eventList":[\n')
    t = 1735689600 + 86400  # 2025-01-02T00:00:00Z
    seq = [0]

    def iso(s):
        return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(s))

    def sgln(g):
        return "urn:epc:id:sgln:%s.%s.0" % (g[:7], g[7:12])

    def pgln(g):
        return "urn:epc:id:pgln:%s.%s" % (g[:7], g[7:12])

    def head(step, action, where):
        seq[0] += 1
        return ('{"type":"ObjectEvent","eventTime":"%s",'
                '"eventTimeZoneOffset":"+00:00",'
                '"eventID":"urn:uuid:6a2f1c3e-0000-4000-8000-%012d",'
                '"action":"%s","bizStep":"%s",'
                '"bizLocation":{"id":"%s"}' % (iso(t + seq[0]), seq[0],
                                               action, step, sgln(where)))

    def qty(lot, n):
        return '"quantityList":[{"epcClass":"%s%s","quantity":%d,"uom":"EA"}]' % (
            cls_pre, lot, n)

    def sd(src, dst):
        return ('"sourceList":[{"type":"owning_party","source":"%s"}],'
                '"destinationList":[{"type":"owning_party","destination":"%s"}]'
                % (pgln(src), pgln(dst)))

    def desadv(src, k):
        return ('"bizTransactionList":[{"type":"desadv",'
                '"bizTransaction":"urn:epcglobal:cbv:bt:%s:DA-%d"}]' % (src, k))

    written = 0
    first = True
    rnd = 0

    def emit(s):
        nonlocal written, first
        if written >= a.n:
            return False
        out.write(s if first else ",\n" + s)
        first = False
        written += 1
        return True

    # one round: each manufacturer commissions a lot of 400 packs, ships
    # 4 x 100 to distributors; each receiving distributor ships 4 x 25 on
    # to hospitals, which receive them and destroy one pack of every
    # fourth shipment: 1 + 4 * (2 + 4 * 2) + 4 = 45 events per lot
    while written < a.n:
        rnd += 1
        for mi, man in enumerate(mans):
            lot = "L%d-%d" % (rnd, mi)
            if not emit(head("commissioning", "ADD", man[1]) + "," +
                        qty(lot, 400) + "}"):
                break
            for j in range(4):
                dist = dists[(mi * 4 + j + rnd) % len(dists)]
                k = seq[0] + 1
                emit(head("shipping", "OBSERVE", man[1]) + "," + qty(lot, 100) +
                     "," + sd(man[1], dist[1]) + "," + desadv(man[1], k) + "}")
                emit(head("receiving", "OBSERVE", dist[1]) + "," +
                     qty(lot, 100) + "," + sd(man[1], dist[1]) + "," +
                     desadv(man[1], k) + "}")
                for h in range(4):
                    hosp = hosps[(mi * 16 + j * 4 + h + rnd) % len(hosps)]
                    k2 = seq[0] + 1
                    emit(head("shipping", "OBSERVE", dist[1]) + "," +
                         qty(lot, 25) + "," + sd(dist[1], hosp[1]) + "," +
                         desadv(dist[1], k2) + "}")
                    emit(head("receiving", "OBSERVE", hosp[1]) + "," +
                         qty(lot, 25) + "," + sd(dist[1], hosp[1]) + "," +
                         desadv(dist[1], k2) + "}")
                    if h == 0:
                        emit(head("destroying", "DELETE", hosp[1]) + "," +
                             qty(lot, 1) + ',"trace:fields":{"witness":"%s",'
                             '"method":"incineration"}}' % REG)
    out.write("\n]}}\n")


if __name__ == "__main__":
    main()
