/* SPDX-License-Identifier: Apache-2.0 */
/* bench_util.h - what the benchmark programs share. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

/* Monotonic seconds. */
double bench_now(void);
/* Removes a folder tree (the bench's own temporary ledger). */
void bench_rmtree(const char *dir);

#endif
