/* SPDX-License-Identifier: MIT */
/*
 * The ledger (service/ledger.c) on its own: what booking one request costs
 * the event loop, how long Summary takes over a million records, how large
 * the database is per million records, and whether memory stays flat over
 * 100,000 bookings.
 *
 *   bench-ledger [RECORDS [DAYS]]     (defaults: 1000000 records over 365 days)
 *
 * Works in a fresh temporary directory (removed at the end) and prints one
 * "name: value" line per figure.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <sys/stat.h>
#include <time.h>

#include "ledger.h"
#include "log.h"

static const char *const apps[] = { "org.gnome.Terminal", "org.mozilla.firefox", "claude-code", "opencode",
                                    "python3", "org.example.Spender", "emacs", "org.kde.konsole" };
static const char *const models[] = { "claude-haiku-4.5", "gpt-5-mini", "claude-sonnet-4.5", "gemini-2.5-flash",
                                      "qwen3-coder" };

static uint64_t mono_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static long rss_kib(void) {
        _cleanup_free_ char *buf = NULL;
        const char *p;

        if (read_full_file("/proc/self/status", 65536, &buf, NULL) < 0)
                return -1;
        p = strstr(buf, "VmRSS:");
        return p ? strtol(p + 6, NULL, 10) : -1;
}

static uint32_t rng = 12345;
static uint32_t next_rand(void) {
        rng = rng * 1103515245U + 12345U;
        return rng >> 8;
}

static void make_record(LedgerRecord *r, uint64_t t) {
        *r = (LedgerRecord) {
                .time = t,
                .app = (char *) apps[next_rand() % ELEMENTSOF(apps)],
                .via = (char *) "dbus",
                .model = (char *) models[next_rand() % ELEMENTSOF(models)],
                .status = (char *) (next_rand() % 50 == 0 ? "failed" : "finished"),
                .error = (char *) "",
                .input_tokens = 100 + next_rand() % 5000,
                .output_tokens = 10 + next_rand() % 2000,
                .cache_read_tokens = next_rand() % 1000,
                .cache_write_tokens = next_rand() % 100,
                .cost_usd = (double) (next_rand() % 10000) / 1e6,
                .latency_first_ms = 200 + next_rand() % 500,
                .latency_total_ms = 800 + next_rand() % 5000,
                .attempts = 1,
                .privacy_tier = (char *) "",
        };
}

static bool sync_done;
static void on_sync(int error, const char *problem, const LedgerRecord *recs, size_t n, void *userdata) {
        sync_done = true;
}

/* One round trip through the thread: every booking queued before it has
 * been written when its answer comes. */
static void drain(sd_event *e, Ledger *l) {
        sync_done = false;
        if (ledger_recent(l, 1, &(LedgerFilter) {}, on_sync, NULL) < 0)
                return;
        while (!sync_done)
                (void) sd_event_run(e, 100 * USEC_PER_MSEC);
}

typedef struct SummaryWait {
        bool done;
        int error;
        size_t n;
} SummaryWait;

static void on_summary(int error, const char *problem, const LedgerRow *rows, size_t n, void *userdata) {
        SummaryWait *w = userdata;
        w->done = true;
        w->error = error;
        w->n = n;
        if (error < 0)
                fprintf(stderr, "Summary failed: %s\n", strna(problem));
}

/* Median wall time of Summary (the whole round trip: queue, thread, answer). */
static double time_summary(sd_event *e, Ledger *l, unsigned group, const LedgerFilter *f, size_t *ret_rows) {
        uint64_t t[7];

        for (unsigned i = 0; i < ELEMENTSOF(t); i++) {
                SummaryWait w = {};
                uint64_t t0 = mono_ns();
                if (ledger_summary(l, group, f, on_summary, &w) < 0)
                        return NAN;
                while (!w.done)
                        (void) sd_event_run(e, 100 * USEC_PER_MSEC);
                t[i] = mono_ns() - t0;
                *ret_rows = w.n;
        }
        qsort(t, ELEMENTSOF(t), sizeof(uint64_t), cmp_u64);
        return (double) t[ELEMENTSOF(t) / 2] / 1e6;
}

int main(int argc, char *argv[]) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        Ledger *l = NULL;
        char dir[] = "/tmp/bench-ledger-XXXXXX", path[256], cmd[300];
        unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000UL;
        unsigned long days = argc > 2 ? strtoul(argv[2], NULL, 10) : 365UL;
        uint64_t now = now_usec(CLOCK_REALTIME), span, t0, *lat;
        const unsigned long n_lat = 100000;
        long rss0, rss1, rss2;
        struct stat st;
        size_t rows;
        int r;

        if (n < n_lat || days == 0)
                return fprintf(stderr, "Usage: bench-ledger [RECORDS ≥ 100000 [DAYS]]\n"), 2;
        log_max_level = LOG_WARNING;
        if (!mkdtemp(dir))
                return perror("mkdtemp"), 1;
        (void) snprintf(path, sizeof path, "%s/usage.db", dir);
        r = sd_event_new(&e);
        if (r >= 0)
                r = ledger_new(e, path, &l);
        if (r >= 0)
                ledger_start(l);
        if (r < 0)
                return fprintf(stderr, "ledger_new: %s\n", strerror(-r)), 1;
        drain(e, l);

        /* 1. Booking on the loop: 100,000 calls of ledger_book(), each timed.
         *    The thread writes meanwhile (in batches), as in the service. */
        lat = calloc(n_lat, sizeof(uint64_t));
        span = (uint64_t) days * 86400 * USEC_PER_SEC;
        /* Warm up (SQLite's page cache, malloc's arenas), then measure RSS
         * across 100,000 more, written as they come (1,000 at a time). */
        for (unsigned long i = 0; i < 10000; i++) {
                LedgerRecord rec;
                make_record(&rec, now - span + (span / n) * i);
                (void) ledger_book(l, &rec);
                if (i % 1000 == 999)
                        drain(e, l);
        }
        drain(e, l);
        rss0 = rss_kib();
        for (unsigned long i = 0; i < n_lat; i++) {
                LedgerRecord rec;
                make_record(&rec, now - span + (span / n) * (i + 10000));
                t0 = mono_ns();
                (void) ledger_book(l, &rec);
                lat[i] = mono_ns() - t0;
                if (i % 1000 == 999)
                        drain(e, l);
        }
        drain(e, l);
        rss1 = rss_kib();
        qsort(lat, n_lat, sizeof(uint64_t), cmp_u64);
        printf("book_on_loop_median_us: %.2f\n", (double) lat[n_lat / 2] / 1e3);
        printf("book_on_loop_p99_us: %.2f\n", (double) lat[n_lat * 99 / 100] / 1e3);
        printf("book_on_loop_max_us: %.2f\n", (double) lat[n_lat - 1] / 1e3);
        printf("rss_before_100k_kib: %ld\nrss_after_100k_kib: %ld\nrss_growth_100k_kib: %ld\n", rss0, rss1,
               rss1 - rss0);
        free(lat);

        /* 2. The rest of the records, as fast as the thread takes them. */
        t0 = mono_ns();
        for (unsigned long i = n_lat + 10000; i < n; i++) {
                LedgerRecord rec;
                make_record(&rec, now - span + (span / n) * i);
                (void) ledger_book(l, &rec);
                /* Keep the queue bounded, as a real request rate would. */
                if (i % 50000 == 0)
                        drain(e, l);
        }
        drain(e, l);
        printf("records: %lu over %lu days\n", n, days);
        printf("write_rate_per_s: %.0f\n", (double) (n - n_lat - 10000) / ((double) (mono_ns() - t0) / 1e9));
        rss2 = rss_kib();
        printf("rss_after_all_kib: %ld\n", rss2);

        /* 3. Summary over all of them. */
        {
                LedgerFilter all = {}, week = { .since = now - 7 * 86400 * USEC_PER_SEC };
                LedgerFilter odd = { .since = now - 200 * 86400 * USEC_PER_SEC + 12345678 };
                LedgerFilter app = { .app = (char *) "claude-code" };
                LedgerFilter day = { .since = now - 86400 * USEC_PER_SEC };
                double ms;

                ms = time_summary(e, l, 0, &all, &rows);
                printf("summary_total_ms: %.2f (%zu rows)\n", ms, rows);
                ms = time_summary(e, l, LEDGER_GROUP_APP, &all, &rows);
                printf("summary_by_app_ms: %.2f (%zu rows)\n", ms, rows);
                ms = time_summary(e, l, LEDGER_GROUP_MODEL, &all, &rows);
                printf("summary_by_model_ms: %.2f (%zu rows)\n", ms, rows);
                ms = time_summary(e, l, LEDGER_GROUP_DAY, &all, &rows);
                printf("summary_by_day_ms: %.2f (%zu rows)\n", ms, rows);
                ms = time_summary(e, l, LEDGER_GROUP_APP | LEDGER_GROUP_MODEL | LEDGER_GROUP_DAY, &all, &rows);
                printf("summary_by_app_model_day_ms: %.2f (%zu rows)\n", ms, rows);
                ms = time_summary(e, l, LEDGER_GROUP_APP, &odd, &rows);
                printf("summary_by_app_since_mid_day_ms: %.2f (%zu rows)\n", ms, rows);
                ms = time_summary(e, l, LEDGER_GROUP_DAY, &app, &rows);
                printf("summary_one_app_by_day_ms: %.2f (%zu rows)\n", ms, rows);
                ms = time_summary(e, l, LEDGER_GROUP_APP, &week, &rows);
                printf("summary_last_7d_by_app_ms: %.2f (%zu rows)\n", ms, rows);
                ms = time_summary(e, l, LEDGER_GROUP_HOUR, &day, &rows);
                printf("summary_last_24h_by_hour_ms: %.2f (%zu rows)\n", ms, rows);
        }

        l = ledger_free(l); /* closes: the WAL is checkpointed into the file */
        if (stat(path, &st) == 0)
                printf("db_bytes: %lld (%.1f MiB, %.0f bytes per record; per million records %.1f MiB)\n",
                       (long long) st.st_size, (double) st.st_size / 1048576.0, (double) st.st_size / (double) n,
                       (double) st.st_size / (double) n * 1e6 / 1048576.0);
        (void) snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        return system(cmd) == 0 ? 0 : 1;
}
