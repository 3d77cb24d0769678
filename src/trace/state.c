/*
 * state.c — the trace module's global switches, and the environment
 * variables that turn features on when the library is loaded.
 *
 * The switches live here, in the file every hook refers to, so that a
 * program linked against the static library always pulls in this file and
 * its constructor: CONCUR_DEBUG and friends work without any code change.
 * The constructor starts no thread except the SIGQUIT printer when asked;
 * the deadlock watchdog, if asked for, starts at the first debug-mode lock
 * acquire (a program that forks a clean launcher first stays clean).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "trace/trace_internal.h"

uint32_t cci_debug_state;
uint32_t cci_trace_state;
uint32_t cci_names_used;

void cci_lockdep_atfork_prepare(void);
void cci_lockdep_atfork_parent(void);
void cci_lockdep_atfork_child(void);
void cci_dump_atfork_prepare(void);
void cci_dump_atfork_parent(void);
void cci_dump_atfork_child(void);
void cci_timeline_atfork_prepare(void);
void cci_timeline_atfork_parent(void);
void cci_timeline_atfork_child(void);

/* One handler set for the module, so the lock order at fork is fixed:
 * timeline, lockdep (config, dbg), dump, names (the leaf) — children of
 * the same order used everywhere else. */
static void atfork_prepare(void)
{
    cci_timeline_atfork_prepare();
    cci_lockdep_atfork_prepare();
    cci_dump_atfork_prepare();
    cci_names_atfork_prepare();
}

static void atfork_parent(void)
{
    cci_names_atfork_parent();
    cci_dump_atfork_parent();
    cci_lockdep_atfork_parent();
    cci_timeline_atfork_parent();
}

static void atfork_child(void)
{
    cci_names_atfork_child();
    cci_dump_atfork_child();
    cci_lockdep_atfork_child();
    cci_timeline_atfork_child();
}

/* "locks,order" -> flags; unknown words are reported and ignored. */
static unsigned parse_debug(const char *spec)
{
    static const struct {
        const char *word;
        unsigned flags;
    } words[] = {
        {"locks", CC_DEBUG_LOCKS},       {"order", CC_DEBUG_ORDER},
        {"watchdog", CC_DEBUG_WATCHDOG}, {"deadlock", CC_DEBUG_DEADLOCK},
        {"all", CC_DEBUG_ALL},           {"1", CC_DEBUG_ALL},
    };
    unsigned flags = 0;
    const char *p = spec;
    while (*p) {
        size_t len = strcspn(p, ",");
        bool known = false;
        for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
            if (strlen(words[i].word) == len &&
                strncmp(p, words[i].word, len) == 0) {
                flags |= words[i].flags;
                known = true;
            }
        }
        if (!known && len > 0)
            fprintf(stderr, "concur: CONCUR_DEBUG: unknown word '%.*s'\n",
                    (int)len, p);
        p += len;
        if (*p == ',')
            p++;
    }
    return flags;
}

__attribute__((constructor)) static void trace_from_environment(void)
{
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    cci_lockdep_env_settings();
    const char *debug = getenv("CONCUR_DEBUG");
    if (debug && *debug) {
        unsigned flags = parse_debug(debug);
        if (flags)
            cci_debug_enable_from_env(flags);
    }
    const char *dump = getenv("CONCUR_DUMP_ON_SIGQUIT");
    if (dump && strcmp(dump, "1") == 0)
        cc_dump_on_sigquit(true);
    const char *trace = getenv("CONCUR_TRACE");
    if (trace && *trace)
        cci_trace_start_from_env(trace);
}
