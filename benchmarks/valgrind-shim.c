/* Lets valgrind 3.19 (Debian 12) run ssogate: libdispatch's signal thread calls
 * sigsuspend() with a mask in read-only memory, and valgrind's wrapper of
 * rt_sigsuspend writes into the caller's mask (it removes its own signal from it),
 * which faults inside valgrind ("the 'impossible' happened", SIGSEGV). This copy of
 * sigsuspend passes a writable copy. Built and LD_PRELOADed by benchmarks/auth-bench.py
 * for the instruction counts only; never part of the product. */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

int sigsuspend(const sigset_t *mask) {
    sigset_t copy = *mask;
    return (int)syscall(SYS_rt_sigsuspend, &copy, 8);
}
