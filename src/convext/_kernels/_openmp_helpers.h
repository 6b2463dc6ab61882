/* OpenMP calls with single-threaded fallbacks, so the package builds and imports where the
 * compiler has no OpenMP (the kernels then run on one thread). */
#ifndef CVX_OPENMP_HELPERS_H
#define CVX_OPENMP_HELPERS_H
#ifdef _OPENMP
#include <omp.h>
#define cvx_openmp_enabled() 1
#define cvx_omp_get_thread_num() omp_get_thread_num()
#define cvx_omp_get_max_threads() omp_get_max_threads()
#else
#define cvx_openmp_enabled() 0
#define cvx_omp_get_thread_num() 0
#define cvx_omp_get_max_threads() 1
#endif

/* Work sharing for a parallel region's work items [0, n) that keeps a static schedule's
 * locality and still finishes on time when a thread is held up (another process, or a host
 * that halts a virtual CPU, takes its CPU for a while). Thread t owns the share a static
 * schedule would give it (OpenMP's split: the first n % threads one item more), cut into at
 * most CVX_SCHED_UNITS units of whole items: it claims its units from the front and runs their
 * items in order; a thread whose share is empty claims the last unclaimed unit of another
 * share (from the back, away from what the owner runs next), and stops when every share is
 * empty. Undisturbed, each thread runs exactly its static share, so the rows a thread writes
 * in one layer are those it reads in the next; held up, it delays at most the unit it holds
 * and the others run the rest of its share. Every item runs exactly once, on some thread:
 * results that do not depend on which thread runs an item (every kernel's) keep their bits.
 * A claim is one compare-and-swap of the share's (first, last) unclaimed units, in a 128-byte
 * slot of its own (no two shares' fields on one cache line), lock-free so that a thread held
 * up while claiming holds up no other (a lock's holder, taken off its CPU, would stall every
 * thread waiting for it). A schedule serves at most CVX_SCHED_THREADS threads (16 kB, on the
 * caller's stack); callers with more keep OpenMP's schedules. */
#include <stdint.h>
#if defined(_OPENMP) && defined(_MSC_VER)
#include <intrin.h>
#endif
/* inline: a module that includes this header without using every function gets no warning */
#ifdef _MSC_VER
#define CVX_SCHED_FN static __inline
#else
#define CVX_SCHED_FN static inline
#endif
#define CVX_SCHED_THREADS 64
#define CVX_SCHED_UNITS 16
typedef struct {
    int64_t units;                       /* unclaimed units [lo, hi): lo | hi << 32 */
    int64_t first, end;                  /* the share's items */
    int64_t size;                        /* items per unit (the last unit: what is left) */
    char pad[128 - 4 * sizeof(int64_t)]; /* 128-byte slots: no two on one cache line */
} cvx_sched_share;
typedef struct {
    int64_t cur, stop; /* the items a thread runs next: [cur, stop) */
    char pad[128 - 2 * sizeof(int64_t)];
} cvx_sched_cursor;
typedef struct {
    cvx_sched_share sh[CVX_SCHED_THREADS];
    cvx_sched_cursor at[CVX_SCHED_THREADS];
    int threads;
} cvx_sched;

/* 1 when *p was `expect` and is now `want` (atomically), else 0 */
CVX_SCHED_FN int cvx_sched_cas(int64_t *p, int64_t expect, int64_t want)
{
#if !defined(_OPENMP)
    if (*p != expect) return 0; /* one thread */
    *p = want;
    return 1;
#elif defined(_MSC_VER)
    return _InterlockedCompareExchange64((volatile __int64 *)p, want, expect) == expect;
#else
    return __atomic_compare_exchange_n(p, &expect, want, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
#endif
}

CVX_SCHED_FN int64_t cvx_sched_read(const int64_t *p)
{
#if defined(_OPENMP) && !defined(_MSC_VER)
    return __atomic_load_n(p, __ATOMIC_RELAXED);
#else
    return *(const volatile int64_t *)p; /* an aligned 64-bit load is single-copy atomic */
#endif
}

/* s: items [0, n) over `threads` threads, 1 <= threads <= CVX_SCHED_THREADS (before the
 * parallel region) */
CVX_SCHED_FN void cvx_sched_init(cvx_sched *s, int64_t n, int threads)
{
    int t, k = threads;
    int64_t q = n / k, r = n % k, len, m;
    s->threads = k;
    for (t = 0; t < k; t++) {
        cvx_sched_share *h = &s->sh[t];
        h->first = t * q + (t < r ? t : r);
        len = q + (t < r);
        h->end = h->first + len;
        h->size = (len + CVX_SCHED_UNITS - 1) / CVX_SCHED_UNITS;
        m = h->size > 0 ? (len + h->size - 1) / h->size : 0; /* units, at most CVX_SCHED_UNITS */
        h->units = m << 32;
        s->at[t].cur = s->at[t].stop = 0;
    }
}

/* Claim unit lo (front) or hi - 1 (back) of share h; -1 when it has none left */
CVX_SCHED_FN int64_t cvx_sched_claim(cvx_sched_share *h, int back)
{
    for (;;) {
        int64_t u = cvx_sched_read(&h->units);
        int64_t lo = u & 0xffffffff, hi = u >> 32;
        if (lo >= hi) return -1;
        if (back ? cvx_sched_cas(&h->units, u, lo | (hi - 1) << 32)
                 : cvx_sched_cas(&h->units, u, (lo + 1) | hi << 32))
            return back ? hi - 1 : lo;
    }
}

/* The next item for thread tid (< the threads of cvx_sched_init), or -1 when none is left
 * (inside the parallel region) */
CVX_SCHED_FN int64_t cvx_sched_next(cvx_sched *s, int tid)
{
    cvx_sched_share *own = &s->sh[tid];
    cvx_sched_cursor *mine = &s->at[tid];
    int64_t unit;
    int k;
    if (mine->cur < mine->stop) return mine->cur++;
    unit = cvx_sched_claim(own, 0);
    if (unit >= 0) {
        mine->cur = own->first + unit * own->size;
        mine->stop = mine->cur + own->size < own->end ? mine->cur + own->size : own->end;
        return mine->cur++;
    }
    for (k = 1; k < s->threads; k++) {
        cvx_sched_share *h = &s->sh[(tid + k) % s->threads];
        unit = cvx_sched_claim(h, 1);
        if (unit >= 0) {
            mine->cur = h->first + unit * h->size;
            mine->stop = mine->cur + h->size < h->end ? mine->cur + h->size : h->end;
            return mine->cur++;
        }
    }
    return -1;
}

/* The item thread tid will likely run after `it` (the item cvx_sched_next just gave it), for a
 * prefetch: the next of its unit, else the first of its share's next unclaimed unit (which
 * another thread may still take: only a hint), or -1 */
CVX_SCHED_FN int64_t cvx_sched_after(const cvx_sched *s, int tid, int64_t it)
{
    const cvx_sched_share *own = &s->sh[tid];
    int64_t u, lo;
    if (it + 1 < s->at[tid].stop) return it + 1;
    u = cvx_sched_read(&own->units);
    lo = u & 0xffffffff;
    return lo < u >> 32 ? own->first + lo * own->size : -1;
}

/* For the tests (_threads.sched_counts): the units of thread t's share not yet claimed */
CVX_SCHED_FN int64_t cvx_sched_left(const cvx_sched *s, int t)
{
    int64_t u = cvx_sched_read(&s->sh[t].units);
    return (u >> 32) - (u & 0xffffffff);
}

/* For the tests: seconds on a monotonic clock (0 without OpenMP) */
CVX_SCHED_FN double cvx_sched_clock(void)
{
#ifdef _OPENMP
    return omp_get_wtime();
#else
    return 0.0;
#endif
}
#endif
