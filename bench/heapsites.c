/* SPDX-License-Identifier: MIT */
/*
 * heapsites.so: which call sites hold the heap. An LD_PRELOAD module for
 * bench-endpoint.py --heap-sites: it records every live malloc(),
 * calloc(), realloc() and posix_memalign() block with the address it was
 * called from, and on SIGUSR2 (at the next allocation, outside the signal
 * handler) writes the live bytes by call site to $HEAPSITES_OUT: bytes,
 * blocks, object+offset and the nearest exported symbol. Resolve an offset
 * in our own binary with addr2line -f -e build/service/bankr-llmd OFFSET.
 *
 * A measuring tool, not a profiler: one frame, sizes as requested (not as
 * glibc rounds them), and its table (96 MiB, touched as it fills) makes the
 * RSS of the process it runs in meaningless.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);
extern void __libc_free(void *p);

#define SLOTS (1U << 22) /* blocks live at once, at most */
#define SITES 8192U
#define TOP 40
#define TOMBSTONE UINTPTR_MAX

typedef struct {
        uintptr_t ptr; /* 0: empty; TOMBSTONE: freed */
        size_t size;
        void *site;
} Block;

typedef struct {
        void *site;
        size_t bytes, blocks;
} Site;

static Block blocks[SLOTS];
static Site sites[SITES];
static atomic_flag lock = ATOMIC_FLAG_INIT;
static volatile sig_atomic_t dump_requested;
static __thread int busy; /* dumping: our own allocations are not recorded */
static size_t live, peak;
static char out_path[256] = "/tmp/heapsites.txt";

static void lock_take(void) {
        while (atomic_flag_test_and_set_explicit(&lock, memory_order_acquire))
                ;
}

static void lock_give(void) {
        atomic_flag_clear_explicit(&lock, memory_order_release);
}

static size_t slot_of(uintptr_t p) {
        return (size_t) (((p >> 4) * 2654435761U) & (SLOTS - 1));
}

static void record(void *p, size_t size, void *site) {
        size_t i;

        if (!p || busy)
                return;
        lock_take();
        i = slot_of((uintptr_t) p);
        for (size_t n = 0; n < SLOTS && blocks[i].ptr != 0 && blocks[i].ptr != TOMBSTONE; n++)
                i = (i + 1) & (SLOTS - 1);
        if (blocks[i].ptr == 0 || blocks[i].ptr == TOMBSTONE) {
                blocks[i] = (Block) { (uintptr_t) p, size, site };
                live += size;
                if (live > peak)
                        peak = live;
        }
        lock_give();
}

static void forget(void *p) {
        size_t i;

        if (!p || busy)
                return;
        lock_take();
        i = slot_of((uintptr_t) p);
        for (size_t n = 0; n < SLOTS && blocks[i].ptr != 0; n++) {
                if (blocks[i].ptr == (uintptr_t) p) {
                        live -= blocks[i].size;
                        blocks[i].ptr = TOMBSTONE;
                        break;
                }
                i = (i + 1) & (SLOTS - 1);
        }
        lock_give();
}

static void put(int fd, const char *s, int len) {
        while (len > 0) {
                ssize_t k = write(fd, s, (size_t) len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return;
                s += k;
                len -= (int) k;
        }
}

static void dump(void) {
        size_t total, top;
        char line[512];
        int fd, len;

        busy = 1;
        lock_take();
        memset(sites, 0, sizeof sites);
        for (size_t i = 0; i < SLOTS; i++) {
                size_t j;

                if (blocks[i].ptr == 0 || blocks[i].ptr == TOMBSTONE)
                        continue;
                j = (size_t) (((uintptr_t) blocks[i].site * 2654435761U) & (SITES - 1));
                for (size_t n = 0; n < SITES && sites[j].site && sites[j].site != blocks[i].site; n++)
                        j = (j + 1) & (SITES - 1);
                sites[j].site = blocks[i].site;
                sites[j].bytes += blocks[i].size;
                sites[j].blocks++;
        }
        total = live;
        top = peak;
        lock_give();

        fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
                len = snprintf(line, sizeof line, "live %zu bytes, peak %zu\n%10s %7s  site\n", total, top, "bytes",
                               "blocks");
                put(fd, line, len);
                for (int round = 0; round < TOP; round++) {
                        Dl_info info = { 0 };
                        size_t best = 0;
                        Site *s = NULL;

                        for (size_t j = 0; j < SITES; j++)
                                if (sites[j].bytes > best) {
                                        best = sites[j].bytes;
                                        s = &sites[j];
                                }
                        if (!s)
                                break;
                        (void) dladdr(s->site, &info);
                        len = snprintf(line, sizeof line, "%10zu %7zu  %s+0x%lx %s\n", s->bytes, s->blocks,
                                       info.dli_fname ?: "?",
                                       (unsigned long) ((uintptr_t) s->site - (uintptr_t) info.dli_fbase),
                                       info.dli_sname ?: "");
                        put(fd, line, len);
                        s->bytes = 0;
                }
                close(fd);
        }
        busy = 0;
}

static void on_usr2(int sig) {
        (void) sig;
        dump_requested = 1;
}

__attribute__((constructor)) static void heapsites_init(void) {
        const char *p = getenv("HEAPSITES_OUT");

        if (p && strlen(p) < sizeof out_path)
                strcpy(out_path, p);
        (void) signal(SIGUSR2, on_usr2);
}

static void maybe_dump(void) {
        if (dump_requested && !busy) {
                dump_requested = 0;
                dump();
        }
}

void *malloc(size_t n) {
        void *p = __libc_malloc(n);

        record(p, n, __builtin_return_address(0));
        maybe_dump();
        return p;
}

void *calloc(size_t n, size_t size) {
        void *p = __libc_calloc(n, size);

        record(p, n * size, __builtin_return_address(0));
        return p;
}

void *realloc(void *old, size_t n) {
        void *p;

        forget(old);
        p = __libc_realloc(old, n);
        if (p)
                record(p, n, __builtin_return_address(0));
        else if (old && n > 0)
                record(old, 0, __builtin_return_address(0)); /* kept, its size unknown now */
        return p;
}

int posix_memalign(void **ret, size_t align, size_t n) {
        void *p;

        if (align < sizeof(void *) || (align & (align - 1)) != 0)
                return EINVAL;
        p = __libc_memalign(align, n);
        if (!p)
                return ENOMEM;
        record(p, n, __builtin_return_address(0));
        *ret = p;
        return 0;
}

void free(void *p) {
        forget(p);
        __libc_free(p);
}
