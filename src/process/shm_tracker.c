/*
 * shm_tracker.c — the resource tracker for named shared memory, the
 * counterpart of Python's multiprocessing.resource_tracker.
 *
 * Python runs a helper process that reads names from a pipe; when every
 * writer has gone (EOF) it unlinks whatever is still registered and warns
 * on stderr. concur already has such a process: the fork-server launcher,
 * which exits when its socket to the program reaches EOF, that is when the
 * program dies however it dies (SIGKILL included). So the launcher is the
 * tracker: the creator of a named segment sends it a "register" datagram,
 * the unlink sends "unregister", and at EOF the launcher unlinks what is
 * left before it exits.
 *
 * Only the creator registers (Python registered on attach too, and then
 * unlinked segments that a peer still used: bpo-38119). Messages are
 * fire-and-forget: no reply, so they never disturb the spawn protocol's
 * request/reply pairing, and the socket keeps them in order (an unregister
 * sent just before exit is read before the EOF).
 *
 * Everything received is checked: a fixed size, the magic, a known
 * operation, no descriptors attached, and a name of exactly the form
 * cc_shm_create makes ("/concur-" + 32 lowercase hex digits, NUL-padded).
 * Anything else is dropped, so the socket can never be used to unlink an
 * arbitrary file: a name has no '/' after the first character and lives
 * in /dev/shm only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "platform/process_platform.h"
#include "process/process_internal.h"

/* ---- the program's side ------------------------------------------------------ */

static int send_op(uint32_t op, const char *name, bool start)
{
    struct cci_track_msg m;
    memset(&m, 0, sizeof m);
    m.magic = CCI_TRACK_MAGIC;
    m.op = op;
    memcpy(m.name, name, strlen(name) + 1);
    return cci_forkserver_notify(&m, sizeof m, NULL, 0, start);
}

int cci_shm_track(const char *name)
{
    /* A program that never called cc_process_init gets its launcher now,
     * as its first cc_process_start would; the exit handler then stops it
     * (and so has it unlink leftovers) at normal exit. */
    cci_process_register_exit();
    return send_op(CCI_TRACK_REGISTER, name, true);
}

void cci_shm_untrack(const char *name)
{
    /* Never starts a launcher: with none running nothing is registered
     * (a FORK child freeing its parent's segment, say). */
    (void)send_op(CCI_TRACK_UNREGISTER, name, false);
}

/* ---- the launcher's side ------------------------------------------------------- */

static ptrdiff_t find(const struct cci_shm_tracker *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->names[i], name) == 0)
            return (ptrdiff_t)i;
    return -1;
}

static bool well_formed(const struct cci_track_msg *m, size_t len,
                        size_t nfds)
{
    if (len != sizeof *m || nfds != 0 || m->magic != CCI_TRACK_MAGIC ||
        (m->op != CCI_TRACK_REGISTER && m->op != CCI_TRACK_UNREGISTER))
        return false;
    size_t n = strnlen(m->name, sizeof m->name);
    if (n == sizeof m->name)
        return false;
    for (size_t i = n; i < sizeof m->name; i++)
        if (m->name[i] != '\0')
            return false;
    return cci_shm_name_valid(m->name);
}

void cci_shm_tracker_handle(struct cci_shm_tracker *t, const void *buf,
                            size_t len, size_t nfds)
{
    struct cci_track_msg m;
    if (len != sizeof m)
        return;
    memcpy(&m, buf, sizeof m);
    if (!well_formed(&m, len, nfds))
        return;
    ptrdiff_t at = find(t, m.name);
    if (m.op == CCI_TRACK_UNREGISTER) {
        if (at >= 0)
            memcpy(t->names[at], t->names[--t->n], sizeof t->names[0]);
        return;
    }
    if (at >= 0)
        return;
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 16;
        char(*nn)[CC_SHM_NAME_MAX] = realloc(t->names, ncap * sizeof *nn);
        if (!nn)
            return; /* untracked: only a SIGKILL of the creator leaks it */
        t->names = nn;
        t->cap = ncap;
    }
    memcpy(t->names[t->n++], m.name, sizeof m.name);
}

void cci_shm_tracker_cleanup(struct cci_shm_tracker *t)
{
    for (size_t i = 0; i < t->n; i++) {
        /* ENOENT: someone else (a process that opened it) unlinked it;
         * nothing leaked, nothing to say. */
        if (shm_unlink(t->names[i]) < 0)
            continue;
        /* write, not stdio: the launcher may have been forked while
         * another thread held stderr's lock. */
        char line[160];
        int n = snprintf(line, sizeof line,
                         "concur: resource tracker: unlinked leaked shared "
                         "memory %s (its creator ended without "
                         "cc_shm_free)\n",
                         t->names[i]);
        if (n > 0)
            (void)cci_write_all(2, line, (size_t)n < sizeof line
                                             ? (size_t)n
                                             : sizeof line - 1);
    }
    free(t->names);
    *t = (struct cci_shm_tracker){0};
}
