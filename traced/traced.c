/* SPDX-License-Identifier: Apache-2.0 */
/*
 * traced - the ledger daemon: authenticated requests over nng REQ/REP,
 * group commit, signed journal heads and notices of new alerts over PUB,
 * nightly reconciliation.
 *
 *   traced --data DIR --listen URL [--listen URL ...] [--pub URL]
 *          [--config FILE] [--KEY VALUE ...]
 *
 * Settings come from the table in config.c: defaults, then the config
 * file, then the command line.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>

#include "trace/trace.h"
#include "traced.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: traced --data DIR --listen URL [--listen URL ...] "
            "[--pub URL]\n"
            "              [--config FILE] [--check-config] [--KEY VALUE "
            "...]\n\n"
            "Serves a ledger folder to tracectl --connect and other clients:\n"
            "every request is signed by a registered party and checked "
            "against\nits rights; appends of concurrent clients share one "
            "durable commit.\nSIGTERM or SIGINT: finish what is in flight "
            "and exit 0.\n\n"
            "Options (also as `key = value` lines of --config FILE):\n");
    config_help(f);
    fprintf(f, "\n  --config FILE              read settings from FILE first\n"
               "  --check-config             print the settings in effect "
               "and exit\n"
               "  --help, --version\n\n"
               "Example:\n"
               "  traced --data ledger --listen ipc:///tmp/traced.ipc "
               "--listen tcp://127.0.0.1:7700 \\\n"
               "         --pub tcp://127.0.0.1:7701\n");
}

int main(int argc, char **argv)
{
    struct config cfg;
    char err[512];
    int check = 0, status;

    config_defaults(&cfg);
    /* the config file first, so the command line overrides it */
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "traced: --config needs a FILE\n");
                return 1;
            }
            if (config_load(&cfg, argv[i + 1], err, sizeof(err)) != 0) {
                fprintf(stderr, "traced: %s\n", err);
                config_free(&cfg);
                return 1;
            }
        }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            config_free(&cfg);
            return 0;
        }
        if (strcmp(a, "--version") == 0) {
            printf("traced %s\n", TRACE_VERSION_STRING);
            config_free(&cfg);
            return 0;
        }
        if (strcmp(a, "--check-config") == 0) {
            check = 1;
            continue;
        }
        if (strcmp(a, "--config") == 0) {
            i++;
            continue;
        }
        if (strncmp(a, "--", 2) != 0 || !config_known(a + 2)) {
            fprintf(stderr, "traced: unknown option %s (see traced --help)\n",
                    a);
            config_free(&cfg);
            return 1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "traced: %s needs a value\n", a);
            config_free(&cfg);
            return 1;
        }
        if (config_set(&cfg, a + 2, argv[i + 1], err, sizeof(err)) != 0) {
            fprintf(stderr, "traced: %s\n", err);
            config_free(&cfg);
            return 1;
        }
        i++;
    }
    if (config_check(&cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "traced: %s\n", err);
        config_free(&cfg);
        return 1;
    }
    if (check) {
        config_print(stdout, &cfg);
        config_free(&cfg);
        return 0;
    }
    log_init(cfg.log_level, (int)cfg.syslog);
    /* Requests come and go in buffers of megabytes: keep them in the heap
     * for reuse rather than mapping and faulting in fresh pages for each
     * (the heap stays bounded by contexts x max-message). */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    status = server_run(&cfg);
    config_free(&cfg);
    nng_fini(); /* nng's own threads and resources, before exit */
    return status;
}
