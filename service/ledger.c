/* SPDX-License-Identifier: MIT */
/*
 * The ledger's writer thread and its SQLite database (see ledger.h).
 *
 * Jobs go from the loop to the thread on `todo` and come back on `done`,
 * both under one mutex; the thread signals `done` through an eventfd that
 * the loop watches. Bookings do not come back: once the thread has taken
 * them they live on its `unbooked` list until a transaction holding them
 * commits. Only the thread touches the sqlite3 handle.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/eventfd.h>
#include <sys/stat.h>

#include "budget.h"
#include "ledger.h"
#include "log.h"

typedef enum JobType {
        JOB_BOOK,
        JOB_SUMMARY,
        JOB_RECENT,
        JOB_WRITE_FILE,
        JOB_RETRY,
} JobType;

typedef struct Job Job;
struct Job {
        Job *next;
        JobType type;

        LedgerRecord record; /* BOOK */
        unsigned group;      /* SUMMARY */
        unsigned limit;      /* RECENT */
        LedgerFilter filter; /* SUMMARY, RECENT */
        char *path, *data;   /* WRITE_FILE */

        void *callback;
        void *userdata;

        /* The answer. */
        int error;
        char *problem;
        LedgerRow *rows;
        LedgerRecord *records;
        size_t n;
};

struct Ledger {
        sd_event *event;
        sd_event_source *done_source;
        sd_event_source *retry_timer;
        uint64_t retry_usec;
        int efd;
        char *path;

        pthread_t thread;
        bool thread_started;
        pthread_mutex_t lock;
        pthread_cond_t wake;

        /* Under lock. */
        Job *todo, *todo_tail;
        Job *done, *done_tail;
        bool quit;
        char *problem;      /* the thread's view, copied for the loop */
        unsigned unbooked;  /* bookings the thread holds unwritten */
        unsigned pending;   /* jobs queued or being processed */

        /* The loop's copies. */
        char *problem_loop;
        LedgerStateCallback state_cb;
        void *state_userdata;

        /* Thread only. */
        sqlite3 *db;
        Job *books, *books_tail; /* taken bookings not yet committed */
        unsigned n_books;
        uint64_t dropped;
        char *t_problem;
        uint64_t last_retention;
};

void ledger_record_done(LedgerRecord *r) {
        if (!r)
                return;
        free(r->app);
        free(r->via);
        free(r->model);
        free(r->status);
        free(r->error);
        free(r->privacy_tier);
        *r = (LedgerRecord) {};
}

static void filter_done(LedgerFilter *f) {
        free(f->app);
        free(f->model);
        *f = (LedgerFilter) {};
}

static void row_done(LedgerRow *r) {
        free(r->app);
        free(r->model);
        free(r->day);
        free(r->hour);
}

static Job *job_free(Job *j) {
        if (!j)
                return NULL;
        ledger_record_done(&j->record);
        filter_done(&j->filter);
        free(j->path);
        free(j->data);
        free(j->problem);
        for (size_t i = 0; i < j->n; i++) {
                if (j->rows)
                        row_done(&j->rows[i]);
                if (j->records)
                        ledger_record_done(&j->records[i]);
        }
        free(j->rows);
        free(j->records);
        free(j);
        return NULL;
}

static char *strdup_or_empty(const char *s) {
        return strdup(s ?: "");
}

static int record_copy(LedgerRecord *dst, const LedgerRecord *src) {
        *dst = *src;
        dst->app = strdup_or_empty(src->app);
        dst->via = strdup_or_empty(src->via);
        dst->model = strdup_or_empty(src->model);
        dst->status = strdup_or_empty(src->status);
        dst->error = strdup_or_empty(src->error);
        dst->privacy_tier = strdup_or_empty(src->privacy_tier);
        if (!dst->app || !dst->via || !dst->model || !dst->status || !dst->error || !dst->privacy_tier) {
                ledger_record_done(dst);
                return -ENOMEM;
        }
        return 0;
}

static int filter_copy(LedgerFilter *dst, const LedgerFilter *src) {
        *dst = (LedgerFilter) {};
        if (!src)
                return 0;
        dst->since = src->since;
        dst->until = src->until;
        if (src->app && !(dst->app = strdup(src->app)))
                return -ENOMEM;
        if (src->model && !(dst->model = strdup(src->model))) {
                filter_done(dst);
                return -ENOMEM;
        }
        return 0;
}

/* ---- the thread: problems ------------------------------------------------ */

/* One sentence per kind of trouble, naming the file and what to do. */
static char *describe(Ledger *l, int rc, const char *what) {
        /* The handle's message is gone once a statement was finalized
         * ("not an error"): then the code says it. */
        const char *detail = l->db && sqlite3_errcode(l->db) != SQLITE_OK ? sqlite3_errmsg(l->db) : sqlite3_errstr(rc);
        char *s = NULL;
        int r;

        switch (rc & 0xff) {
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                r = asprintf(&s, "The usage database %s is damaged (%s: %s). Move it away, and bankr-llmd starts "
                             "a new one; requests are still served, their records are kept in memory until then.",
                             l->path, what, detail);
                break;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                r = asprintf(&s, "The usage database %s is locked by another process (%s). Close the program "
                             "holding it (e.g. an sqlite3 shell in a transaction); requests are still served, "
                             "their records are written once it is free.", l->path, what);
                break;
        case SQLITE_FULL:
                r = asprintf(&s, "The disk holding the usage database %s is full (%s). Free some space; requests "
                             "are still served, their records are written once there is room.", l->path, what);
                break;
        case SQLITE_READONLY:
        case SQLITE_CANTOPEN:
        case SQLITE_PERM:
        case SQLITE_AUTH:
                r = asprintf(&s, "The usage database %s cannot be written (%s: %s). Check the permissions of the "
                             "file and its folder; requests are still served, their records are kept in "
                             "memory until then.", l->path, what, detail);
                break;
        default:
                r = asprintf(&s, "The usage database %s failed (%s: %s); requests are still served, their "
                             "records are kept in memory until it works again.", l->path, what, detail);
        }
        return r < 0 ? NULL : s;
}

/* Sets (problem != NULL) or clears the thread's problem; logs changes. */
static void thread_set_problem(Ledger *l, char *problem) {
        if (streq_ptr(problem, l->t_problem)) {
                free(problem);
                return;
        }
        if (problem)
                log_warning("%s", problem);
        else if (l->t_problem)
                log_info("The usage database %s works again.", l->path);
        free(l->t_problem);
        l->t_problem = problem;
}

static void thread_fail(Ledger *l, int rc, const char *what) {
        char *p = describe(l, rc, what);

        thread_set_problem(l, p ?: strdup("The usage database failed (out of memory)."));
        /* Anything but a lock may mean the file changed under us or needs a
         * fresh start (moved away, permissions fixed): reopen next time. */
        if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED && l->db) {
                (void) sqlite3_close_v2(l->db);
                l->db = NULL;
        }
}

/* ---- the thread: schema ---------------------------------------------------- */

static const char *const migrations[] = {
        /* 0 → 1 */
        "CREATE TABLE requests ("
        "  id INTEGER PRIMARY KEY,"
        "  time INTEGER NOT NULL,"
        "  app TEXT NOT NULL,"
        "  via TEXT NOT NULL,"
        "  model TEXT NOT NULL,"
        "  status TEXT NOT NULL,"
        "  error TEXT NOT NULL,"
        "  input_tokens INTEGER NOT NULL,"
        "  output_tokens INTEGER NOT NULL,"
        "  cache_read_tokens INTEGER NOT NULL,"
        "  cache_write_tokens INTEGER NOT NULL,"
        "  cost_usd REAL NOT NULL,"
        "  latency_first_ms REAL NOT NULL,"
        "  latency_total_ms REAL NOT NULL,"
        "  attempts INTEGER NOT NULL,"
        "  privacy_tier TEXT NOT NULL);"
        "CREATE INDEX requests_by_time ON requests(time);"
        "CREATE INDEX requests_by_app ON requests(app, time);"
        "CREATE TABLE daily ("
        "  day INTEGER NOT NULL,"
        "  day_end INTEGER NOT NULL,"
        "  app TEXT NOT NULL,"
        "  model TEXT NOT NULL,"
        "  requests INTEGER NOT NULL,"
        "  errors INTEGER NOT NULL,"
        "  input_tokens INTEGER NOT NULL,"
        "  output_tokens INTEGER NOT NULL,"
        "  cache_read_tokens INTEGER NOT NULL,"
        "  cache_write_tokens INTEGER NOT NULL,"
        "  cost_usd REAL NOT NULL,"
        "  PRIMARY KEY (day, app, model)) WITHOUT ROWID;",
        /* Later versions append their step here: user_version N runs
         * migrations[N..LEDGER_SCHEMA_VERSION-1], each in the transaction
         * that sets the new user_version. */
};

static int exec(Ledger *l, const char *sql) {
        return sqlite3_exec(l->db, sql, NULL, NULL, NULL);
}

static int thread_migrate(Ledger *l) {
        sqlite3_stmt *st = NULL;
        int rc, version;
        char buf[64];

        rc = sqlite3_prepare_v2(l->db, "PRAGMA user_version", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return rc;
        rc = sqlite3_step(st);
        version = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
        sqlite3_finalize(st);
        if (rc != SQLITE_ROW)
                return rc;

        if (version > LEDGER_SCHEMA_VERSION) {
                char *p = NULL;
                if (asprintf(&p, "The usage database %s was written by a newer bankr-llmd (schema %d; this one "
                             "knows %d). Update bankr-llmd, or move the file away to start a new one.",
                             l->path, version, LEDGER_SCHEMA_VERSION) < 0)
                        p = NULL;
                thread_set_problem(l, p);
                return SQLITE_ERROR;
        }
        for (int v = version; v < LEDGER_SCHEMA_VERSION; v++) {
                rc = exec(l, "BEGIN IMMEDIATE");
                if (rc == SQLITE_OK)
                        rc = exec(l, migrations[v]);
                (void) snprintf(buf, sizeof(buf), "PRAGMA user_version = %d", v + 1);
                if (rc == SQLITE_OK)
                        rc = exec(l, buf);
                if (rc == SQLITE_OK)
                        rc = exec(l, "COMMIT");
                if (rc != SQLITE_OK) {
                        int keep = sqlite3_extended_errcode(l->db);
                        (void) exec(l, "ROLLBACK");
                        return keep ?: rc;
                }
                log_info("Usage database %s: schema %d.", l->path, v + 1);
        }
        return SQLITE_OK;
}

static int thread_open(Ledger *l) {
        _cleanup_close_ int fd = -EBADF;
        sqlite3_stmt *st = NULL;
        int rc, r;

        if (l->db)
                return SQLITE_OK;

        r = mkdir_parents(l->path, 0700);
        if (r < 0)
                log_debug_errno(r, "Failed to create the folder of %s: %m", l->path);
        /* Created 0600 by us: SQLite would use 0644, and its -wal and -shm
         * files take the mode of the database. */
        fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

        rc = sqlite3_open_v2(l->path, &l->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
        if (rc != SQLITE_OK) {
                thread_fail(l, rc, "open");
                if (l->db) {
                        (void) sqlite3_close_v2(l->db);
                        l->db = NULL;
                }
                return rc;
        }
        (void) sqlite3_extended_result_codes(l->db, 1);
        (void) sqlite3_busy_timeout(l->db, LEDGER_BUSY_TIMEOUT_MS);

        /* WAL: readers never wait for the writer; NORMAL sync is durable
         * across application crashes, and a power cut loses at most the last
         * transactions, not the file. */
        rc = sqlite3_prepare_v2(l->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
        if (rc == SQLITE_OK) {
                rc = sqlite3_step(st);
                if (rc == SQLITE_ROW && sqlite3_stricmp((const char *) sqlite3_column_text(st, 0), "wal") != 0)
                        log_warning("The usage database %s is not in WAL mode (%s).", l->path,
                                    sqlite3_column_text(st, 0));
                if (rc == SQLITE_ROW)
                        rc = SQLITE_OK;
                else
                        rc = sqlite3_extended_errcode(l->db);
        }
        sqlite3_finalize(st);
        if (rc == SQLITE_OK)
                rc = exec(l, "PRAGMA synchronous = NORMAL");
        if (rc == SQLITE_OK)
                rc = thread_migrate(l);
        if (rc != SQLITE_OK) {
                if (!l->t_problem || rc != SQLITE_ERROR)
                        thread_fail(l, sqlite3_extended_errcode(l->db) ?: rc, "open");
                if (l->db) {
                        (void) sqlite3_close_v2(l->db);
                        l->db = NULL;
                }
                return rc;
        }
        thread_set_problem(l, NULL);
        return SQLITE_OK;
}

static void thread_retention(Ledger *l) {
        uint64_t now = now_usec(CLOCK_REALTIME), cut;
        sqlite3_stmt *st = NULL;
        int rc;

        if (l->last_retention && now - l->last_retention < 24 * 3600 * USEC_PER_SEC)
                return;
        l->last_retention = now;
        cut = now - (uint64_t) LEDGER_RETENTION_DAYS * 24 * 3600 * USEC_PER_SEC;
        rc = sqlite3_prepare_v2(l->db, "DELETE FROM requests WHERE time < ?1", -1, &st, NULL);
        if (rc == SQLITE_OK) {
                (void) sqlite3_bind_int64(st, 1, (sqlite3_int64) cut);
                rc = sqlite3_step(st);
        }
        sqlite3_finalize(st);
        if (rc == SQLITE_DONE && sqlite3_changes(l->db) > 0)
                log_info("Usage database: removed %d records older than %d days.", sqlite3_changes(l->db),
                         LEDGER_RETENTION_DAYS);
        else if (rc != SQLITE_DONE)
                log_debug("Usage database: retention failed: %s", sqlite3_errmsg(l->db));
}

/* ---- the thread: bookings -------------------------------------------------- */

static int thread_write_books(Ledger *l) {
        static const char insert_sql[] =
                "INSERT INTO requests (time, app, via, model, status, error, input_tokens, output_tokens, "
                "cache_read_tokens, cache_write_tokens, cost_usd, latency_first_ms, latency_total_ms, attempts, "
                "privacy_tier) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
        static const char daily_sql[] =
                "INSERT INTO daily (day, day_end, app, model, requests, errors, input_tokens, output_tokens, "
                "cache_read_tokens, cache_write_tokens, cost_usd) VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?8, ?9, ?10) "
                "ON CONFLICT (day, app, model) DO UPDATE SET requests = requests + 1, errors = errors + excluded.errors, "
                "input_tokens = input_tokens + excluded.input_tokens, "
                "output_tokens = output_tokens + excluded.output_tokens, "
                "cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens, "
                "cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens, "
                "cost_usd = cost_usd + excluded.cost_usd";
        sqlite3_stmt *ins = NULL, *day = NULL;
        int rc;

        if (!l->books)
                return SQLITE_OK;

        rc = exec(l, "BEGIN IMMEDIATE");
        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v2(l->db, insert_sql, -1, &ins, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v2(l->db, daily_sql, -1, &day, NULL);
        for (Job *j = l->books; rc == SQLITE_OK && j; j = j->next) {
                const LedgerRecord *r = &j->record;
                uint64_t d0 = 0, d1 = 0;
                bool error = !streq(r->status, "finished");

                (void) budget_period_bounds(BUDGET_DAY, r->time, &d0, &d1);
                sqlite3_bind_int64(ins, 1, (sqlite3_int64) r->time);
                sqlite3_bind_text(ins, 2, r->app, -1, SQLITE_STATIC);
                sqlite3_bind_text(ins, 3, r->via, -1, SQLITE_STATIC);
                sqlite3_bind_text(ins, 4, r->model, -1, SQLITE_STATIC);
                sqlite3_bind_text(ins, 5, r->status, -1, SQLITE_STATIC);
                sqlite3_bind_text(ins, 6, r->error, -1, SQLITE_STATIC);
                sqlite3_bind_int64(ins, 7, (sqlite3_int64) r->input_tokens);
                sqlite3_bind_int64(ins, 8, (sqlite3_int64) r->output_tokens);
                sqlite3_bind_int64(ins, 9, (sqlite3_int64) r->cache_read_tokens);
                sqlite3_bind_int64(ins, 10, (sqlite3_int64) r->cache_write_tokens);
                sqlite3_bind_double(ins, 11, r->cost_usd);
                sqlite3_bind_double(ins, 12, r->latency_first_ms);
                sqlite3_bind_double(ins, 13, r->latency_total_ms);
                sqlite3_bind_int64(ins, 14, r->attempts);
                sqlite3_bind_text(ins, 15, r->privacy_tier, -1, SQLITE_STATIC);
                rc = sqlite3_step(ins);
                if (rc == SQLITE_DONE)
                        rc = SQLITE_OK;
                (void) sqlite3_reset(ins);
                if (rc != SQLITE_OK)
                        break;

                sqlite3_bind_int64(day, 1, (sqlite3_int64) d0);
                sqlite3_bind_int64(day, 2, (sqlite3_int64) d1);
                sqlite3_bind_text(day, 3, r->app, -1, SQLITE_STATIC);
                sqlite3_bind_text(day, 4, r->model, -1, SQLITE_STATIC);
                sqlite3_bind_int(day, 5, error);
                sqlite3_bind_int64(day, 6, (sqlite3_int64) r->input_tokens);
                sqlite3_bind_int64(day, 7, (sqlite3_int64) r->output_tokens);
                sqlite3_bind_int64(day, 8, (sqlite3_int64) r->cache_read_tokens);
                sqlite3_bind_int64(day, 9, (sqlite3_int64) r->cache_write_tokens);
                sqlite3_bind_double(day, 10, r->cost_usd);
                rc = sqlite3_step(day);
                if (rc == SQLITE_DONE)
                        rc = SQLITE_OK;
                (void) sqlite3_reset(day);
        }
        sqlite3_finalize(ins);
        sqlite3_finalize(day);
        if (rc == SQLITE_OK)
                rc = exec(l, "COMMIT");
        if (rc != SQLITE_OK) {
                rc = sqlite3_extended_errcode(l->db) ?: rc;
                (void) exec(l, "ROLLBACK");
                thread_fail(l, rc, "writing records");
                return rc;
        }

        while (l->books) {
                Job *j = l->books;
                l->books = j->next;
                job_free(j);
        }
        l->books_tail = NULL;
        l->n_books = 0;
        /* A lock that went away leaves the handle open: say it works again. */
        thread_set_problem(l, NULL);
        return SQLITE_OK;
}

static void thread_take_book(Ledger *l, Job *j) {
        j->next = NULL;
        if (l->books_tail)
                l->books_tail->next = j;
        else
                l->books = j;
        l->books_tail = j;
        l->n_books++;

        /* Memory is the last resort: beyond the cap the oldest go. */
        while (l->n_books > LEDGER_UNBOOKED_MAX) {
                Job *old = l->books;
                l->books = old->next;
                job_free(old);
                l->n_books--;
                if (l->dropped++ % 10000 == 0)
                        log_error("The usage database has not worked for %u records: dropping the oldest "
                                  "(%" PRIu64 " so far).", LEDGER_UNBOOKED_MAX, l->dropped);
        }
}

/* ---- the thread: queries --------------------------------------------------- */

/* Keys in local time, as the daily table's days are local. */
#define DAY_KEY_SQL(col) "strftime('%Y-%m-%d', " col " / 1000000, 'unixepoch', 'localtime')"
#define HOUR_KEY_SQL(col) "strftime('%Y-%m-%d %H:00', " col " / 1000000, 'unixepoch', 'localtime')"

static char *dup_col(sqlite3_stmt *st, int i) {
        const unsigned char *t = sqlite3_column_text(st, i);
        return strdup(t ? (const char *) t : "");
}

static int thread_summary(Ledger *l, Job *j) {
        static const char dayexp_d[] = DAY_KEY_SQL("day"), dayexp_r[] = DAY_KEY_SQL("time"),
                          hourexp[] = HOUR_KEY_SQL("time");
        _cleanup_free_ char *sql = NULL, *keys = NULL, *cond = NULL;
        const LedgerFilter *f = &j->filter;
        int64_t S = (int64_t) MIN(f->since, (uint64_t) INT64_MAX);
        int64_t U = f->until ? (int64_t) MIN(f->until, (uint64_t) INT64_MAX) : INT64_MAX;
        int64_t D1 = 0, D2 = 0, A0 = S, A1 = U, B0 = 0, B1 = 0;
        bool use_daily = false;
        sqlite3_stmt *st = NULL;
        size_t alloc = 0;
        int rc, col;

        /* Whole local days from daily, the partial ends from requests. */
        if (!(j->group & LEDGER_GROUP_HOUR)) {
                uint64_t s0, s1, u0;
                if (budget_period_bounds(BUDGET_DAY, (uint64_t) S, &s0, &s1) >= 0) {
                        D1 = (int64_t) (s0 == (uint64_t) S ? s0 : s1);
                        if (U == INT64_MAX)
                                D2 = INT64_MAX;
                        else if (budget_period_bounds(BUDGET_DAY, (uint64_t) U, &u0, NULL) >= 0)
                                D2 = (int64_t) u0;
                        if (D1 < D2) {
                                use_daily = true;
                                A0 = S, A1 = D1;
                                B0 = D2, B1 = U;
                        }
                }
        }

        if (asprintf(&cond, "%s%s", f->app ? " AND app = ?7" : "", f->model ? " AND model = ?8" : "") < 0)
                return -ENOMEM;

        /* Outer keys, in a fixed order: app, model, day, hour. */
        {
                char buf[128] = "";
                if (j->group & LEDGER_GROUP_APP)
                        strcat(buf, "k_app, ");
                if (j->group & LEDGER_GROUP_MODEL)
                        strcat(buf, "k_model, ");
                if (j->group & LEDGER_GROUP_DAY)
                        strcat(buf, "k_day, ");
                if (j->group & LEDGER_GROUP_HOUR)
                        strcat(buf, "k_hour, ");
                keys = strdup(buf);
                if (!keys)
                        return -ENOMEM;
        }

        {
                _cleanup_free_ char *daily = NULL, *grp = NULL;
                bool day = j->group & LEDGER_GROUP_DAY, hour = j->group & LEDGER_GROUP_HOUR;

                if (use_daily &&
                    asprintf(&daily,
                             "SELECT app AS k_app, model AS k_model, %s AS k_day, NULL AS k_hour, requests AS n, "
                             "errors AS e, input_tokens AS i, output_tokens AS o, cache_read_tokens AS cr, "
                             "cache_write_tokens AS cw, cost_usd AS c FROM daily "
                             "WHERE day >= ?1 AND day_end <= ?2%s UNION ALL ",
                             day ? dayexp_d : "NULL", cond) < 0)
                        return -ENOMEM;
                if (keys[0]) {
                        size_t n = strlen(keys);
                        grp = strndup(keys, n - 2);
                        if (!grp)
                                return -ENOMEM;
                }
                if (asprintf(&sql,
                             "SELECT %s sum(n), sum(e), sum(i), sum(o), sum(cr), sum(cw), "
                             "total(c) FROM (%s"
                             "SELECT app AS k_app, model AS k_model, %s AS k_day, %s AS k_hour, 1 AS n, "
                             "status != 'finished' AS e, input_tokens AS i, output_tokens AS o, "
                             "cache_read_tokens AS cr, cache_write_tokens AS cw, cost_usd AS c FROM requests "
                             "WHERE ((time >= ?3 AND time < ?4) OR (time >= ?5 AND time < ?6))%s) "
                             "%s%s %s%s",
                             keys, daily ? daily : "", day ? dayexp_r : "NULL", hour ? hourexp : "NULL", cond,
                             grp ? "GROUP BY " : "", grp ?: "", grp ? "ORDER BY " : "", grp ?: "") < 0)
                        return -ENOMEM;
        }

        rc = sqlite3_prepare_v2(l->db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK) {
                log_error("Usage summary: %s", sqlite3_errmsg(l->db));
                return rc;
        }
        sqlite3_bind_int64(st, 1, D1);
        sqlite3_bind_int64(st, 2, D2);
        sqlite3_bind_int64(st, 3, A0);
        sqlite3_bind_int64(st, 4, A1);
        sqlite3_bind_int64(st, 5, B0);
        sqlite3_bind_int64(st, 6, B1);
        if (f->app)
                sqlite3_bind_text(st, 7, f->app, -1, SQLITE_STATIC);
        if (f->model)
                sqlite3_bind_text(st, 8, f->model, -1, SQLITE_STATIC);

        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                LedgerRow *row;

                col = 0;
                if (j->n == alloc) {
                        size_t na = MAX(alloc * 2, (size_t) 16);
                        LedgerRow *t = reallocarray(j->rows, na, sizeof(LedgerRow));
                        if (!t) {
                                sqlite3_finalize(st);
                                return -ENOMEM;
                        }
                        j->rows = t;
                        alloc = na;
                }
                row = &j->rows[j->n];
                *row = (LedgerRow) {};
                if (j->group & LEDGER_GROUP_APP)
                        row->app = dup_col(st, col++);
                if (j->group & LEDGER_GROUP_MODEL)
                        row->model = dup_col(st, col++);
                if (j->group & LEDGER_GROUP_DAY)
                        row->day = dup_col(st, col++);
                if (j->group & LEDGER_GROUP_HOUR)
                        row->hour = dup_col(st, col++);
                j->n++;
                if ((j->group & LEDGER_GROUP_APP && !row->app) || (j->group & LEDGER_GROUP_MODEL && !row->model) ||
                    (j->group & LEDGER_GROUP_DAY && !row->day) || (j->group & LEDGER_GROUP_HOUR && !row->hour)) {
                        sqlite3_finalize(st);
                        return -ENOMEM;
                }
                row->requests = (uint64_t) sqlite3_column_int64(st, col++);
                row->errors = (uint64_t) sqlite3_column_int64(st, col++);
                row->input_tokens = (uint64_t) sqlite3_column_int64(st, col++);
                row->output_tokens = (uint64_t) sqlite3_column_int64(st, col++);
                row->cache_read_tokens = (uint64_t) sqlite3_column_int64(st, col++);
                row->cache_write_tokens = (uint64_t) sqlite3_column_int64(st, col++);
                row->cost_usd = sqlite3_column_double(st, col++);
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
                return sqlite3_extended_errcode(l->db) ?: rc;
        return SQLITE_OK;
}

static int thread_recent(Ledger *l, Job *j) {
        _cleanup_free_ char *sql = NULL;
        const LedgerFilter *f = &j->filter;
        sqlite3_stmt *st = NULL;
        size_t alloc = 0;
        int rc;

        if (asprintf(&sql,
                     "SELECT id, time, app, via, model, status, error, input_tokens, output_tokens, "
                     "cache_read_tokens, cache_write_tokens, cost_usd, latency_first_ms, latency_total_ms, attempts, "
                     "privacy_tier FROM requests WHERE time >= ?1 AND time < ?2%s%s ORDER BY id DESC LIMIT ?3",
                     f->app ? " AND app = ?7" : "", f->model ? " AND model = ?8" : "") < 0)
                return -ENOMEM;
        rc = sqlite3_prepare_v2(l->db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return rc;
        sqlite3_bind_int64(st, 1, (sqlite3_int64) MIN(f->since, (uint64_t) INT64_MAX));
        sqlite3_bind_int64(st, 2, f->until ? (sqlite3_int64) MIN(f->until, (uint64_t) INT64_MAX) : INT64_MAX);
        sqlite3_bind_int64(st, 3, j->limit);
        if (f->app)
                sqlite3_bind_text(st, 7, f->app, -1, SQLITE_STATIC);
        if (f->model)
                sqlite3_bind_text(st, 8, f->model, -1, SQLITE_STATIC);

        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                LedgerRecord *r;

                if (j->n == alloc) {
                        size_t na = MAX(alloc * 2, (size_t) 16);
                        LedgerRecord *t = reallocarray(j->records, na, sizeof(LedgerRecord));
                        if (!t) {
                                sqlite3_finalize(st);
                                return -ENOMEM;
                        }
                        j->records = t;
                        alloc = na;
                }
                r = &j->records[j->n++];
                *r = (LedgerRecord) {
                        .id = (uint64_t) sqlite3_column_int64(st, 0),
                        .time = (uint64_t) sqlite3_column_int64(st, 1),
                        .app = dup_col(st, 2),
                        .via = dup_col(st, 3),
                        .model = dup_col(st, 4),
                        .status = dup_col(st, 5),
                        .error = dup_col(st, 6),
                        .input_tokens = (uint64_t) sqlite3_column_int64(st, 7),
                        .output_tokens = (uint64_t) sqlite3_column_int64(st, 8),
                        .cache_read_tokens = (uint64_t) sqlite3_column_int64(st, 9),
                        .cache_write_tokens = (uint64_t) sqlite3_column_int64(st, 10),
                        .cost_usd = sqlite3_column_double(st, 11),
                        .latency_first_ms = sqlite3_column_double(st, 12),
                        .latency_total_ms = sqlite3_column_double(st, 13),
                        .attempts = (uint32_t) sqlite3_column_int64(st, 14),
                        .privacy_tier = dup_col(st, 15),
                };
                if (!r->app || !r->via || !r->model || !r->status || !r->error || !r->privacy_tier) {
                        sqlite3_finalize(st);
                        return -ENOMEM;
                }
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
                return sqlite3_extended_errcode(l->db) ?: rc;
        return SQLITE_OK;
}

/* Runs one query job: the answer, or the reason there is none. */
static void thread_query(Ledger *l, Job *j) {
        int rc;

        if (!l->db || l->n_books > 0) {
                /* Unwritten records would be missing from any answer. */
                j->error = -EIO;
                j->problem = strdup(l->t_problem ?: "The usage database is not available.");
                return;
        }
        rc = j->type == JOB_SUMMARY ? thread_summary(l, j) : thread_recent(l, j);
        if (rc == SQLITE_OK)
                thread_set_problem(l, NULL);
        else if (rc == -ENOMEM) {
                j->error = -ENOMEM;
                j->problem = strdup("Out of memory while reading the usage database.");
        } else if (rc != SQLITE_OK) {
                thread_fail(l, rc, "reading");
                j->error = -EIO;
                j->problem = strdup(l->t_problem ?: "The usage database failed.");
        }
        if (j->error < 0) {
                /* Keep nothing half-read. */
                for (size_t i = 0; i < j->n; i++) {
                        if (j->rows)
                                row_done(&j->rows[i]);
                        if (j->records)
                                ledger_record_done(&j->records[i]);
                }
                j->n = 0;
        }
}

static void thread_write_file(Ledger *l, Job *j) {
        int r = mkdir_parents(j->path, 0700);
        if (r >= 0)
                r = write_file_atomic(j->path, j->data, strlen(j->data), 0600);
        if (r < 0)
                log_error_errno(r, "Failed to write %s: %m", j->path);
        j->error = r;
}

static void *thread_main(void *userdata) {
        Ledger *l = userdata;

        pthread_mutex_lock(&l->lock);
        for (;;) {
                Job *batch, *done = NULL, *done_tail = NULL;
                bool quit;

                while (!l->todo && !l->quit)
                        pthread_cond_wait(&l->wake, &l->lock);
                batch = l->todo;
                l->todo = l->todo_tail = NULL;
                quit = l->quit;
                pthread_mutex_unlock(&l->lock);

                if (!batch && quit)
                        break;

                (void) thread_open(l);

                /* Bookings first: a query queued after a booking sees it. */
                for (Job *j = batch, *next; j; j = next) {
                        next = j->next;
                        if (j->type == JOB_BOOK)
                                thread_take_book(l, j);
                        else {
                                j->next = NULL;
                                if (done_tail)
                                        done_tail->next = j;
                                else
                                        done = j;
                                done_tail = j;
                        }
                }
                if (l->db)
                        (void) thread_write_books(l);
                if (l->db)
                        thread_retention(l);
                for (Job *j = done; j; j = j->next) {
                        if (j->type == JOB_SUMMARY || j->type == JOB_RECENT)
                                thread_query(l, j);
                        else if (j->type == JOB_WRITE_FILE)
                                thread_write_file(l, j);
                }

                pthread_mutex_lock(&l->lock);
                if (done) {
                        if (l->done_tail)
                                l->done_tail->next = done;
                        else
                                l->done = done;
                        l->done_tail = done_tail;
                }
                if (!streq_ptr(l->problem, l->t_problem)) {
                        free(l->problem);
                        l->problem = l->t_problem ? strdup(l->t_problem) : NULL;
                }
                l->unbooked = l->n_books;
                (void) eventfd_write(l->efd, 1);
        }
        /* Stopping: whatever could not be written is lost now; say so. */
        if (l->n_books > 0)
                log_error("bankr-llmd is stopping with %u usage records that could not be written to %s.",
                          l->n_books, l->path);
        while (l->books) {
                Job *j = l->books;
                l->books = j->next;
                job_free(j);
        }
        if (l->db)
                (void) sqlite3_close_v2(l->db);
        l->db = NULL;
        return NULL;
}

/* ---- the loop's side ------------------------------------------------------- */

static void ledger_enqueue(Ledger *l, Job *j) {
        pthread_mutex_lock(&l->lock);
        j->next = NULL;
        if (l->todo_tail)
                l->todo_tail->next = j;
        else
                l->todo = j;
        l->todo_tail = j;
        if (j->type != JOB_BOOK)
                l->pending++;
        pthread_cond_signal(&l->wake);
        pthread_mutex_unlock(&l->lock);
}

static void job_complete(Job *j) {
        switch (j->type) {
        case JOB_SUMMARY:
                ((LedgerSummaryCallback) j->callback)(j->error, j->problem, j->rows, j->n, j->userdata);
                break;
        case JOB_RECENT:
                ((LedgerRecentCallback) j->callback)(j->error, j->problem, j->records, j->n, j->userdata);
                break;
        default:
                break;
        }
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Ledger *l = userdata;
        Job *j = calloc(1, sizeof(Job));

        if (j) {
                j->type = JOB_RETRY;
                ledger_enqueue(l, j);
        }
        return 0;
}

static int on_done(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Ledger *l = userdata;
        eventfd_t v;
        Job *done;
        bool changed;
        unsigned unbooked;

        (void) eventfd_read(l->efd, &v);

        pthread_mutex_lock(&l->lock);
        done = l->done;
        l->done = l->done_tail = NULL;
        for (Job *j = done; j; j = j->next)
                l->pending--;
        changed = !streq_ptr(l->problem, l->problem_loop);
        if (changed) {
                free(l->problem_loop);
                l->problem_loop = l->problem ? strdup(l->problem) : NULL;
        }
        unbooked = l->unbooked;
        pthread_mutex_unlock(&l->lock);

        while (done) {
                Job *j = done;
                done = j->next;
                job_complete(j);
                job_free(j);
        }

        /* Try again later while records wait in memory. */
        if (unbooked > 0 && l->retry_timer) {
                int enabled = SD_EVENT_OFF;
                (void) sd_event_source_get_enabled(l->retry_timer, &enabled);
                if (enabled == SD_EVENT_OFF) {
                        (void) sd_event_source_set_time_relative(l->retry_timer, l->retry_usec);
                        (void) sd_event_source_set_enabled(l->retry_timer, SD_EVENT_ONESHOT);
                }
        }
        if (changed && l->state_cb)
                l->state_cb(l->problem_loop, l->state_userdata);
        return 0;
}

int ledger_new(sd_event *e, const char *path, Ledger **ret) {
        _cleanup_(ledger_freep) Ledger *l = NULL;
        int r;

        if (!e || !path || !ret)
                return -EINVAL;
        l = calloc(1, sizeof(Ledger));
        if (!l)
                return -ENOMEM;
        l->efd = -EBADF;
        pthread_mutex_init(&l->lock, NULL);
        pthread_cond_init(&l->wake, NULL);
        l->event = sd_event_ref(e);
        l->path = strdup(path);
        if (!l->path)
                return -ENOMEM;

        l->retry_usec = getenv_msec("BANKR_LLMD_LEDGER_RETRY_MS", LEDGER_RETRY_USEC, 1, 24ULL * 3600 * 1000);

        l->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (l->efd < 0)
                return -errno;
        r = sd_event_add_io(e, &l->done_source, l->efd, EPOLLIN, on_done, l);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(l->done_source, "ledger-done");
        r = sd_event_add_time_relative(e, &l->retry_timer, CLOCK_MONOTONIC, l->retry_usec, 0, on_retry, l);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(l->retry_timer, SD_EVENT_OFF);
        (void) sd_event_source_set_description(l->retry_timer, "ledger-retry");

        r = pthread_create(&l->thread, NULL, thread_main, l);
        if (r != 0)
                return -r;
        l->thread_started = true;

        *ret = TAKE_PTR(l);
        return 0;
}

void ledger_start(Ledger *l) {
        /* Open (and migrate) now, not at the first booking. */
        (void) on_retry(NULL, 0, l);
}

Ledger *ledger_free(Ledger *l) {
        Job *done;

        if (!l)
                return NULL;
        if (l->thread_started) {
                pthread_mutex_lock(&l->lock);
                l->quit = true;
                pthread_cond_signal(&l->wake);
                pthread_mutex_unlock(&l->lock);
                (void) pthread_join(l->thread, NULL);
        }
        /* Answers nobody will dispatch now, and jobs never started. */
        done = l->done;
        while (done) {
                Job *j = done;
                done = j->next;
                job_complete(j);
                job_free(j);
        }
        while (l->todo) {
                Job *j = l->todo;
                l->todo = j->next;
                j->error = -ECANCELED;
                job_complete(j);
                job_free(j);
        }
        sd_event_source_disable_unref(l->done_source);
        sd_event_source_disable_unref(l->retry_timer);
        if (l->efd >= 0)
                (void) close(l->efd);
        sd_event_unref(l->event);
        pthread_mutex_destroy(&l->lock);
        pthread_cond_destroy(&l->wake);
        free(l->problem);
        free(l->problem_loop);
        free(l->t_problem);
        free(l->path);
        free(l);
        return NULL;
}

void ledger_set_state_callback(Ledger *l, LedgerStateCallback cb, void *userdata) {
        l->state_cb = cb;
        l->state_userdata = userdata;
}

int ledger_book(Ledger *l, const LedgerRecord *rec) {
        Job *j;
        int r;

        if (!l || !rec)
                return -EINVAL;
        j = calloc(1, sizeof(Job));
        if (!j)
                return -ENOMEM;
        j->type = JOB_BOOK;
        r = record_copy(&j->record, rec);
        if (r < 0) {
                free(j);
                return r;
        }
        ledger_enqueue(l, j);
        return 0;
}

static int ledger_query(Ledger *l, JobType type, unsigned group, unsigned limit, const LedgerFilter *f,
                        void *cb, void *userdata) {
        Job *j;
        int r;

        if (!l || !cb)
                return -EINVAL;
        j = calloc(1, sizeof(Job));
        if (!j)
                return -ENOMEM;
        j->type = type;
        j->group = group;
        j->limit = limit;
        j->callback = cb;
        j->userdata = userdata;
        r = filter_copy(&j->filter, f);
        if (r < 0) {
                job_free(j);
                return r;
        }
        ledger_enqueue(l, j);
        return 0;
}

int ledger_summary(Ledger *l, unsigned group, const LedgerFilter *f, LedgerSummaryCallback cb, void *userdata) {
        return ledger_query(l, JOB_SUMMARY, group, 0, f, (void *) cb, userdata);
}

int ledger_recent(Ledger *l, unsigned limit, const LedgerFilter *f, LedgerRecentCallback cb, void *userdata) {
        if (limit == 0 || limit > LEDGER_RECENT_MAX)
                return -EINVAL;
        return ledger_query(l, JOB_RECENT, 0, limit, f, (void *) cb, userdata);
}

int ledger_write_file(Ledger *l, const char *path, const char *data) {
        Job *j;

        if (!l || !path || !data)
                return -EINVAL;
        j = calloc(1, sizeof(Job));
        if (!j)
                return -ENOMEM;
        j->type = JOB_WRITE_FILE;
        j->path = strdup(path);
        j->data = strdup(data);
        if (!j->path || !j->data) {
                job_free(j);
                return -ENOMEM;
        }
        ledger_enqueue(l, j);
        return 0;
}

const char *ledger_problem(Ledger *l) {
        return l ? l->problem_loop : NULL;
}

unsigned ledger_unbooked(Ledger *l) {
        unsigned n;

        pthread_mutex_lock(&l->lock);
        n = l->unbooked;
        pthread_mutex_unlock(&l->lock);
        return n;
}

unsigned ledger_pending(Ledger *l) {
        unsigned n;

        pthread_mutex_lock(&l->lock);
        n = l->pending;
        pthread_mutex_unlock(&l->lock);
        return n;
}
