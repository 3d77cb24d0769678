/* local.c — threading.local on top of a pthread key per object. */
#include <errno.h>
#include <pthread.h>

#include "concur/thread.h"

int cc_local_init(cc_local *local, void (*destructor)(void *value))
{
    if (!local)
        return -EINVAL;
    pthread_key_t key;
    int rc = pthread_key_create(&key, destructor);
    if (rc != 0)
        return rc == ENOMEM ? -ENOMEM : -EAGAIN;
    local->key = (unsigned int)key;
    local->initialized = 1;
    return 0;
}

int cc_local_destroy(cc_local *local)
{
    if (!local || !local->initialized)
        return -EINVAL;
    pthread_key_delete((pthread_key_t)local->key);
    local->initialized = 0;
    return 0;
}

void *cc_local_get(const cc_local *local)
{
    if (!local || !local->initialized)
        return NULL;
    return pthread_getspecific((pthread_key_t)local->key);
}

int cc_local_set(cc_local *local, void *value)
{
    if (!local || !local->initialized)
        return -EINVAL;
    return pthread_setspecific((pthread_key_t)local->key, value) ? -ENOMEM : 0;
}
