#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Per-party hash chains computed by a client, for the side-by-side
benchmarks (baseline.sh, w2base.sh): each event's hash is
SHA-256(previous hash of its party || its JSON line).

    chain.py csv FILE [STATE]       CSV rows (party, party_seq, prev, hash,
                                    body) for PostgreSQL's COPY; STATE keeps
                                    the parties' heads between files
    chain.py trigger-csv FILE       CSV rows (party, body): the trigger chains
    chain.py sqlite DB BATCH FILE...  loads into SQLite (WAL,
                                    synchronous=FULL), a durable transaction
                                    per BATCH lines (0: one per file); prints
                                    events/s
"""
import csv
import hashlib
import json
import os
import sqlite3
import sys
import time


def rows(path, heads):
    for line in open(path):
        body = line.rstrip("\n")
        party = json.loads(body)["party"]
        seq, prev = heads.get(party, (0, b"\0" * 32))
        h = hashlib.sha256(prev + body.encode()).digest()
        heads[party] = (seq + 1, h)
        yield party, seq + 1, prev, h, body


def to_csv(path, state):
    heads = {}
    if state and os.path.exists(state):
        heads = {k: (v[0], bytes.fromhex(v[1]))
                 for k, v in json.load(open(state)).items()}
    w = csv.writer(sys.stdout)
    for party, seq, prev, h, body in rows(path, heads):
        w.writerow([party, seq, "\\x" + prev.hex(), "\\x" + h.hex(), body])
    if state:
        json.dump({k: [v[0], v[1].hex()] for k, v in heads.items()},
                  open(state, "w"))


def trigger_csv(path):
    w = csv.writer(sys.stdout)
    for line in open(path):
        w.writerow([json.loads(line)["party"], line.rstrip("\n")])


def to_sqlite(db_path, batch, paths):
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE ev (seq INTEGER PRIMARY KEY, party TEXT NOT NULL, "
               "party_seq INTEGER NOT NULL, prev BLOB NOT NULL, "
               "hash BLOB NOT NULL, body TEXT NOT NULL, "
               "UNIQUE (party, party_seq))")
    heads, n = {}, 0
    t0 = time.time()

    def commit(rs):
        db.execute("BEGIN")
        db.executemany("INSERT INTO ev (party, party_seq, prev, hash, body) "
                       "VALUES (?, ?, ?, ?, ?)", rs)
        db.execute("COMMIT")

    for path in paths:
        pending = []
        for r in rows(path, heads):
            pending.append(r)
            if batch and len(pending) == batch:
                commit(pending)
                n += len(pending)
                pending = []
        if pending:
            commit(pending)
            n += len(pending)
    print(round(n / (time.time() - t0)))


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "csv":
        to_csv(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
    elif mode == "trigger-csv":
        trigger_csv(sys.argv[2])
    elif mode == "sqlite":
        to_sqlite(sys.argv[2], int(sys.argv[3]), sys.argv[4:])
    else:
        sys.exit(__doc__)
