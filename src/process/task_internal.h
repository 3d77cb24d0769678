/*
 * task_internal.h — running a bytes task as the library does
 * (task_registry.c), for the batch task of map_bytes.c, and submitting a
 * bytes task whose input the caller writes in place.
 */
#ifndef CCI_TASK_INTERNAL_H
#define CCI_TASK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "concur/executor.h"
#include "concur/process.h"
#include "executor/executor_internal.h"

/* cc_task_run for a definition known to be registered (just found by
 * name), without the registration check. */
int cci_task_invoke(const cc_task_def *def, const void *in, size_t len,
                    void **out, size_t *out_len, char **message);

/*
 * Runs tasks one after another in the calling thread with the set-up done
 * once (the message scope of cc_task_fail, the slot of cc_task_output):
 * map_bytes.c's batch runs every element of a chunk through one runner.
 * Between begin and end the thread runs nothing but the runner's tasks.
 */
struct cci_out_slot {
    uint8_t *arena; /* room for an output in place, or NULL */
    size_t room;
    void *given; /* what cc_task_output returned (arena or malloc'd) */
    size_t given_len;
    bool used;
};

struct cci_task_runner {
    const cc_task_def *def;
    struct cci_out_slot slot;
    struct cci_out_slot *outer;
    cci_task_scope scope;
};

void cci_task_runner_begin(struct cci_task_runner *r, const cc_task_def *def);
void cci_task_runner_end(struct cci_task_runner *r);

/*
 * Runs the runner's task on in as cci_task_invoke does, with room for the
 * output in place: a cc_task_output call for at most `room` bytes gets
 * `arena` itself. On success either *in_place is true and the output is
 * the first *out_len bytes of arena (*out == arena; nothing to free), or
 * *in_place is false and *out is malloc'd (or NULL). arena may be NULL.
 * On failure *message (if not NULL) gets the task's message or NULL.
 */
int cci_task_runner_run(struct cci_task_runner *r, const void *in, size_t len,
                        uint8_t *arena, size_t room, void **out,
                        size_t *out_len, bool *in_place, char **message);

/* Writes the len bytes of a task's input at dst. */
typedef void (*cci_bytes_fill_fn)(void *ctx, uint8_t *dst);

/*
 * cc_executor_submit_bytes with an input of len bytes that fill writes
 * (once, before this returns) instead of a buffer to copy: an executor
 * with a bytes path of its own has it written straight into its request,
 * saving a copy of every chunk of a map. Same errors.
 */
int cci_executor_submit_bytes_fill(cc_executor *ex, const cc_task_def *def,
                                   size_t len, cci_bytes_fill_fn fill,
                                   void *ctx, cc_future **out);

#endif /* CCI_TASK_INTERNAL_H */
