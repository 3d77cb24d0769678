/* Coroutine stacks from mmap with a guard page (see context.h). */
#include "platform/context.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef CCI_HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#define STACK_REGISTER(lo, hi) VALGRIND_STACK_REGISTER(lo, hi)
#define STACK_DEREGISTER(id) VALGRIND_STACK_DEREGISTER(id)
#else
#define STACK_REGISTER(lo, hi) 0u
#define STACK_DEREGISTER(id) ((void)(id))
#endif

static size_t page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

int cci_stack_alloc(cci_stack *stack, size_t size)
{
    size_t page = page_size();
    if (size < 16384)
        size = 16384;
    if (size > ((size_t)1 << 40))
        return -ENOMEM;
    size = (size + page - 1) / page * page;
    char *mem = mmap(NULL, size + page, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED)
        return -errno;
    /* The guard is the lowest page: stacks grow down into it. */
    if (mprotect(mem, page, PROT_NONE) < 0) {
        int err = -errno;
        munmap(mem, size + page);
        return err;
    }
    stack->base = mem + page;
    stack->size = size;
    stack->valgrind_id = STACK_REGISTER(mem + page, mem + page + size);
    return 0;
}

void cci_stack_free(cci_stack *stack)
{
    if (!stack->base)
        return;
    size_t page = page_size();
    STACK_DEREGISTER(stack->valgrind_id);
    munmap((char *)stack->base - page, stack->size + page);
    stack->base = NULL;
}
