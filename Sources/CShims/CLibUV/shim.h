#ifndef UVWEBSOCKET_CLIBUV_SHIM_H
#define UVWEBSOCKET_CLIBUV_SHIM_H
#include <uv.h>
#include <pthread.h>
#include <sched.h>
#include <sys/types.h>

/* Glibc declares pthread_setname_np only under _GNU_SOURCE, which Swift's
   Glibc module is not built with; loop threads are named for ps and gdb. */
extern int pthread_setname_np(pthread_t thread, const char *name);
/* Also _GNU_SOURCE only: the CPUs this thread may run on, as a bit mask
   (`mask` of `size` bytes; Linux's cpu_set_t is such a mask). */
extern int sched_getaffinity(pid_t pid, size_t size, void *mask);

/* The calling thread's identity, for the loop-thread check on every public
   entry point of a loop-confined object: on x86-64 Linux the thread pointer
   (what pthread_self returns) in one load, inlined into the caller; the
   check costs a load, a compare and a branch per call. */
static inline unsigned long uvws_current_thread(void) {
#if defined(__x86_64__) && defined(__linux__)
    unsigned long self;
    __asm__("mov %%fs:0, %0" : "=r"(self));
    return self;
#else
    return (unsigned long)pthread_self();
#endif
}
#endif
