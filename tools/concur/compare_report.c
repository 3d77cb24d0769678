/*
 * What `concur compare` prints: a table and a verdict per workload, the
 * JSON document (schema in docs/choosing.md), the SVG chart, and the
 * progress bar. Numbers are printed in the C locale (the tool never calls
 * setlocale).
 */
#include "compare.h"

#include <math.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "concur.h"
#include "output.h"

/* ---- the machine -------------------------------------------------------- */

double cmp_load_average(void)
{
    double load = NAN;
    FILE *f = fopen("/proc/loadavg", "re");
    if (f) {
        if (fscanf(f, "%lf", &load) != 1)
            load = NAN;
        fclose(f);
    }
    return load;
}

void cmp_machine_probe(cmp_machine *m)
{
    memset(m, 0, sizeof *m);
    m->load_before = cmp_load_average();
    m->load_after = NAN;
    m->cpus = sysconf(_SC_NPROCESSORS_ONLN);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0)
        m->memory_gib = (double)pages * (double)page / (1024.0 * 1024 * 1024);
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(m->kernel, sizeof m->kernel, "%s %s %s", u.sysname, u.release,
                 u.machine);
    FILE *f = fopen("/proc/cpuinfo", "re");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0)
            continue;
        const char *v = strchr(line, ':');
        if (v) {
            v += 1 + (v[1] == ' ');
            snprintf(m->cpu_model, sizeof m->cpu_model, "%.*s",
                     (int)strcspn(v, "\n"), v);
        }
        break;
    }
    if (f)
        fclose(f);
}

/* ---- numbers for people ------------------------------------------------- */

static void fmt_wall(char *out, size_t cap, double s)
{
    if (s < 1.0)
        snprintf(out, cap, "%.1f ms", s * 1e3);
    else
        snprintf(out, cap, "%.2f s", s);
}

/* The fastest and slowest run, compact: "167-378 ms", "1.01-1.03 s". */
static void fmt_range(char *out, size_t cap, double lo, double hi)
{
    if (hi >= 1.0)
        snprintf(out, cap, "%.2f-%.2f s", lo, hi);
    else if (hi >= 0.01)
        snprintf(out, cap, "%.0f-%.0f ms", lo * 1e3, hi * 1e3);
    else
        snprintf(out, cap, "%.1f-%.1f ms", lo * 1e3, hi * 1e3);
}

/* A ratio with two significant digits at least: 0.0031, 0.93, 1.95, 45.2. */
static void fmt_ratio(char *out, size_t cap, double r)
{
    if (!isfinite(r))
        snprintf(out, cap, "?");
    else if (r >= 100)
        snprintf(out, cap, "%.0f", r);
    else if (r >= 10)
        snprintf(out, cap, "%.1f", r);
    else if (r >= 1)
        snprintf(out, cap, "%.2f", r);
    else
        snprintf(out, cap, "%.2g", r);
}

/* Above this share of the CPUs taken by other processes during a run, its
 * row says so: a CPU-bound speedup then reads low. */
#define BUSY_SHARE 0.10

static bool busy(const cmp_result *r)
{
    return r->ok && isfinite(r->others) && r->others > BUSY_SHARE;
}

/* The largest share of the CPUs others took during a busy row of wr, or
 * 0 when no row was disturbed. */
static double disturbed(const cmp_workload_result *wr)
{
    double most = 0;
    for (size_t i = 0; i < wr->n_rows; i++)
        if (busy(&wr->rows[i]) && wr->rows[i].others > most)
            most = wr->rows[i].others;
    return most;
}

static const cmp_result *row(const cmp_workload_result *wr, cmp_model m)
{
    for (size_t i = 0; i < wr->n_rows; i++)
        if (wr->rows[i].model == m && wr->rows[i].ok)
            return &wr->rows[i];
    return NULL;
}

/* ---- the verdict -----------------------------------------------------------
 * One line: the winner against sequential, then what explains the other
 * rows (the pool's width for waiting work, start-up and copying for the
 * process pool, one thread for the event loop), then Python's line. */

#define ADD(...)                                                               \
    do {                                                                       \
        size_t used_ = strlen(v);                                              \
        snprintf(v + used_, cap - used_, __VA_ARGS__);                         \
    } while (0)

static void verdict_c(cmp_workload_result *wr, char *v, size_t cap)
{
    const cmp_result *seq = row(wr, CMP_SEQUENTIAL);
    const cmp_result *best = NULL;
    for (size_t i = 0; i < wr->n_rows; i++) {
        const cmp_result *r = &wr->rows[i];
        if (r->ok && !cmp_model_is_python(r->model) &&
            (!best || r->wall_s < best->wall_s))
            best = r;
    }
    char a[32], b[32];
    if (!seq || !best) {
        ADD("no verdict: %s", seq ? "no model ran"
                                  : "sequential failed, so there is no "
                                    "baseline");
        return;
    }
    if (best == seq || best->speedup < 1.1) {
        /* Within the noise of one run: no winner worth naming. */
        ADD("nothing beat sequential by 10%% or more%s",
            disturbed(wr) ? ""
                          : " (the tasks may be too small for the cost of "
                            "starting threads or workers)");
    } else {
        fmt_ratio(a, sizeof a, best->speedup);
        ADD("%s: %s× faster than sequential", cmp_model_name(best->model), a);
    }
    bool io = wr->w->kind == CMP_IO_BOUND;
    const cmp_result *th = row(wr, CMP_THREADS);
    const cmp_result *tp = row(wr, CMP_THREAD_POOL);
    const cmp_result *pp = row(wr, CMP_PROCESS_POOL);
    const cmp_result *as = row(wr, CMP_ASYNC);
    if (io && tp && best != tp && tp->workers < wr->params.tasks) {
        fmt_ratio(a, sizeof a, best->wall_s / tp->wall_s);
        ADD("; thread_pool %s× of %s: its %u workers wait %u at a time", a,
            cmp_model_name(best->model), tp->workers, tp->workers);
    }
    if (pp && tp) {
        double ratio = tp->wall_s / pp->wall_s;
        fmt_ratio(a, sizeof a, ratio);
        if (io && pp->workers < tp->workers)
            ADD("; process_pool %s× of thread_pool: %u worker processes "
                "wait %u at a time, and each costs a process",
                a, pp->workers, pp->workers);
        else if (ratio < 0.95)
            ADD("; process_pool %s× of thread_pool because of start-up and "
                "copying",
                a);
        else
            ADD("; process_pool %s× of thread_pool: its start-up and copying "
                "cost little here",
                a);
    }
    if (as && wr->w->kind == CMP_USER) {
        fmt_ratio(a, sizeof a, as->speedup);
        ADD("; async %s×: the function runs on the loop's thread, one call "
            "at a time",
            a);
    } else if (as && !io) {
        fmt_ratio(a, sizeof a, as->speedup);
        ADD("; async %s×: one thread runs CPU work one task at a time", a);
    } else if (as && io && th) {
        fmt_ratio(a, sizeof a, th->wall_s / as->wall_s);
        fmt_ratio(b, sizeof b,
                  th->peak_mib > 0 && as->peak_mib > 0
                      ? th->peak_mib / as->peak_mib
                      : NAN);
        ADD("; async %s× of threads on one thread", a);
        if (as->peak_mib > 0 && th->peak_mib >= 1.2 * as->peak_mib)
            ADD(", with %s× less memory", b);
    }
}

static void verdict_python(cmp_workload_result *wr, char *v, size_t cap)
{
    const cmp_result *ps = row(wr, CMP_PY_SEQUENTIAL);
    const cmp_result *seq = row(wr, CMP_SEQUENTIAL);
    if (!ps)
        return;
    char a[32];
    ADD("; Python:");
    const char *sep = "";
    static const cmp_model pys[] = {CMP_PY_THREAD_POOL, CMP_PY_PROCESS_POOL,
                                    CMP_PY_ASYNC};
    for (size_t k = 0; k < 3; k++) {
        const cmp_result *r = row(wr, pys[k]);
        if (!r)
            continue;
        double ratio = ps->wall_s / r->wall_s;
        fmt_ratio(a, sizeof a, ratio);
        ADD("%s %s %s× of py_sequential", sep, cmp_model_name(pys[k]), a);
        if (pys[k] == CMP_PY_THREAD_POOL && wr->w->kind == CMP_CPU_BOUND &&
            ratio < 1.3)
            ADD(" (the GIL)");
        sep = ",";
    }
    if (seq && ps->wall_s >= 1.5 * seq->wall_s) {
        fmt_ratio(a, sizeof a, ps->wall_s / seq->wall_s);
        ADD("%s C sequential %s× faster than py_sequential", sep, a);
    } else if (seq) {
        ADD("%s C and Python sequential level: the waiting dominates", sep);
    }
}

void cmp_verdict(cmp_workload_result *wr, long cpus)
{
    (void)cpus;
    char *v = wr->verdict;
    size_t cap = sizeof wr->verdict;
    v[0] = 0;
    verdict_c(wr, v, cap);
    verdict_python(wr, v, cap);
    double most = disturbed(wr);
    if (most > 0) {
        size_t used = strlen(v);
        snprintf(v + used, cap - used,
                 "; other processes took up to %.0f%% of the CPUs during "
                 "these runs: run again on a quiet machine",
                 most * 100);
    }
}

#undef ADD

/* ---- the table ---------------------------------------------------------- */

static void describe_params(char *out, size_t cap,
                            const cmp_workload_result *wr)
{
    const cmp_params *p = &wr->params;
    int n = snprintf(out, cap, "%llu tasks", (unsigned long long)p->tasks);
    if (wr->w->size_unit && n >= 0 && (size_t)n < cap)
        n += snprintf(out + n, cap - (size_t)n, ", size %llu (%s)",
                      (unsigned long long)p->size, wr->w->size_unit);
    if (wr->w->default_latency_ns && n >= 0 && (size_t)n < cap)
        n += snprintf(out + n, cap - (size_t)n, ", latency %g ms",
                      (double)p->latency_ns / 1e6);
    if (p->workers && n >= 0 && (size_t)n < cap)
        snprintf(out + n, cap - (size_t)n, ", %u pool workers", p->workers);
}

static void row_note(char *out, size_t cap, const cmp_result *r)
{
    if (busy(r))
        snprintf(out, cap, "busy: others took %.0f%% of the CPUs%s%s",
                 r->others * 100, r->note[0] ? "; " : "", r->note);
    else
        snprintf(out, cap, "%s", r->note);
}

void cmp_table(FILE *f, const cmp_workload_result *wr, long cpus, int runs)
{
    char params[200];
    describe_params(params, sizeof params, wr);
    const cmp_workload *w = wr->w;
    if (wr->params.lib[0])
        fprintf(f, "\n%s — %s %s:%s; %s; %ld CPU%s\n", w->name,
                cmp_kind_text(w->kind), wr->params.lib, wr->params.sym, params,
                cpus, cpus == 1 ? "" : "s");
    else
        fprintf(f, "\n%s — %s: %s; %s; %ld CPU%s\n", w->name,
                cmp_kind_text(w->kind), w->summary, params, cpus,
                cpus == 1 ? "" : "s");
    fprintf(f, "  %-16s %7s %11s %9s %8s %10s  %s\n", "model", "workers",
            "wall", "speedup", "CPU use", "peak mem", runs > 1 ? "runs" : "");
    for (size_t i = 0; i < wr->n_rows; i++) {
        const cmp_result *r = &wr->rows[i];
        const char *name = cmp_model_name(r->model);
        if (!r->available) {
            fprintf(f, "  %-16s %7s %11s %9s %8s %10s  unavailable: %s\n", name,
                    "-", "-", "-", "-", "-", r->note);
            continue;
        }
        if (!r->ok) {
            fprintf(f, "  %-16s %7s %11s %9s %8s %10s  FAILED: %s\n", name, "-",
                    "-", "-", "-", "-", r->note);
            continue;
        }
        char wall[32], sp[32], range[48] = "", note[480];
        row_note(note, sizeof note, r);
        fmt_wall(wall, sizeof wall, r->wall_s);
        fmt_ratio(sp, sizeof sp, r->speedup);
        if (runs > 1)
            fmt_range(range, sizeof range, r->runs_min_s, r->runs_max_s);
        /* The range is padded only when a note follows it. */
        fprintf(f, "  %-16s %7u %11s %8s× %7.0f%% %6.1f MiB%s%-*s%s%s\n", name,
                r->workers, wall, sp, r->cpu_util * 100, r->peak_mib,
                range[0] ? "  " : "", note[0] && range[0] ? 13 : 0, range,
                note[0] ? "  " : "", note);
    }
    fprintf(f, "  verdict: %s\n", wr->verdict);
    fflush(f);
}

void cmp_stats_table(FILE *f, const cmp_workload_result *wr)
{
    bool any = false;
    for (size_t i = 0; i < wr->n_rows; i++) {
        const cmp_result *r = &wr->rows[i];
        const cmp_pool_stats *s = &r->stats;
        if (!s->valid) /* failed rows too: their restarts are the news */
            continue;
        if (!any)
            fprintf(f, "  %-16s %9s %9s %6s %9s %6s %6s %8s\n",
                    "pool statistics", "submitted", "completed", "failed",
                    "cancelled", "stolen", "queued", "restarts");
        any = true;
        char stolen[24] = "-";
        if (s->stealing)
            snprintf(stolen, sizeof stolen, "%llu",
                     (unsigned long long)s->stolen);
        fprintf(f, "  %-16s %9llu %9llu %6llu %9llu %6s %6llu %8llu\n",
                cmp_model_name(r->model), (unsigned long long)s->submitted,
                (unsigned long long)s->completed,
                (unsigned long long)s->failed,
                (unsigned long long)s->cancelled, stolen,
                (unsigned long long)s->queued_after_submit,
                (unsigned long long)s->restarts);
    }
    fflush(f);
}

void cmp_table_legend(FILE *f, const cmp_options *o, const cmp_machine *m,
                      const cmp_workload_result *wrs, size_t n)
{
    size_t busy_rows = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < wrs[i].n_rows; k++)
            busy_rows += busy(&wrs[i].rows[k]);
    if (busy_rows)
        fprintf(f,
                "\nNote: other processes took more than %.0f%% of the %ld "
                "CPUs during %zu of the\nrows (marked busy; from "
                "/proc/stat): their CPU-bound speedups read low.\n",
                BUSY_SHARE * 100, m->cpus, busy_rows);
    fprintf(f,
            "\nwall      from the model's first call to its last (threads "
            "joined, pool or loop\n"
            "          freed)%s\n"
            "speedup   sequential's wall / this wall (py_* rows too: C "
            "sequential is the base)\n"
            "CPU use   user+system time of the run and of every process it "
            "started,\n"
            "          / (wall x CPUs): 100%% is every CPU busy for the "
            "whole run\n"
            "peak mem  growth of the measuring process's peak RSS during the "
            "run, plus the\n"
            "          peak RSS of each pool worker process\n"
            "%s"
            "Each model runs in a child process of its own. Timings vary "
            "between runs,\nmore so on a busy machine.\n",
            o->repeat > 1 ? ", the median of the runs" : "",
            o->repeat > 1 ? "runs      the fastest and the slowest run: how "
                            "far to trust the median\n"
                          : "");
    bool mpi = false;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < wrs[i].n_rows; k++)
            mpi |= wrs[i].rows[k].model == CMP_MPI && wrs[i].rows[k].available;
    if (mpi)
        fputs("mpi       measured first, in rank 0 itself (MPI does not "
              "survive a fork), on\n"
              "          one pool started once for the job: its wall leaves "
              "out MPI start-up;\n"
              "          CPU and memory count the ranks on this host\n",
              f);
    if (o->stats)
        fputs("\npool statistics (cc_executor_stats, read after the pool "
              "shut down; see\ndocs/observability.md): tasks submitted, "
              "completed, failed, cancelled;\nstolen: taken by a worker "
              "from another worker's queue (- : no stealing);\nqueued: "
              "tasks still waiting when the last one was submitted; "
              "restarts:\nworker processes that died and were replaced\n",
              f);
}

/* ---- JSON --------------------------------------------------------------- */

static void jnum(FILE *f, double v, const char *fmt)
{
    if (isfinite(v))
        fprintf(f, fmt, v);
    else
        fputs("null", f);
}

static void jstr_or_null(FILE *f, const char *s)
{
    if (s && *s)
        json_string(f, s);
    else
        fputs("null", f);
}

static void json_stats(FILE *f, const cmp_pool_stats *s)
{
    fprintf(f,
            ", \"stats\": {\"submitted\": %llu, \"completed\": %llu, "
            "\"failed\": %llu, \"cancelled\": %llu, \"stolen\": ",
            (unsigned long long)s->submitted, (unsigned long long)s->completed,
            (unsigned long long)s->failed, (unsigned long long)s->cancelled);
    if (s->stealing)
        fprintf(f, "%llu", (unsigned long long)s->stolen);
    else
        fputs("null", f);
    fprintf(f, ", \"queued_after_submit\": %llu, \"worker_restarts\": %llu}",
            (unsigned long long)s->queued_after_submit,
            (unsigned long long)s->restarts);
}

static void json_result(FILE *f, const cmp_result *r, bool stats)
{
    fputs("{\"model\": ", f);
    json_string(f, cmp_model_name(r->model));
    fprintf(f, ", \"python\": %s, \"available\": %s, \"ok\": %s",
            cmp_model_is_python(r->model) ? "true" : "false",
            r->available ? "true" : "false", r->ok ? "true" : "false");
    if (r->ok) {
        fprintf(f, ", \"workers\": %u, \"wall_s\": ", r->workers);
        jnum(f, r->wall_s, "%.6g");
        fputs(", \"speedup\": ", f);
        jnum(f, r->speedup, "%.6g");
        fputs(", \"cpu_s\": ", f);
        jnum(f, r->cpu_s, "%.6g");
        fputs(", \"cpu_utilisation\": ", f);
        jnum(f, r->cpu_util, "%.6g");
        fputs(", \"peak_mib\": ", f);
        jnum(f, r->peak_mib, "%.6g");
        fputs(", \"others_cpu\": ", f);
        jnum(f, r->others, "%.3g");
        fprintf(f, ", \"checksum\": %llu, \"runs_min_s\": ",
                (unsigned long long)r->checksum);
        jnum(f, r->runs_min_s, "%.6g");
        fputs(", \"runs_max_s\": ", f);
        jnum(f, r->runs_max_s, "%.6g");
    }
    if (stats && r->stats.valid)
        json_stats(f, &r->stats);
    fputs(", \"note\": ", f);
    jstr_or_null(f, r->note);
    fputc('}', f);
}

void cmp_json(FILE *f, const cmp_machine *m, const cmp_options *o,
              const cmp_workload_result *wrs, size_t n)
{
    fprintf(f, "{\"tool\": \"concur compare\", \"version\": \"%d.%d.%d\",\n",
            CONCUR_VERSION_MAJOR, CONCUR_VERSION_MINOR, CONCUR_VERSION_PATCH);
    fprintf(f, " \"machine\": {\"cpus\": %ld, \"cpu_model\": ", m->cpus);
    jstr_or_null(f, m->cpu_model);
    fputs(", \"kernel\": ", f);
    jstr_or_null(f, m->kernel);
    fprintf(f, ", \"memory_gib\": %.1f, \"load_average\": [", m->memory_gib);
    jnum(f, m->load_before, "%.2f");
    fputs(", ", f);
    jnum(f, m->load_after, "%.2f");
    fputs("], \"python\": ", f);
    jstr_or_null(f, cmp_python_version());
    fprintf(f, "},\n \"options\": {\"repeat\": %d, \"timeout_s\": %d},\n",
            o->repeat, o->timeout_s);
    fputs(" \"workloads\": [", f);
    for (size_t i = 0; i < n; i++) {
        const cmp_workload_result *wr = &wrs[i];
        const cmp_params *p = &wr->params;
        fputs(i ? ",\n  {\"name\": " : "\n  {\"name\": ", f);
        json_string(f, wr->w->name);
        fprintf(
            f, ", \"kind\": \"%s\", \"summary\": ", cmp_kind_json(wr->w->kind));
        json_string(f, wr->w->summary);
        fprintf(f,
                ", \"tasks\": %llu, \"size\": ", (unsigned long long)p->tasks);
        if (wr->w->size_unit)
            fprintf(f, "%llu", (unsigned long long)p->size);
        else
            fputs("null", f);
        fputs(", \"size_unit\": ", f);
        jstr_or_null(f, wr->w->size_unit);
        fputs(", \"latency_ms\": ", f);
        if (wr->w->default_latency_ns)
            fprintf(f, "%g", (double)p->latency_ns / 1e6);
        else
            fputs("null", f);
        fprintf(f, ", \"workers\": %u", p->workers);
        if (p->lib[0]) {
            fputs(", \"library\": ", f);
            json_string(f, p->lib);
            fputs(", \"function\": ", f);
            json_string(f, p->sym);
        }
        fputs(",\n   \"results\": [", f);
        for (size_t k = 0; k < wr->n_rows; k++) {
            fputs(k ? ",\n    " : "\n    ", f);
            json_result(f, &wr->rows[k], o->stats);
        }
        fputs("],\n   \"verdict\": ", f);
        json_string(f, wr->verdict);
        fputc('}', f);
    }
    fputs("\n]}\n", f);
    fflush(f);
}

/* ---- SVG -------------------------------------------------------------------
 * Grouped bars, one group per workload and one bar per model, on a log
 * scale of speedup that grows up from 1x (faster than sequential) or down
 * from it (slower). Self-contained: no script, no external font or style. */

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\n' || *s == '\t')
                fputc(*s, f);
        }
    }
}

/* Colour-blind-safe (Okabe-Ito) for C; muted for Python. */
static const char *const colours[CMP_N_MODELS] = {
    "#999999", "#E69F00", "#0072B2", "#D55E00", "#009E73",
    "#CC79A7", "#BBBBBB", "#56B4E9", "#F0A080", "#8FD9B6"};

/* The axis ends on the 1-2-5 steps just outside the values. */
static double step_below(double v)
{
    double p = pow(10, floor(log10(v)));
    return v >= 5 * p ? 5 * p : v >= 2 * p ? 2 * p : p;
}

static double step_above(double v)
{
    double p = pow(10, floor(log10(v)));
    return v <= p ? p : v <= 2 * p ? 2 * p : v <= 5 * p ? 5 * p : 10 * p;
}

int cmp_svg(FILE *f, const cmp_machine *m, const cmp_workload_result *wrs,
            size_t n)
{
    /* The models drawn: those with a measured speedup somewhere, except
     * sequential, which is the 1x line itself. */
    bool used[CMP_N_MODELS] = {0};
    double lo = 0.8, hi = 2.0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < wrs[i].n_rows; k++) {
            const cmp_result *r = &wrs[i].rows[k];
            if (!r->ok || !isfinite(r->speedup) || r->speedup <= 0 ||
                r->model == CMP_SEQUENTIAL)
                continue;
            used[r->model] = true;
            if (r->speedup < lo)
                lo = r->speedup;
            if (r->speedup > hi)
                hi = r->speedup;
        }
    /* Also list models that ran nowhere, so that a missing bar is
     * explained by the legend ("not measured"). */
    int nbars = 0;
    cmp_model order[CMP_N_MODELS];
    for (int k = 0; k < CMP_N_MODELS; k++) {
        bool present = false;
        for (size_t i = 0; i < n && !present; i++)
            for (size_t j = 0; j < wrs[i].n_rows; j++)
                present |= wrs[i].rows[j].model == (cmp_model)k;
        if ((used[k] || present) && k != CMP_SEQUENTIAL)
            order[nbars++] = (cmp_model)k;
    }
    /* Room beyond the longest bars for their turned labels. */
    double dlo = log10(step_below(lo / 2.5)), dhi = log10(step_above(hi * 2.5));
    const int bar_w = 18, gap = 28, left = 70, right = 20, top = 64,
              plot_h = 300, bottom = 70;
    int group_w = (nbars ? nbars : 1) * bar_w + gap;
    int plot_w = (int)n * group_w;
    int legend_rows = (nbars + 3) / 4;
    int width = left + plot_w + right;
    if (width < 640)
        width = 640;
    int height = top + plot_h + bottom + legend_rows * 18 + 10;
    double span = dhi - dlo;
    /* y of a speedup on the log axis */
#define Y(v) (top + plot_h - (log10(v) - dlo) / span * plot_h)

    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
            "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" "
            "font-size=\"12\">\n",
            width, height, width, height);
    fputs("<title>concur compare: speedup over sequential</title>\n", f);
    fprintf(f, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", width,
            height);
    fputs("<text x=\"12\" y=\"22\" font-size=\"15\" font-weight=\"bold\">"
          "concur compare: speedup over sequential (log scale; higher is "
          "faster)</text>\n",
          f);
    fprintf(f, "<text x=\"12\" y=\"42\" fill=\"#444\">%ld CPU%s", m->cpus,
            m->cpus == 1 ? "" : "s");
    if (m->cpu_model[0]) {
        fputs(", ", f);
        xml_text(f, m->cpu_model);
    }
    if (m->kernel[0]) {
        fputs(", ", f);
        xml_text(f, m->kernel);
    }
    fputs(". Bars grow up from 1× when faster than sequential, down when "
          "slower.</text>\n",
          f);

    /* Grid lines at 1, 2, 5 times each power of ten. */
    for (double d = floor(dlo); d <= dhi + 1e-9; d += 1) {
        static const double steps[] = {1, 2, 5};
        for (int s = 0; s < 3; s++) {
            double v = steps[s] * pow(10, d);
            if (log10(v) < dlo - 1e-9)
                continue;
            if (log10(v) > dhi + 1e-9)
                break;
            double y = Y(v);
            bool major = s == 0;
            fprintf(f,
                    "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
                    "stroke=\"%s\" stroke-width=\"1\"/>\n",
                    left, y, left + plot_w, y, major ? "#ccc" : "#eee");
            fprintf(f,
                    "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" "
                    "fill=\"#444\" font-size=\"11\">%g×</text>\n",
                    left - 6, y + 4, v);
        }
    }
    /* The axis, and the 1x line that sequential stands for. */
    fprintf(f,
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
            "stroke=\"#333\"/>\n",
            left, top, left, top + plot_h);
    fprintf(f,
            "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
            "stroke=\"#333\" stroke-width=\"1.5\"/>\n",
            left, Y(1.0), left + plot_w, Y(1.0));
    fprintf(f,
            "<text transform=\"translate(18 %d) rotate(-90)\" "
            "text-anchor=\"middle\" fill=\"#444\">speedup over "
            "sequential</text>\n",
            top + plot_h / 2);

    for (size_t i = 0; i < n; i++) {
        const cmp_workload_result *wr = &wrs[i];
        int gx = left + (int)i * group_w + gap / 2;
        for (int b = 0; b < nbars; b++) {
            int x = gx + b * bar_w;
            const cmp_result *r = NULL;
            for (size_t k = 0; k < wr->n_rows; k++)
                if (wr->rows[k].model == order[b])
                    r = &wr->rows[k];
            if (!r)
                continue;
            if (!r->ok || !isfinite(r->speedup) || r->speedup <= 0) {
                fprintf(f,
                        "<text transform=\"translate(%d %.1f) "
                        "rotate(-90)\" font-size=\"9\" fill=\"#888\">%s"
                        "</text>\n",
                        x + bar_w / 2 + 3, Y(1.0) - 4,
                        r->available ? "failed" : "n/a");
                continue;
            }
            double y1 = Y(1.0), y = Y(r->speedup);
            double ytop = y < y1 ? y : y1, h = fabs(y1 - y);
            if (h < 1)
                h = 1;
            char label[32];
            fmt_ratio(label, sizeof label, r->speedup);
            fprintf(f,
                    "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" "
                    "height=\"%.1f\" fill=\"%s\"><title>%s %s: %s× "
                    "(%.3f s)</title></rect>\n",
                    x + 1, ytop, bar_w - 2, h, colours[r->model], wr->w->name,
                    cmp_model_name(r->model), label, r->wall_s);
            /* The value beside the bar's end, turned to fit. */
            bool up = r->speedup >= 1;
            fprintf(f,
                    "<text transform=\"translate(%d %.1f) rotate(-90)\" "
                    "font-size=\"9\" fill=\"#222\" text-anchor=\"%s\">"
                    "%s×</text>\n",
                    x + bar_w / 2 + 3, up ? y - 3 : y + 3, up ? "start" : "end",
                    label);
        }
        fprintf(f,
                "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" "
                "font-weight=\"bold\">",
                gx + nbars * bar_w / 2, top + plot_h + 18);
        xml_text(f, wr->w->name);
        fprintf(f,
                "</text>\n<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" "
                "fill=\"#666\" font-size=\"10\">%s</text>\n",
                gx + nbars * bar_w / 2, top + plot_h + 32,
                cmp_kind_text(wr->w->kind));
    }

    /* The legend, four models a row. */
    int ly = top + plot_h + bottom - 16;
    for (int b = 0; b < nbars; b++) {
        int lx = left + (b % 4) * 150, y = ly + (b / 4) * 18;
        fprintf(f,
                "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" "
                "fill=\"%s\"/>\n<text x=\"%d\" y=\"%d\">%s%s</text>\n",
                lx, y, colours[order[b]], lx + 17, y + 10,
                cmp_model_name(order[b]), used[order[b]] ? "" : " (n/a)");
    }
    fputs("</svg>\n", f);
#undef Y
    fflush(f);
    return ferror(f) ? -EIO : 0;
}

/* ---- progress ----------------------------------------------------------- */

static struct {
    bool on;
    size_t total, done;
} progress;

void cmp_progress_begin(bool enabled, size_t total)
{
    progress.on = enabled && isatty(STDERR_FILENO);
    progress.total = total ? total : 1;
    progress.done = 0;
}

void cmp_progress_step(const char *workload, const char *model)
{
    if (!progress.on)
        return;
    enum { WIDTH = 30 };
    size_t filled = progress.done * WIDTH / progress.total;
    char bar[WIDTH + 1];
    for (size_t i = 0; i < WIDTH; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[WIDTH] = 0;
    fprintf(stderr, "\r[%s] %zu/%zu %s: %s\033[K", bar, progress.done + 1,
            progress.total, workload, model);
    fflush(stderr);
    progress.done++;
}

void cmp_progress_clear(void)
{
    if (progress.on) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
}
