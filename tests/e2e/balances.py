#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Balances and lot traces checked against an independent computation.

    balances.py TRACECTL [--seed N] [--events N]

Generates random multi-party stock events (produce with inputs, sales,
receipts, transfers between sites, consumption, dispensing, losses,
destruction, imports, exports, stocktakes, corrections with and without a
replacement, several units per dimension, times out of file order),
imports them in one import (which holds its index entries back and puts
them at its end), checks the indexes with `verify --deep`, and compares
every party's `balance --at T --json` at many times T (event times
exactly, and a microsecond before) and the forward trace of every lot
with what this script computes from the same events by the rules of SPEC
sections 2 and 3.  Prints "N passed, M failed".
"""
import json
import os
import random
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from decimal import Decimal

TZ = timezone(timedelta(hours=8))
UNITS = {"ug": 1, "mg": 10**3, "g": 10**6, "kg": 10**9, "t": 10**12,
         "uL": 1, "mL": 10**3, "L": 10**6, "m3": 10**9, "unit": 1000}
SUBSTANCES = {"ephedrine": ["mg", "g", "kg"], "acetone": ["mL", "L"],
              "morphine": ["unit"]}
MOVES = {"produce": 1, "receipt": 1, "import": 1, "sale": -1, "consume": -1,
         "dispense": -1, "destroy": -1, "loss": -1, "export": -1}


def base(qty, unit):
    return int(Decimal(qty) * UNITS[unit])


def rand_qty(r, unit):
    # exact in the base unit: at most as many decimals as the unit allows
    digits = len(str(UNITS[unit])) - 1
    whole = r.randint(1, 50)
    if digits and r.random() < 0.5:
        d = r.randint(1, min(digits, 3))
        return "%d.%0*d" % (whole, d, r.randint(1, 10**d - 1))
    return str(whole)


def generate(r, n_events):
    parties = ["P%d" % i for i in range(1, 7)]
    lines = [{"type": "party", "id": "reg-" + p, "party": "REGULATOR",
              "at": "2026-01-01T00:00:00+08:00", "subject": p,
              "name": "Party " + p, "kind": "manufacturer", "region": "CN-31",
              "licenses": ["CN-PC-1", "CN-PC-3", "CN-NARC"]}
             for p in parties]
    events, lots = [], []
    t0 = datetime(2026, 1, 2, tzinfo=TZ)
    for i in range(n_events):
        p = r.choice(parties)
        at = t0 + timedelta(minutes=r.randint(0, 60 * 24 * 200),
                            seconds=r.randint(0, 59))
        sub = r.choice(list(SUBSTANCES))
        unit = r.choice(SUBSTANCES[sub])
        site = r.choice([None, "main", "b"])
        kind = r.choices(["produce", "sale", "transfer", "consume",
                          "dispense", "destroy", "loss", "import", "export",
                          "stocktake", "correction"],
                         [14, 20, 6, 6, 6, 3, 3, 4, 3, 4, 5])[0]
        e = {"type": kind, "id": "e%d" % i, "party": p,
             "at": at.isoformat()}
        if kind == "correction":
            mine = [x for x in events if x["party"] == p and
                    x["type"] != "correction"]
            if not mine:
                continue
            old = r.choice(mine)
            e.update(corrects=old["id"], reason="fix")
            if r.random() < 0.7 and "qty" in old:
                rep = dict(old)
                rep["qty"] = rand_qty(r, old["unit"])
                e["replacement"] = rep
            events.append(e)
            continue
        if lots and kind != "produce" and kind != "import":
            sub, lot = r.choice(lots)
            unit = r.choice(SUBSTANCES[sub])
        else:
            lot = "L%d" % i
            lots.append((sub, lot))
        e.update(substance=sub, lot=lot)
        if kind == "stocktake":
            e.update(counted=rand_qty(r, unit), unit=unit)
        else:
            e.update(qty=rand_qty(r, unit), unit=unit)
        if site and kind != "transfer":
            e["site"] = site
        if kind == "sale":
            e["to"] = r.choice([x for x in parties if x != p])
        elif kind == "transfer":
            e["from_site"], e["to_site"] = r.sample(["main", "b", "c"], 2)
        elif kind == "consume":
            e["purpose"] = "batch"
        elif kind == "dispense":
            if sub != "morphine":
                continue
            e["rx"] = {"id": "RX%d" % i, "prescriber": "D1",
                       "patient": "X%d" % i, "written": "2026-01-02",
                       "days_supply": 1, "form": "oral"}
        elif kind == "destroy":
            e.update(method="incineration", witness="REGULATOR")
        elif kind == "loss":
            e["reason"] = "damage"
        elif kind in ("import", "export"):
            e.update(permit="X", country="DE")
        elif kind == "produce" and lots and r.random() < 0.4:
            isub, ilot = r.choice(lots[:-1] or lots)
            iunit = r.choice(SUBSTANCES[isub])
            e["inputs"] = [{"lot": ilot, "substance": isub,
                            "qty": rand_qty(r, iunit), "unit": iunit}]
        events.append(e)
        if kind == "sale" and r.random() < 0.8:
            events.append({"type": "receipt", "id": "r%d" % i,
                           "party": e["to"],
                           "at": (at + timedelta(hours=5)).isoformat(),
                           "from": p, "ref": e["id"], "substance": sub,
                           "lot": lot, "qty": e["qty"], "unit": unit})
    return lines, events


def effective(events):
    """Events in force: corrections replace or void what they correct."""
    by_id = {}
    order = []
    for e in events:
        key = (e["party"], e["id"])
        if e["type"] == "correction":
            key = (e["party"], e["corrects"])
            by_id[key] = e.get("replacement")   # None: voided
        else:
            by_id[key] = e
            order.append(key)
    return [by_id[k] for k in order if by_id.get(k)]


def ts(s):
    return datetime.fromisoformat(s)


def changes(e):
    """(party, site, substance, lot, delta) of one effective event."""
    p, site = e["party"], e.get("site") or "main"
    if e["type"] == "transfer":
        q = base(e["qty"], e["unit"])
        return [(p, e["from_site"], e["substance"], e["lot"], -q),
                (p, e["to_site"], e["substance"], e["lot"], q)]
    if e["type"] not in MOVES:
        return []
    out = [(p, site, e["substance"], e["lot"],
            MOVES[e["type"]] * base(e["qty"], e["unit"]))]
    for i in e.get("inputs", []):
        out.append((p, site, i["substance"], i["lot"],
                    -base(i["qty"], i["unit"])))
    return out


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    tracectl, opt = args[0], {"--seed": 1, "--events": 600}
    for i in range(1, len(args) - 1, 2):
        opt[args[i]] = int(args[i + 1])
    r = random.Random(opt["--seed"])
    regs, events = generate(r, opt["--events"])
    r.shuffle(events)
    # a correction must come after what it corrects in the file
    pos = {(e["party"], e["id"]): i for i, e in enumerate(events)}
    events.sort(key=lambda e: pos[(e["party"], e["corrects"])] + 0.5
                if e["type"] == "correction" else pos[(e["party"], e["id"])])
    live = effective(events)
    passed = failed = 0

    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "ledger")

        def run(*a):
            p = subprocess.run([tracectl, "--data", data] + list(a),
                               capture_output=True, text=True)
            if p.returncode != 0:
                sys.exit("tracectl %s: %s" % (" ".join(a[:2]), p.stderr))
            return p.stdout

        run("init")
        path = os.path.join(d, "events.jsonl")
        with open(path, "w") as f:
            for e in regs + events:
                f.write(json.dumps(e) + "\n")
        run("import", "--provision-keys", "--historic", path)
        # the import held its index entries back and put them at the end
        # (back-dated events and corrections write them early): every
        # index record is the one the journal implies
        run("verify", "--deep")

        times = sorted({ts(e["at"]) for e in live})
        checks = r.sample(times, min(25, len(times)))
        for t in sorted(checks):
            for at in (t, t - timedelta(microseconds=1)):
                want = {}
                for e in live:
                    if ts(e["at"]) <= at:
                        for (p, site, sub, lot, q) in changes(e):
                            k = (p, site, sub, lot)
                            want[k] = want.get(k, 0) + q
                for p in sorted({e["subject"] for e in regs}):
                    w = {k: v for k, v in want.items() if k[0] == p and v}
                    got = {}
                    stamp = at.isoformat(timespec="microseconds")
                    for line in run("balance", p, "--at", stamp,
                                    "--json").splitlines():
                        h = json.loads(line)
                        got[(p, h["site"], h["substance"], h["lot"])] = \
                            base(h["qty"], h["unit"])
                    if got == {k: v for k, v in w.items()}:
                        passed += 1
                    else:
                        failed += 1
                        if failed <= 5:
                            print("balance of %s at %s differs:" % (p, stamp))
                            for k in sorted(set(got) | set(w)):
                                if got.get(k) != w.get(k):
                                    print("  %s: ledger %s, expected %s" %
                                          (k, got.get(k), w.get(k)))

        # forward traces from each lot's origin, one level (no --party):
        # every sale (with the buyer's receipts of it), outflow and
        # transformation of the lot by anyone who got it from the origin;
        # checked for the lot's own movements
        lots = sorted({e["lot"] for e in live if e.get("lot")})
        for lot in r.sample(lots, min(40, len(lots))):
            mine = [e for e in live if e.get("lot") == lot]
            origins = [e for e in mine if e["type"] in ("produce", "import")]
            if not origins:
                continue
            out = run("trace", lot, "--forward", "--json")
            hops = [json.loads(l) for l in out.splitlines()]
            got = sorted((h["kind"], h["event"], h["from"] or "", h["to"] or "")
                         for h in hops if h["lot"] == lot)
            # reachable parties: origin holders, then buyers of reachable
            reach = {e["party"] for e in origins}
            changed = True
            while changed:
                changed = False
                for e in mine:
                    if e["type"] == "sale" and e["party"] in reach and \
                            e["to"] not in reach:
                        reach.add(e["to"])
                        changed = True
            want = []
            for e in origins:
                want.append((e["type"], e["id"],
                             e.get("country", "") if e["type"] == "import"
                             else "", e["party"]))
            for e in mine:
                if e["party"] not in reach:
                    continue
                if e["type"] == "sale":
                    want.append(("sale", e["id"], e["party"], e["to"]))
                    # each followed by the buyer's receipts of it
                    for c in mine:
                        if c["type"] == "receipt" and \
                                c["party"] == e["to"] and \
                                c["from"] == e["party"] and \
                                c["ref"] == e["id"]:
                            want.append(("receipt", c["id"], e["party"],
                                         e["to"]))
                elif e["type"] in ("consume", "dispense", "destroy", "loss"):
                    want.append((e["type"], e["id"], e["party"], ""))
                elif e["type"] == "export":
                    want.append(("export", e["id"], e["party"], e["country"]))
            for e in live:
                if e["type"] == "produce" and e["party"] in reach and \
                        any(i["lot"] == lot for i in e.get("inputs", [])):
                    want.append(("produce", e["id"], e["party"], e["party"]))
            if got == sorted(want):
                passed += 1
            else:
                failed += 1
                if failed <= 5:
                    print("trace of %s differs:\n  ledger   %s\n  expected %s"
                          % (lot, got, sorted(want)))
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
