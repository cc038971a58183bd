#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A generated scenario survives a round trip through GS1 EPCIS 2.0.

    epcis_roundtrip.py TRACECTL [--seed N] [--clean N] [--per-rule N]
                       [--schema EPCIS-JSON-Schema.json]

Takes the scenarios of scenarios.py (clean flows and anomalies of every
rule) and makes them speak GS1: every party gets a GLN (valid check
digit), every substance moved a registered product (a `product` event
with a GTIN), and the movements EPCIS carries (produce, sale, receipt,
destroy, dispense) name `gtin` and `packs` instead of the substance
quantity when that quantity is a whole number of packs.  Products: the
precursors come in 1 kg packs, so the short receipts of 9.5 kg keep
their substance quantity (with the GTIN: exported in KGM), the drugs in
packs of 2 dosage units (every quantity is a whole number of packs).
Added to the scenarios (extras, corrections): transformations (produce
with inputs), sites with SGLNs, transfers to them and destructions at
them, imports and exports, corrections of receipts (replacements by GTIN) and voided
destructions, recorded after what they correct; six alerts of A
acknowledged or resolved (alert_ack).

Ledger A imports it (the scenario's historic events with --historic,
its recent ones without, as scenarios.py does); A is exported as an
EPCIS document (export --format epcis) and as JSON Lines.  A fresh
ledger B imports, in this order: every event of A's JSON Lines export
that the EPCIS document does not carry (parties, products, permits,
applications, stocktakes, consumptions, losses, parcels, ...) but the
custody records, corrections and acknowledgements, then the EPCIS
document, then those (pickup, delivery: they cite a recorded sale;
corrections name a recorded event); each part split into its
historic and recent events, imported as A imported them.

A and B must then hold the same events (A's JSON Lines export, sorted),
the same balances of every party (balance --json), the same forward and
backward trace of every lot (trace --json), and the same alerts of a
full reconcile --json; with --schema, A's document must validate against
GS1's EPCIS 2.0 JSON schema. Alerts are compared by rule, severity,
party, counterparty, substance, lot, permit, detail, status and their
evidence events described by what they are: each {party, id} is replaced
by that event's JSON Lines record without its `id` and `ref`. (Ids do
survive the round trip, which the comparison of the events checks, and
the detail texts name them.) Trace hops at the same time may come in
another order: ties are listed in journal order, and B records what
EPCIS does not carry before the document; so hops are compared as runs
of equal depth and time. The scenario must be non-trivial: every
movement of a carried type exported, at least 50 commissioning, shipping
and receiving events and 10 destroying and dispensing ones, both kinds
of quantity, at least 50 holdings and 200 trace hops, and at least one
alert of every rule of scenarios.py in A.
Exit status is non-zero on any difference, each shown.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from collections import Counter
from datetime import datetime, timedelta

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scenarios  # noqa: E402

CARRIED = ("produce", "sale", "receipt", "destroy", "dispense")
CUSTODY = ("pickup", "handover", "delivery")
# substance -> (content qty, unit, units per pack, form): one pack
PRODUCTS = {
    "ephedrine": ("1", "kg", 1, "powder"),
    "acetic-anhydride": ("1", "kg", 1, "liquid"),
    "potassium-permanganate": ("1", "kg", 1, "powder"),
    "morphine": ("1", "unit", 2, "tablet"),
    "oxycodone": ("1", "unit", 2, "tablet"),
    "diazepam": ("1", "unit", 2, "tablet"),
}
SCALE = {"kg": 10**9, "g": 10**6, "mg": 10**3, "ug": 1,
         "L": 10**6, "mL": 10**3, "uL": 1, "unit": 1000}


def check_digit(s):
    t = sum(int(c) * (3 if i % 2 == 0 else 1)
            for i, c in enumerate(reversed(s)))
    return str((10 - t % 10) % 10)


def gln(n):
    k = "6901234%05d" % n
    return k + check_digit(k)


def sgln(n):
    k = "6905555%05d" % n
    return k + check_digit(k)


def gtin(n):
    k = "0" + "6909876" + "%05d" % n
    return k + check_digit(k)


def base(qty, unit):
    """An exact decimal text in a unit, in base units (an int)."""
    whole, _, frac = str(qty).partition(".")
    scale = SCALE[unit]
    digits = len(frac)
    n = int(whole + frac) * scale
    assert n % 10**digits == 0, (qty, unit)
    return n // 10**digits


def later(t, **kw):
    return (datetime.fromisoformat(t) + timedelta(**kw)).isoformat()


def extras(sc, n=8):
    """What the scenarios lack and the round trip must keep: for n clean
    ephedrine lots, a transformation (a derived lot made of 6 kg of the
    lot), the derived lot moved to the producer's site "vault" (a site
    with an SGLN: a transfer) and 2 kg of it destroyed there; for half of
    them, a lot imported, 1 kg of it destroyed and 5 kg exported."""
    made = [e for e in sc.lines if e["type"] == "produce" and
            e["substance"] == "ephedrine" and e["qty"] == "1000" and
            e["lot"].startswith("LF-")][:n]
    regs = {e["subject"]: e for e in sc.lines if e["type"] == "party"}
    for i, p in enumerate(made):
        regs[p["party"]]["sites"] = [{"site": "vault", "sgln": sgln(i + 1)}]
        lot = p["lot"] + "-D"
        t = p["at"]
        for type_, at, f in (
                ("produce", later(t, hours=12),
                 dict(substance="ephedrine", lot=lot, qty="5", unit="kg",
                      inputs=[{"lot": p["lot"], "substance": "ephedrine",
                               "qty": "6", "unit": "kg"}])),
                ("transfer", later(t, hours=13),
                 dict(from_site="main", to_site="vault",
                      substance="ephedrine", lot=lot, qty="5", unit="kg")),
                ("destroy", later(t, hours=14),
                 dict(substance="ephedrine", lot=lot, qty="2", unit="kg",
                      site="vault", witness="REGULATOR",
                      method="incineration"))):
            sc.lines.append(dict({"type": type_, "id": sc.uid("X"),
                                  "party": p["party"], "at": at}, **f))
        if i % 2:
            continue
        # an imported lot, partly destroyed (EPCIS) and re-exported
        t0 = datetime.fromisoformat(t)
        lot = p["lot"] + "-I"
        permits = [sc.permit(p["party"], kind, "ephedrine", "100", "kg",
                             t0 - timedelta(days=10),
                             t0 + timedelta(days=10))
                   for kind in ("import_license", "export_license")]
        for type_, at, f in (
                ("import", later(t, hours=15),
                 dict(qty="20", permit=permits[0], country="DE",
                      pen="PEN-DE-%d" % i)),
                ("destroy", later(t, hours=16),
                 dict(qty="1", witness="REGULATOR", method="incineration")),
                ("export", later(t, hours=17),
                 dict(qty="5", permit=permits[1], country="VN"))):
            sc.lines.append(dict({"type": type_, "id": sc.uid("X"),
                                  "party": p["party"], "at": at,
                                  "substance": "ephedrine", "lot": lot,
                                  "unit": "kg"}, **f))
    return len(made)


def corrections(sc, n=6):
    """Corrections of movements EPCIS carries (recorded after them): n
    receipts moved half an hour later (replacements by GTIN), n/2
    witnessed destructions voided."""
    out = []
    receipts = [e for e in sc.lines if e["type"] == "receipt" and
                "packs" in e and e["ref"] != "NO-SUCH-SALE"][:n]
    destroys = [e for e in sc.lines if e["type"] == "destroy" and
                e.get("witness")][:n // 2]
    for e in receipts + destroys:
        c = {"type": "correction", "id": sc.uid("C"), "party": e["party"],
             "at": later(e["at"], hours=3), "corrects": e["id"]}
        if e["type"] == "receipt":
            c["reason"] = "received later"
            c["replacement"] = dict(e, at=later(e["at"], minutes=30))
        else:
            c["reason"] = "recorded twice"
        out.append(c)
    return out


def gs1ify(sc):
    """GLNs on the parties, products, and movements by GTIN.  Returns
    Counter of movements rewritten to packs and kept by quantity."""
    counts = Counter()
    first = min(e["at"] for e in sc.lines if e["type"] == "party")
    n = 0
    for e in sc.lines:
        if e["type"] == "party":
            n += 1
            e["gln"] = gln(n)
    used = sorted({e["substance"] for e in sc.lines + sc.recent
                   if e["type"] in CARRIED})
    gtins = {}
    products = []
    for i, sub in enumerate(used):
        qty, unit, per_pack, form = PRODUCTS[sub]
        gtins[sub] = gtin(i + 1)
        products.append({
            "type": "product", "id": "PRD-%s" % sub, "party": "REGULATOR",
            "at": first, "gtin": gtins[sub], "substance": sub,
            "content": {"qty": qty, "unit": unit},
            "units_per_pack": per_pack, "name": sub + " pack",
            "form": form})
    for e in sc.lines + sc.recent:
        if e["type"] not in CARRIED:
            continue
        qty, unit, per_pack, _ = PRODUCTS[e["substance"]]
        assert unit == e["unit"], e
        pack = base(qty, unit) * per_pack
        amount = base(e["qty"], e["unit"])
        e["gtin"] = gtins[e["substance"]]
        del e["substance"]
        if amount % pack == 0:
            e["packs"] = amount // pack
            del e["qty"], e["unit"]
            counts["packs"] += 1
        else:
            counts["quantity"] += 1
    regs = [e for e in sc.lines if e["type"] == "party"]
    sc.lines[len(regs):len(regs)] = products
    return counts


class Ledger:
    def __init__(self, tracectl, path):
        self.t, self.path = tracectl, path

    def run(self, *a, ok=(0,)):
        p = subprocess.run([self.t, "--data", self.path] + list(a),
                           capture_output=True, text=True)
        if p.returncode not in ok:
            sys.exit("tracectl --data %s %s failed (%d): %s%s" % (
                os.path.basename(self.path), " ".join(a), p.returncode,
                p.stdout[-2000:], p.stderr[-2000:]))
        return p

    def lines(self, *a):
        return [json.loads(l) for l in self.run("--json", *a).stdout
                .splitlines() if l.strip()]

    def export(self):
        return [json.loads(l) for l in self.run("export").stdout
                .splitlines() if l.strip()]

    def imp(self, path, *flags):
        return self.run("import", "--provision-keys", *flags, path)


def write(path, events):
    with open(path, "w") as f:
        for e in events:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")


def event_id(uri):
    pre = "urn:x-trace:id:"
    return urllib.parse.unquote(uri[len(pre):]) if uri.startswith(pre) \
        else uri


def describe(ev):
    """An event by what it is: its record without id and ref."""
    return json.dumps({k: v for k, v in ev.items() if k not in ("id", "ref")},
                      sort_keys=True, ensure_ascii=False)


def tie_groups(hops):
    """A trace's hops as runs of equal depth and time, each run sorted:
    hops at the same time are listed in journal order (SPEC 3), which
    the round trip changes (B records what EPCIS does not carry before
    the document)."""
    runs = []
    for line in hops:
        h = json.loads(line)
        key = (h.get("depth"), h["at"])
        if not runs or runs[-1][0] != key:
            runs.append((key, []))
        runs[-1][1].append(line)
    return [(k, sorted(v)) for k, v in runs]


def norm_alerts(alerts, events):
    out = []
    for a in alerts:
        ev = sorted(describe(events[(x["party"], x["id"])])
                    if (x["party"], x["id"]) in events else
                    "unknown event %s/%s" % (x["party"], x["id"])
                    for x in a["events"])
        out.append(json.dumps(
            {k: a.get(k) for k in ("rule", "severity", "party",
                                   "counterparty", "substance", "lot",
                                   "permit", "detail", "status")} |
            {"events": ev},
            sort_keys=True, ensure_ascii=False))
    return Counter(out)


def validate(schema_path, doc, fail):
    """The document against GS1's EPCIS 2.0 JSON schema (with python3's
    jsonschema; skipped, saying so, without it)."""
    try:
        import jsonschema
    except ImportError:
        print("SKIPPED schema validation: python3 module jsonschema missing "
              "(apt-get install python3-jsonschema, see scripts/deps.sh)")
        return
    with open(schema_path) as f:
        schema = json.load(f)
    v = jsonschema.Draft7Validator(
        schema, format_checker=jsonschema.FormatChecker())
    errs = list(v.iter_errors(doc))
    for e in errs[:5]:
        print("  schema: %s %s" % (list(e.absolute_path), e.message[:300]))
    fail.check(not errs, "the EPCIS export does not validate against the "
               "EPCIS 2.0 schema (%d errors)" % len(errs))
    if not errs:
        print("the EPCIS document validates against the EPCIS 2.0 schema")


class Failures:
    def __init__(self):
        self.n = 0

    def diff(self, what, a, b, limit=5):
        """a, b: Counters or lists of text lines."""
        ca, cb = Counter(a), Counter(b)
        if ca == cb:
            return True
        self.n += 1
        only_a, only_b = ca - cb, cb - ca
        print("FAIL %s: %d only in A, %d only in B" %
              (what, sum(only_a.values()), sum(only_b.values())))
        for x in list(only_a)[:limit]:
            print("  A only: %s" % x[:600])
        for x in list(only_b)[:limit]:
            print("  B only: %s" % x[:600])
        return False

    def check(self, cond, msg):
        if not cond:
            self.n += 1
            print("FAIL " + msg)
        return cond


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    tracectl = args[0]
    opt = {"--seed": 1, "--clean": 150, "--per-rule": 10, "--schema": None}
    for i in range(1, len(args) - 1, 2):
        if args[i] not in opt:
            sys.exit(__doc__)
        opt[args[i]] = args[i + 1] if args[i] == "--schema" \
            else int(args[i + 1])
    sc = scenarios.build(opt["--seed"], opt["--clean"], opt["--per-rule"])
    scenarios.import_order(sc)
    n_extra = extras(sc)
    kinds = gs1ify(sc)
    fixes = corrections(sc)
    recent = {(e["party"], e["id"]) for e in sc.recent}
    fail = Failures()
    with tempfile.TemporaryDirectory() as d:
        A = Ledger(tracectl, os.path.join(d, "A"))
        B = Ledger(tracectl, os.path.join(d, "B"))
        for led in (A, B):
            led.run("init")
        # a product is registered before a movement names its GTIN
        master = [e for e in sc.lines if e["type"] in ("party", "product")]
        write(os.path.join(d, "master.jsonl"), master)
        write(os.path.join(d, "historic.jsonl"), sc.lines[len(master):])
        write(os.path.join(d, "recent.jsonl"), sc.recent)
        A.imp(os.path.join(d, "master.jsonl"), "--historic")
        A.imp(os.path.join(d, "historic.jsonl"), "--historic")
        A.imp(os.path.join(d, "recent.jsonl"))
        write(os.path.join(d, "corrections.jsonl"), fixes)
        A.imp(os.path.join(d, "corrections.jsonl"), "--historic")
        # acknowledged and resolved alerts (alert_ack events)
        acked = {}
        for a in A.lines("reconcile"):
            if a["rule"] not in acked and len(acked) < 6:
                acked[a["rule"]] = a["id"]
        for k, (rule, alert) in enumerate(sorted(acked.items())):
            A.run("ack", alert, "--status",
                  "resolved" if k % 2 else "acknowledged",
                  "--note", "核查 %s" % rule)

        # A as EPCIS and as JSON Lines
        doc_path = os.path.join(d, "a.jsonld")
        p = A.run("export", "--format", "epcis")
        with open(doc_path, "w") as f:
            f.write(p.stdout)
        summary = p.stderr.strip()
        doc = json.loads(p.stdout)
        evlist = doc["epcisBody"]["eventList"]
        exported = A.export()
        by_id = {(e["party"], e["id"]): e for e in exported}
        moves_by_id = {}
        for k, e in by_id.items():
            if e["type"] in CARRIED:
                moves_by_id.setdefault(k[1], []).append(k)
        carried, owner = set(), {}
        for x in evlist:
            owners = moves_by_id.get(event_id(x["eventID"]), [])
            fail.check(len(owners) == 1, "eventID %s names %d movements" %
                       (x["eventID"], len(owners)))
            carried.update(owners)
            owner[x["eventID"]] = owners[0] if owners else None
        moves = [e for e in exported if e["type"] in CARRIED]
        steps = Counter(x.get("bizStep") for x in evlist)
        print("seed %d: %d events in A, %d EPCIS events %s; %s" % (
            opt["--seed"], len(exported), len(evlist), dict(steps), summary))
        print("movements by packs: %d, by quantity with a GTIN: %d" %
              (kinds["packs"], kinds["quantity"]))
        # non-trivial: every carried movement written, many of each step
        fail.check(len(carried) == len(moves),
                   "%d of %d movements of carried types were exported: %s" %
                   (len(carried), len(moves), summary))
        for step in ("commissioning", "shipping", "receiving", "destroying",
                     "dispensing"):
            fail.check(steps[step] >= (10 if step in ("destroying",
                                                      "dispensing") else 50),
                       "only %d %s events" % (steps[step], step))
        at_site = [x for x in evlist if x.get("bizLocation", {}).get(
            "id", "").startswith("urn:epc:id:sgln:6905555.")]
        fail.check(steps["transforming"] == n_extra == 8 and
                   len(at_site) == n_extra,
                   "%d transformations, %d events at a site's SGLN, of %d" %
                   (steps["transforming"], len(at_site), n_extra))
        types = Counter(e["type"] for e in exported)
        fail.check(types["correction"] == len(fixes) == 9 and
                   types["import"] == types["export"] == 4 and
                   types["transfer"] == 8 and types["alert_ack"] == 6,
                   "events not carried: %s" % dict(types))
        fail.check(kinds["packs"] >= 100 and kinds["quantity"] >= 1,
                   "quantities by packs %d, by quantity %d" %
                   (kinds["packs"], kinds["quantity"]))

        if opt["--schema"]:
            validate(opt["--schema"], doc, fail)

        # into B: the rest before the document, custody after it; the
        # historic events as historic
        # what init recorded (the root regulator, its key) B has of its own
        own = {(e["party"], e["id"]) for e in B.export()}
        rest = [e for e in exported if (e["party"], e["id"]) not in carried
                and (e["party"], e["id"]) not in own]
        first = [e for e in rest
                 if e["type"] not in CUSTODY + ("correction", "alert_ack")]
        late = CUSTODY + ("correction", "alert_ack")
        last = [e for e in rest if e["type"] in late]

        def parts(name, events):
            for tag, flags, want in (("historic", ["--historic"], False),
                                     ("recent", [], True)):
                sel = [e for e in events
                       if ((e["party"], e["id"]) in recent) == want]
                if sel:
                    path = os.path.join(d, "%s-%s.jsonl" % (name, tag))
                    write(path, sel)
                    B.imp(path, *flags)

        def epcis_parts():
            for tag, flags, want in (("historic", ["--historic"], False),
                                     ("recent", [], True)):
                sel = [x for x in evlist
                       if (owner[x["eventID"]] in recent) == want]
                part = dict(doc)
                part["epcisBody"] = {"eventList": sel}
                path = os.path.join(d, "b-%s.jsonld" % tag)
                with open(path, "w") as f:
                    json.dump(part, f, ensure_ascii=False)
                p = B.imp(path, "--format", "epcis", *flags)
                fail.check("%d imported (%d ledger events), 0 skipped, "
                           "0 rejected" % (len(sel), len(sel)) in p.stdout,
                           "EPCIS import (%s): %s" % (tag, p.stdout.strip()))

        # the same parties: their keys (A's party events name them), but
        # B's own root regulator
        for name in os.listdir(os.path.join(A.path, "keys")):
            if not name.startswith("REGULATOR."):
                shutil.copy(os.path.join(A.path, "keys", name),
                            os.path.join(B.path, "keys", name))
        parts("first", first)
        epcis_parts()
        parts("last", last)

        # the same events
        exported_b = B.export()
        canon = [json.dumps(e, sort_keys=True, ensure_ascii=False)
                 for e in exported if (e["party"], e["id"]) not in own]
        canon_b = [json.dumps(e, sort_keys=True, ensure_ascii=False)
                   for e in exported_b if (e["party"], e["id"]) not in own]
        fail.diff("events", canon, canon_b)

        # balances of every party
        parties = sorted({e["subject"] for e in exported
                          if e["type"] == "party"})
        held = 0
        for party in parties:
            ba = [json.dumps(x, sort_keys=True) for x in
                  A.lines("balance", party)]
            bb = [json.dumps(x, sort_keys=True) for x in
                  B.lines("balance", party)]
            held += len(ba)
            fail.diff("balance of %s" % party, ba, bb)
        # traces of every lot, both ways
        lots = sorted({e["lot"] for e in exported if "lot" in e})
        hops = 0
        for lot in lots:
            for way in ("--forward", "--backward"):
                ta = A.run("--json", "trace", lot, way).stdout.splitlines()
                tb = B.run("--json", "trace", lot, way).stdout.splitlines()
                hops += len(ta)
                if fail.diff("trace %s %s" % (lot, way), ta, tb):
                    fail.check(tie_groups(ta) == tie_groups(tb),
                               "trace %s %s: the same hops in another "
                               "order:\n  A: %s\n  B: %s" % (
                                   lot, way, "\n     ".join(ta),
                                   "\n     ".join(tb)))
        print("%d parties (%d holdings), %d lots (%d hops) compared" %
              (len(parties), held, len(lots), hops))
        fail.check(held >= 50 and hops >= 200,
                   "too few holdings (%d) or hops (%d)" % (held, hops))

        # the alerts of a full reconciliation
        events_a = {(e["party"], e["id"]): e for e in exported}
        events_b = {(e["party"], e["id"]): e for e in exported_b}
        al_a = A.lines("reconcile")
        al_b = B.lines("reconcile")
        fail.diff("alerts", norm_alerts(al_a, events_a),
                  norm_alerts(al_b, events_b))
        rules = Counter(a["rule"] for a in al_a)
        print("%d alerts in A, %d in B: %s" % (len(al_a), len(al_b),
                                               dict(sorted(rules.items()))))
        for rule in scenarios.RULES:
            fail.check(rules[rule] >= 1, "no %s alert in A" % rule)
        status = Counter(a.get("status") for a in al_b)
        fail.check(status["acknowledged"] == 3 and status["resolved"] == 3,
                   "statuses of B's alerts: %s" % dict(status))
    print("PASS" if not fail.n else "FAIL (%d)" % fail.n)
    sys.exit(1 if fail.n else 0)


if __name__ == "__main__":
    main()
