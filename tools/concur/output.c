/*
 * Table and JSON writers for `concur bench` (and later `concur compare`).
 */
#include "output.h"

#include <math.h>
#include <unistd.h>

void table_begin(FILE *f, const char *suite, const bench_config *cfg)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    fprintf(f, "\nsuite %s: median of %d runs per side, %ld CPU%s%s\n",
            suite, cfg->rounds, cpus, cpus == 1 ? "" : "s",
            cfg->quick ? ", quick" : "");
    fprintf(f, "%-18s %-12s %9s  %-19s %9s %8s  %-11s  %s\n", "benchmark",
            "unit", "concur", "baseline", "baseline", "speedup",
            "round range", "budget");
    fflush(f);
}

void table_row(FILE *f, const bench_result *r)
{
    const char *verdict = r->speedup >= r->budget ? "pass" : "FAIL";
    char range[48];
    snprintf(range, sizeof range, "%.2f-%.2f", r->speedup_low,
             r->speedup_high);
    fprintf(f, "%-18s %-12s %9.2f  %-19s %9.2f %7.2fx  %-11s  >=%.2f %s\n",
            r->name, r->unit, r->concur, r->baseline_name, r->baseline,
            r->speedup, range, r->budget, verdict);
    fflush(f);
}

void table_legend(FILE *f)
{
    fputs("\nspeedup = baseline / concur (medians): above 1 concur is faster.\n"
          "round range = lowest and highest speedup of a single round, where "
          "both sides\nran back to back; a wide range means a noisy machine.\n"
          "Budgets are reported, never enforced.\n",
          f);
}

void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* JSON has no NaN or infinity; a figure that is not finite is unknown. */
static void json_number(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.6g", v);
    else
        fputs("null", f);
}

void json_suite(FILE *f, const char *suite, const bench_result *results,
                size_t n)
{
    fputs("{\"suite\": ", f);
    json_string(f, suite);
    fputs(", \"results\": [", f);
    for (size_t i = 0; i < n; i++) {
        const bench_result *r = &results[i];
        fputs(i ? ",\n  {\"name\": " : "\n  {\"name\": ", f);
        json_string(f, r->name);
        fputs(", \"unit\": ", f);
        json_string(f, r->unit);
        fputs(", \"concur\": ", f);
        json_number(f, r->concur);
        fputs(", \"baseline_name\": ", f);
        json_string(f, r->baseline_name);
        fputs(", \"baseline\": ", f);
        json_number(f, r->baseline);
        fputs(", \"speedup\": ", f);
        json_number(f, r->speedup);
        fputc('}', f);
    }
    fputs(n ? "\n]}" : "]}", f);
}
