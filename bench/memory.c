/*
 * The memory cases' probe: the resident set of this process, read from
 * /proc/self/statm, and a starting point with the allocators' free memory
 * given back, so that a case's growth is new memory and not what earlier
 * cases left behind.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "concur/future.h"

int64_t bench_resident_bytes(void)
{
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char buf[128];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -EIO;
    buf[n] = '\0';
    long long size, resident;
    if (sscanf(buf, "%lld %lld", &size, &resident) != 2)
        return -EIO;
    return resident * (int64_t)sysconf(_SC_PAGESIZE);
}

int64_t bench_memory_start(void)
{
    cc_future_trim();
#ifdef __GLIBC__
    malloc_trim(0);
#endif
    return bench_resident_bytes();
}
