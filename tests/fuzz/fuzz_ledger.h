/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_ledger.h - a temporary ledger shared by a fuzz target's runs. */
#ifndef FUZZ_LEDGER_H
#define FUZZ_LEDGER_H

#include "trace/trace.h"

/* Creates the ledger on first use (in /tmp, removed at exit). */
trace_ledger *fuzz_ledger(void);

#endif
