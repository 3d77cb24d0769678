/*
 * deque.h — a Chase-Lev work-stealing deque of task pointers.
 *
 * The owning worker pushes and pops at the bottom (LIFO: the task it just
 * spawned is hot in its cache); any other thread steals from the top (FIFO:
 * the oldest, usually biggest, piece of work). Memory orders follow Lê,
 * Pop, Cohen and Zappa Nardelli, "Correct and Efficient Work-Stealing for
 * Weak Memory Models" (PPoPP 2013).
 *
 * The ring grows when full. Old rings are kept until the deque is destroyed,
 * because a thief may still be reading one: a ring of 2^k slots is followed
 * by one of 2^(k+1), so the garbage is less than the live ring.
 */
#ifndef CCI_DEQUE_H
#define CCI_DEQUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cci_deque_ring {
    int64_t mask;
    struct cci_deque_ring *older; /* rings retired by growth */
    void *slots[];
};

typedef struct cci_deque {
    /* top is written by thieves and bottom by the owner: separate lines. */
    _Alignas(64) int64_t top;
    _Alignas(64) int64_t bottom;
    struct cci_deque_ring *ring;
    char pad[64 - sizeof(int64_t) - sizeof(void *)];
} cci_deque;

/* Errors: -ENOMEM. */
int cci_deque_init(cci_deque *d, size_t capacity_log2);
void cci_deque_destroy(cci_deque *d);

/* Owner only. Errors: -ENOMEM (the ring could not grow; nothing pushed). */
int cci_deque_push(cci_deque *d, void *task);
/* Owner only. NULL when empty. */
void *cci_deque_pop(cci_deque *d);
/* Any thread. NULL when empty or when it lost a race (try elsewhere). */
void *cci_deque_steal(cci_deque *d);
/* A racy estimate, for heuristics only. */
bool cci_deque_maybe_empty(const cci_deque *d);

#endif /* CCI_DEQUE_H */
