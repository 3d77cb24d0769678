/*
 * `concur bench`: runs benchmark suites from the registry in
 * bench/suites.def and prints their figures as a table or as JSON.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "commands.h"
#include "concur/error.h"
#include "output.h"

static const bench_suite *const suites[] = {
#define CONCUR_BENCH_SUITE(name) &bench_suite_##name,
#include "suites.def"
#undef CONCUR_BENCH_SUITE
};

#define N_SUITES (sizeof suites / sizeof suites[0])

typedef struct bench_args {
    bool json, quick, list, help;
    const bench_suite *chosen[N_SUITES]; /* in the order named, no repeats */
    size_t n_chosen;
} bench_args;

static void usage(FILE *f)
{
    fputs("usage: concur bench [SUITE...] [--json] [--quick]\n"
          "       concur bench --list\n"
          "\n"
          "Runs micro-benchmarks, each against the baseline a C programmer\n"
          "would otherwise use, in the same run; reports medians and the\n"
          "speedup (baseline / concur). With no SUITE, runs them all.\n"
          "\n"
          "options:\n"
          "  --json    print {\"suite\": ..., \"results\": [...]} for one\n"
          "            suite, a JSON array of those for several\n"
          "  --quick   fewer and shorter runs: a smoke test, not a figure\n"
          "  --list    list the suites and their benchmarks\n"
          "  --help    this text\n",
          f);
}

static const bench_suite *find_suite(const char *name)
{
    for (size_t i = 0; i < N_SUITES; i++)
        if (strcmp(suites[i]->name, name) == 0)
            return suites[i];
    return NULL;
}

static void choose(bench_args *a, const bench_suite *s)
{
    for (size_t i = 0; i < a->n_chosen; i++)
        if (a->chosen[i] == s)
            return;
    a->chosen[a->n_chosen++] = s;
}

/* Checks the whole command line before anything runs, so a typo costs no
 * 20-second run. Returns TOOL_EXIT_OK or TOOL_EXIT_USAGE. */
static int parse(int argc, char **argv, bench_args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--json") == 0) {
            a->json = true;
        } else if (strcmp(arg, "--quick") == 0) {
            a->quick = true;
        } else if (strcmp(arg, "--list") == 0) {
            a->list = true;
        } else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            a->help = true;
        } else if (arg[0] == '-') {
            fprintf(stderr, "concur bench: unknown option '%s'\n"
                            "Try 'concur bench --help'.\n", arg);
            return TOOL_EXIT_USAGE;
        } else {
            const bench_suite *s = find_suite(arg);
            if (!s) {
                fprintf(stderr, "concur bench: unknown suite '%s' (known:",
                        arg);
                for (size_t k = 0; k < N_SUITES; k++)
                    fprintf(stderr, " %s", suites[k]->name);
                fputs("; see 'concur bench --list')\n", stderr);
                return TOOL_EXIT_USAGE;
            }
            choose(a, s);
        }
    }
    if (a->n_chosen == 0)
        for (size_t i = 0; i < N_SUITES; i++)
            choose(a, suites[i]);
    return TOOL_EXIT_OK;
}

static void list(void)
{
    for (size_t i = 0; i < N_SUITES; i++) {
        const bench_suite *s = suites[i];
        printf("%-10s %s\n", s->name, s->summary);
        for (size_t k = 0; k < s->n_cases; k++)
            printf("  %-20s %s vs %s (%s)\n", s->cases[k].name,
                   s->cases[k].concur.name, s->cases[k].baseline.name,
                   s->cases[k].unit);
    }
}

/*
 * Runs one suite into results (room for every case) and prints its table
 * rows as they come unless json. A failed case is reported on stderr and
 * left out; the others still run. Returns the number of results, and sets
 * *failed if anything failed.
 */
static size_t run_suite(const bench_suite *s, const bench_config *cfg,
                        bool json, bench_result *results, bool *failed)
{
    void *state = NULL;
    const char *skip_reason = "not available here";
    size_t n = 0;

    if (s->setup) {
        int rc = s->setup(&state, &skip_reason);
        if (rc == BENCH_SKIPPED) {
            fprintf(stderr, "concur bench: %s skipped: %s\n", s->name,
                    skip_reason);
            return 0;
        }
        if (rc < 0) {
            fprintf(stderr, "concur bench: %s: setup failed: %s\n", s->name,
                    cc_strerror(rc));
            *failed = true;
            return 0;
        }
    }
    if (!json)
        table_begin(stdout, s->name, cfg);
    for (size_t k = 0; k < s->n_cases; k++) {
        const char *side = "?";
        int rc = bench_measure(cfg, &s->cases[k], state, &results[n], &side);
        if (rc < 0) {
            fprintf(stderr, "concur bench: %s/%s: %s failed: %s\n", s->name,
                    s->cases[k].name, side, cc_strerror(rc));
            *failed = true;
            continue;
        }
        if (!json)
            table_row(stdout, &results[n]);
        n++;
    }
    if (s->teardown)
        s->teardown(state);
    return n;
}

int cmd_bench(int argc, char **argv)
{
    bench_args a = {0};
    int rc = parse(argc, argv, &a);
    if (rc != TOOL_EXIT_OK)
        return rc;
    if (a.help) {
        usage(stdout);
        return TOOL_EXIT_OK;
    }
    if (a.list) {
        list();
        return TOOL_EXIT_OK;
    }

    bench_config cfg = bench_config_default(a.quick);
    bool failed = false;
    bool array = a.json && a.n_chosen > 1;
    if (array)
        fputs("[\n", stdout);
    for (size_t i = 0; i < a.n_chosen; i++) {
        const bench_suite *s = a.chosen[i];
        bench_result *results = calloc(s->n_cases ? s->n_cases : 1,
                                       sizeof *results);
        if (!results) {
            fputs("concur bench: out of memory\n", stderr);
            return TOOL_EXIT_FAILED;
        }
        size_t n = run_suite(s, &cfg, a.json, results, &failed);
        if (a.json) {
            json_suite(stdout, s->name, results, n);
            fputs(array && i + 1 < a.n_chosen ? ",\n" : "\n", stdout);
            fflush(stdout);
        }
        free(results);
    }
    if (array)
        fputs("]\n", stdout);
    else if (!a.json)
        table_legend(stdout);
    return failed ? TOOL_EXIT_FAILED : TOOL_EXIT_OK;
}
