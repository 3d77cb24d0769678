/*
 * output.h — the two ways `concur` prints results: an aligned table for
 * people and JSON for scripts. Numbers are printed in the C locale.
 */
#ifndef CONCUR_TOOL_OUTPUT_H
#define CONCUR_TOOL_OUTPUT_H

#include <stddef.h>
#include <stdio.h>

#include "bench.h"

/* The heading of one suite's table: its name, how it was measured, and the
 * column titles. */
void table_begin(FILE *f, const char *suite, const bench_config *cfg);
/* One row, flushed at once so a long run shows progress. */
void table_row(FILE *f, const bench_result *r);
/* What the columns mean, after the last suite. */
void table_legend(FILE *f);

/* A JSON string literal, escaped. */
void json_string(FILE *f, const char *s);
/* {"suite": ..., "results": [...]} without a trailing newline. */
void json_suite(FILE *f, const char *suite, const bench_result *results,
                size_t n);

#endif /* CONCUR_TOOL_OUTPUT_H */
