/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tracectl - the command line for every user of the ledger.
 *
 * Uses only libtrace's public API.  One table (commands[] in cli.c)
 * drives dispatch, usage lines and help, so they cannot drift apart.
 * Exit codes follow SPEC section 5: 0 ok, 1 usage, 2 rejected input,
 * 3 verification failed, 4 not found, 5 permission denied,
 * 6 unavailable.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tracectl.h"

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},
        {"connect", required_argument, NULL, 'c'},
        {"keys", required_argument, NULL, 'k'},
        {"as", required_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"timeout", required_argument, NULL, 't'},
        {"tls-ca", required_argument, NULL, 'C'},
        {"tls-cert", required_argument, NULL, 'T'},
        {"lang", required_argument, NULL, 'L'},
        {0}};
    struct globals g = {0};
    int c;

    ctl_out = stdout;
    ctl_err = stderr;
    signal(SIGPIPE, SIG_IGN);
    g.data = getenv("TRACE_DATA");
    g.lang = ctl_lang_of_locale();
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            g.data = optarg;
            break;
        case 'c':
            g.connect = optarg;
            break;
        case 'k':
            g.keys = optarg;
            break;
        case 'a':
            g.as = optarg;
            break;
        case 'j':
            g.json = 1;
            break;
        case 'h':
            ctl_main_usage(ctl_out);
            return 0;
        case 't':
            g.timeout_ms = atoi(optarg) * 1000;
            if (g.timeout_ms <= 0) {
                fprintf(ctl_err, "tracectl: --timeout: seconds > 0\n");
                return EXIT_USAGE;
            }
            break;
        case 'C':
            g.tls_ca = optarg;
            break;
        case 'T':
            g.tls_cert = optarg;
            break;
        case 'V':
            fprintf(ctl_out, "tracectl %s\n", TRACE_VERSION_STRING);
            return 0;
        case 'L':
            if (strcmp(optarg, "zh") == 0) {
                g.lang = OPS_LANG_ZH;
            } else if (strcmp(optarg, "en") == 0) {
                g.lang = OPS_LANG_EN;
            } else {
                fprintf(ctl_err, "tracectl: --lang: zh or en, not %s\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        default:
            ctl_main_usage(ctl_err);
            return EXIT_USAGE;
        }
    }
    if (!g.data || !g.data[0])
        g.data = "ledger";
    if (g.as && !trace_party_id_valid(g.as)) {
        fprintf(ctl_err, "tracectl: --as: invalid party id %s\n", g.as);
        return EXIT_USAGE;
    }
    if (optind >= argc) {
        ctl_main_usage(ctl_err);
        return EXIT_USAGE;
    }
    if (!g.connect)
        g.connect = getenv("TRACE_CONNECT");
    if (g.connect && !g.connect[0])
        g.connect = NULL;
    return ctl_dispatch(&g, argc - optind, argv + optind);
}
