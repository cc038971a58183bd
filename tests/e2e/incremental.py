#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Incremental reconciliation finds what full runs find.

    incremental.py TRACECTL [--seed N] [--days N] [--late PCT]
                            [--regime CN|US|EU|UN]
    incremental.py TRACECTL --cases DIR

Generates the scenarios of scenarios.py (clean flows and anomalies of
every rule), then feeds them to two ledgers in daily batches: each batch
holds the events of one day in `at` order, except that PCT % of the
events arrive one to five batches late (late receipts, back-dated
records, permits issued after the sale that cites them).  After each
batch ledger A runs `reconcile --incremental` and ledger B a full
`reconcile`, both as of the end of that day.  The alerts stored in A
and in B must be the same after every batch, the incremental runs must
have read only part of the ledger, and a final full run over A must find
nothing new.  Exit status is non-zero on any difference.

--regime US|EU|UN: the scenarios of `scenarios.py --regime` in a ledger
of that regime.

With --cases, each DIR/*.json ({"batches": [{"as_of": T|null, "events":
[...]}, ...]}) is a small hand-made history fed the same way: cases an
incremental run once got wrong (a receipt recorded before the sale it
cites, in another lot; an id too long to index; a citation dated after
the as-of time; a receipt window closing between runs; an application
coming due between runs, answered late).
"""
import json
import os
import random
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scenarios  # noqa: E402


def run(tracectl, data, *a):
    p = subprocess.run([tracectl, "--data", data] + list(a),
                       capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("tracectl %s failed (%d): %s" %
                 (" ".join(a), p.returncode, p.stderr))
    return p


def stored(tracectl, data):
    out = run(tracectl, data, "--json", "alerts").stdout
    return {json.loads(l)["id"]: json.loads(l)
            for l in out.splitlines() if l.strip()}


def compare(tracectl, d, batches, label, regime="CN"):
    """Feeds the batches [(as_of or None, events)] to ledgers A
    (incremental runs) and B (full runs); returns the number of batches
    after which their stored alerts differ and of incremental runs that
    read only part of A."""
    A, B = os.path.join(d, "A"), os.path.join(d, "B")
    for data in (A, B):
        run(tracectl, data, "init", "--regime", regime)
    failed = partial = 0
    for k, (as_of, events) in enumerate(batches):
        path = os.path.join(d, "batch%d.jsonl" % k)
        with open(path, "w") as f:
            for e in events:
                f.write(json.dumps(e) + "\n")
        ao = ["--as-of", as_of] if as_of else []
        for data in (A, B):
            run(tracectl, data, "import", "--provision-keys", "--historic",
                path)
        pa = run(tracectl, A, "reconcile", "--incremental", *ao)
        run(tracectl, B, "reconcile", *ao)
        partial += "appended since" in pa.stderr
        sa, sb = stored(tracectl, A), stored(tracectl, B)
        diff = set(sa) ^ set(sb)
        print("%s batch %2d: %4d events, %4d alerts stored in both%s | %s" %
              (label, k, len(events), len(set(sa) & set(sb)),
               "" if not diff else ", %d differ" % len(diff),
               pa.stderr.strip()))
        for i in sorted(diff):
            a = sa.get(i) or sb.get(i)
            print("  only in %s: %s %s %s" %
                  ("A (incremental)" if i in sa else "B (full)",
                   a["rule"], a["events"], a["detail"]))
        failed += bool(diff)
    return failed, partial


def cases(tracectl, where):
    failed = 0
    for name in sorted(os.listdir(where)):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(where, name)) as f:
            case = json.load(f)
        with tempfile.TemporaryDirectory() as d:
            bad, _ = compare(tracectl, d, [(b["as_of"], b["events"])
                                           for b in case["batches"]],
                             name[:-5])
        failed += bad
    print("PASS" if not failed else "FAIL")
    sys.exit(1 if failed else 0)


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    tracectl = args[0]
    if len(args) == 3 and args[1] == "--cases":
        cases(tracectl, args[2])
    opt = {"--seed": 7, "--days": 12, "--late": 15, "--regime": "CN"}
    for i in range(1, len(args) - 1, 2):
        opt[args[i]] = args[i + 1] if args[i] == "--regime" else \
            int(args[i + 1])
    regime = opt["--regime"]
    if regime == "CN":
        sc = scenarios.build(opt["--seed"], 60, 4)
    else:   # the regime's scenario, its late records as history too
        sc = scenarios.build_regime(opt["--seed"], regime, 60, 4)
        sc.lines += sc.recent
    rng = random.Random(opt["--seed"])
    regs = [e for e in sc.lines if e["type"] == "party"]
    rest = sorted((e for e in sc.lines if e["type"] != "party"),
                  key=lambda e: e["at"])
    # days: the span of `at` cut into --days batches
    t0 = datetime.fromisoformat(rest[0]["at"])
    t1 = datetime.fromisoformat(rest[-1]["at"])
    step = (t1 - t0) / opt["--days"]
    batches = [[] for _ in range(opt["--days"] + 1)]
    ends = [t0 + step * (k + 1) for k in range(opt["--days"] + 1)]
    ends[-1] = t1 + timedelta(days=30)
    # a carrier's record cites a recorded sale, and a later carrier's the
    # handover to it: custody comes no earlier than the sale and the
    # custody records before it (batch of the sale's chain so far)
    chain = {}
    for e in rest:
        k = min(int((datetime.fromisoformat(e["at"]) - t0) / step),
                opt["--days"])
        # an application is never late: an answer must find it recorded
        if (rng.random() * 100 < opt["--late"] and
                e["type"] != "permit_application"):
            k = min(k + rng.randint(1, 5), opt["--days"])
        if e["type"] == "sale":
            chain[(e["party"], e["id"])] = k
        elif e["type"] in ("pickup", "handover", "delivery"):
            ref = (e["ref"]["party"], e["ref"]["id"])
            k = max(k, chain.get(ref, 0))
            chain[ref] = k
        batches[k].append(e)
    batches[0] = regs + batches[0]

    with tempfile.TemporaryDirectory() as d:
        failed, partial = compare(
            tracectl, d, [(ends[k].isoformat(), b)
                          for k, b in enumerate(batches)], "scenario",
            regime)
        last = run(tracectl, os.path.join(d, "A"), "reconcile", "--as-of",
                   ends[-1].isoformat())
        new = int(last.stderr.split("(")[1].split()[0])
        print("final full run over A: %s" % last.stderr.strip())
        if new:
            print("FAIL: the full run found %d alerts the incremental runs "
                  "missed" % new)
            failed += 1
        if partial < len(batches) - 1:
            print("FAIL: only %d of %d incremental runs read part of the "
                  "ledger" % (partial, len(batches) - 1))
            failed += 1
    print("PASS" if not failed else "FAIL")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
