/* The helper thread's side of convext._team: a flag it raises when it runs, a flag that tells it
 * to stop, and a wait that yields the CPU between looks (sched_yield / SwitchToThread) so that
 * it never keeps a thread that wants the CPU off it. Plain volatile flags: each is written by
 * one side and only read by the other, and no data is passed through them. The clock is
 * OpenMP's (omp_get_wtime); without OpenMP there is no team to wake and every call returns at
 * once. */
#ifndef CVX_TEAM_H
#define CVX_TEAM_H
#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#define cvx_team_yield() ((void)SwitchToThread())
#else
#include <sched.h>
#define cvx_team_yield() ((void)sched_yield())
#endif
#include "_openmp_helpers.h"

static volatile int cvx_team_awake_flag = 0;   /* the helper ran since the last reset */
static volatile int cvx_team_release_flag = 0; /* the helper may stop */

static void cvx_team_reset(void)
{
    cvx_team_release_flag = 0;
    cvx_team_awake_flag = 0;
}

static void cvx_team_release(void) { cvx_team_release_flag = 1; }

static int cvx_team_is_awake(void) { return cvx_team_awake_flag; }

/* the helper: raise the awake flag, then stay on this CPU (yielding) until released or for at
 * most `seconds`; the flag is raised again on every look, so a run that resets it while the
 * helper holds (another Python thread's cold start) sees it at once */
static void cvx_team_hold(double seconds)
{
#ifdef _OPENMP
    double end = omp_get_wtime() + seconds;
    do {
        cvx_team_awake_flag = 1;
        cvx_team_yield();
    } while (!cvx_team_release_flag && omp_get_wtime() < end);
#else
    (void)seconds;
    cvx_team_awake_flag = 1;
#endif
}

/* the caller: wait (yielding) at most `seconds` for the helper's awake flag; returns the flag */
static int cvx_team_wait_awake(double seconds)
{
#ifdef _OPENMP
    double end = omp_get_wtime() + seconds;
    while (!cvx_team_awake_flag && omp_get_wtime() < end) cvx_team_yield();
#else
    (void)seconds;
#endif
    return cvx_team_awake_flag;
}
#endif
