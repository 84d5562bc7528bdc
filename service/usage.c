/* SPDX-License-Identifier: MIT */
/*
 * bot.bankr.LLM1.Usage (see usage.h): Summary and Recent answered from the
 * ledger's thread, budgets kept in memory and in budgets.json, the spending
 * of every app in its current day, week and month kept in memory (read from
 * the database once at start, then added to at each booking), and the
 * calling app of D-Bus callers.
 */
#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>

#include "app-id.h"
#include "budget.h"
#include "bus-util.h"
#include "log.h"
#include "polkit.h"
#include "proc-app.h"
#include "usage.h"

#define USAGE_MAX_APPS 4096U
#define USAGE_MAX_BUDGETS 256U
#define BUDGETS_FILE_MAX (1024U * 1024U)

/* What one app spent in its current periods, and what it has in flight. */
typedef struct AppSpend {
        char *app;
        uint64_t start[_BUDGET_PERIOD_MAX];
        double spent[_BUDGET_PERIOD_MAX];
        double in_flight;
        unsigned n_in_flight;
} AppSpend;

typedef struct Budget {
        char *app;
        double limit;
        BudgetPeriod period;
        uint64_t notified; /* start of the period BudgetReached was sent for */
} Budget;

typedef struct Caller Caller;
struct Caller {
        Usage *usage;
        Caller *next;
        char *name;           /* unique bus name */
        char *app;            /* NULL while being looked up */
        sd_bus_slot *creds_slot;
};

/* A call waiting for its caller's app or for the start-up reading. */
typedef struct Parked Parked;
struct Parked {
        Parked *next;
        sd_bus_message *m;
};

struct Usage {
        sd_event *event;
        sd_bus *bus;
        Polkit *polkit;
        Ledger *ledger;
        char *budgets_path;

        Budget *budgets;
        size_t n_budgets, n_budgets_allocated;
        AppSpend *apps;
        size_t n_apps, n_apps_allocated;

        Caller *callers;
        Parked *parked;
        sd_bus_slot *owner_match;

        unsigned loads_pending; /* start-up Summary queries not answered yet */
        sd_event_source *reset_timer;
};

/* ---- spending -------------------------------------------------------------- */

static AppSpend *app_spend(Usage *u, const char *app, bool create) {
        AppSpend *a;

        for (size_t i = 0; i < u->n_apps; i++)
                if (streq(u->apps[i].app, app))
                        return &u->apps[i];
        if (!create || u->n_apps >= USAGE_MAX_APPS)
                return NULL;
        if (!GREEDY_REALLOC(u->apps, u->n_apps_allocated, u->n_apps + 1))
                return NULL;
        a = &u->apps[u->n_apps];
        *a = (AppSpend) { .app = strdup(app) };
        if (!a->app)
                return NULL;
        u->n_apps++;
        return a;
}

/* What app spent in the period of p holding now. */
static double spent_now(Usage *u, const char *app, BudgetPeriod p, uint64_t now) {
        AppSpend *a = app_spend(u, app, false);
        uint64_t start;

        if (!a || budget_period_bounds(p, now, &start, NULL) < 0)
                return 0.0;
        return a->start[p] == start ? a->spent[p] : 0.0;
}

static void spend_add(AppSpend *a, uint64_t time, double cost) {
        for (int p = 0; p < _BUDGET_PERIOD_MAX; p++) {
                uint64_t start;
                if (budget_period_bounds((BudgetPeriod) p, time, &start, NULL) < 0)
                        continue;
                if (a->start[p] != start) {
                        /* A later period: start afresh. An earlier one (the
                         * clock went back) does not count for the current. */
                        if (start < a->start[p])
                                continue;
                        a->start[p] = start;
                        a->spent[p] = 0.0;
                }
                a->spent[p] += cost;
        }
}

static Budget *budget_find(Usage *u, const char *app) {
        for (size_t i = 0; i < u->n_budgets; i++)
                if (streq(u->budgets[i].app, app))
                        return &u->budgets[i];
        return NULL;
}

/* ---- budgets.json ---------------------------------------------------------- */

static void budgets_save(Usage *u) {
        struct json_object *root = json_object_new_object(), *list = json_object_new_array();
        const char *text;

        if (!root || !list)
                goto oom;
        for (size_t i = 0; i < u->n_budgets; i++) {
                struct json_object *o = json_object_new_object();
                if (!o || json_object_array_add(list, o) < 0)
                        goto oom;
                json_object_object_add(o, "app", json_object_new_string(u->budgets[i].app));
                json_object_object_add(o, "limit_usd", json_object_new_double(u->budgets[i].limit));
                json_object_object_add(o, "period", json_object_new_string(budget_period_to_string(u->budgets[i].period)));
                json_object_object_add(o, "notified_period", json_object_new_int64((int64_t) u->budgets[i].notified));
        }
        json_object_object_add(root, "budgets", TAKE_PTR(list));
        text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text || ledger_write_file(u->ledger, u->budgets_path, text) < 0)
                goto oom;
        json_object_put(root);
        return;
oom:
        json_object_put(list);
        json_object_put(root);
        log_error("Out of memory: the budgets could not be saved to %s.", u->budgets_path);
}

static void budgets_load(Usage *u) {
        _cleanup_free_ char *data = NULL;
        struct json_object *root = NULL, *list, *o, *v;
        int r;

        r = read_full_file(u->budgets_path, BUDGETS_FILE_MAX, &data, NULL);
        if (r == -ENOENT)
                return;
        if (r < 0) {
                log_warning_errno(r, "Failed to read the budgets from %s: %m; no app has a budget until one is set.",
                                  u->budgets_path);
                return;
        }
        root = json_tokener_parse(data);
        if (!root || !json_object_object_get_ex(root, "budgets", &list) ||
            !json_object_is_type(list, json_type_array)) {
                log_warning("%s is not a budgets file bankr-llmd wrote; ignoring it (no app has a budget until one "
                            "is set).", u->budgets_path);
                json_object_put(root);
                return;
        }
        for (size_t i = 0; i < json_object_array_length(list) && u->n_budgets < USAGE_MAX_BUDGETS; i++) {
                const char *app = NULL, *period = NULL;
                double limit = NAN;
                uint64_t notified = 0;
                BudgetPeriod p;
                Budget *b;

                o = json_object_array_get_idx(list, i);
                if (json_object_object_get_ex(o, "app", &v) && json_object_is_type(v, json_type_string))
                        app = json_object_get_string(v);
                if (json_object_object_get_ex(o, "period", &v) && json_object_is_type(v, json_type_string))
                        period = json_object_get_string(v);
                if (json_object_object_get_ex(o, "limit_usd", &v) &&
                    (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
                        limit = json_object_get_double(v);
                if (json_object_object_get_ex(o, "notified_period", &v) && json_object_is_type(v, json_type_int))
                        notified = (uint64_t) json_object_get_int64(v);
                p = budget_period_from_string(period);
                if (!app || !app_id_is_valid(app, strlen(app)) || p < 0 || !budget_limit_is_valid(limit) ||
                    limit == 0.0 || budget_find(u, app)) {
                        log_warning("Ignoring entry %zu of %s: not a valid budget.", i, u->budgets_path);
                        continue;
                }
                if (!GREEDY_REALLOC(u->budgets, u->n_budgets_allocated, u->n_budgets + 1))
                        break;
                b = &u->budgets[u->n_budgets];
                *b = (Budget) { .app = strdup(app), .limit = limit, .period = p, .notified = notified };
                if (!b->app)
                        break;
                u->n_budgets++;
        }
        json_object_put(root);
}

/* ---- signals and the reset timer -------------------------------------------- */

static void usage_emit_budgets(Usage *u) {
        int r = sd_bus_emit_properties_changed(u->bus, OBJECT_PATH, IFACE_USAGE, "Budgets", NULL);
        if (r < 0)
                log_debug_errno(r, "Failed to emit PropertiesChanged for Budgets: %m");
}

/* BudgetReached once per period, when spending reaches the limit. */
static void budget_check_reached(Usage *u, Budget *b, uint64_t now) {
        uint64_t start;
        double spent;
        int r;

        if (budget_period_bounds(b->period, now, &start, NULL) < 0)
                return;
        spent = spent_now(u, b->app, b->period, now);
        if (spent < b->limit || b->notified == start)
                return;
        b->notified = start;
        budgets_save(u);
        log_info("App %s reached its budget: %.4f of %.4f USD this %s.", b->app, spent, b->limit,
                 budget_period_to_string(b->period));
        r = sd_bus_emit_signal(u->bus, OBJECT_PATH, IFACE_USAGE, "BudgetReached", "sdd", b->app, spent, b->limit);
        if (r < 0)
                log_warning_errno(r, "Failed to emit BudgetReached: %m");
}

static void usage_arm_reset(Usage *u);

static int on_reset(sd_event_source *s, uint64_t usec, void *userdata) {
        Usage *u = userdata;
        /* A period ended: spent_usd and resets_at of some budget changed. */
        usage_emit_budgets(u);
        usage_arm_reset(u);
        return 0;
}

static void usage_arm_reset(Usage *u) {
        uint64_t now = now_usec(CLOCK_REALTIME), next = UINT64_MAX, end;
        int r;

        for (size_t i = 0; i < u->n_budgets; i++)
                if (budget_period_bounds(u->budgets[i].period, now, NULL, &end) >= 0)
                        next = MIN(next, end);
        if (next == UINT64_MAX) {
                if (u->reset_timer)
                        (void) sd_event_source_set_enabled(u->reset_timer, SD_EVENT_OFF);
                return;
        }
        if (!u->reset_timer) {
                r = sd_event_add_time(u->event, &u->reset_timer, CLOCK_REALTIME, next, USEC_PER_SEC, on_reset, u);
                if (r < 0) {
                        log_warning_errno(r, "Failed to set the budget reset timer: %m");
                        return;
                }
                (void) sd_event_source_set_description(u->reset_timer, "budget-reset");
        } else
                (void) sd_event_source_set_time(u->reset_timer, next);
        (void) sd_event_source_set_enabled(u->reset_timer, SD_EVENT_ONESHOT);
}

/* ---- parked calls ------------------------------------------------------------ */

static void usage_unpark(Usage *u, bool (*ready)(Usage *u, sd_bus_message *m)) {
        Parked **pp = &u->parked;

        while (*pp) {
                Parked *p = *pp;
                if (ready && !ready(u, p->m)) {
                        pp = &p->next;
                        continue;
                }
                *pp = p->next;
                if (sd_bus_message_rewind(p->m, true) < 0 ||
                    sd_bus_enqueue_for_read(sd_bus_message_get_bus(p->m), p->m) < 0) {
                        log_error("Failed to resume a call after looking up its caller.");
                        (void) sd_bus_reply_method_errorf(p->m, SD_BUS_ERROR_FAILED,
                                                          "Internal error while identifying the calling app.");
                }
                sd_bus_message_unref(p->m);
                free(p);
        }
}

static int usage_park(Usage *u, sd_bus_message *m) {
        Parked *p = calloc(1, sizeof(Parked));

        if (!p)
                return -ENOMEM;
        p->m = sd_bus_message_ref(m);
        /* In arrival order: calls of one client are dispatched again in the
         * order it sent them. */
        Parked **pp = &u->parked;
        while (*pp)
                pp = &(*pp)->next;
        *pp = p;
        return 0;
}

static Caller *caller_find(Usage *u, const char *name) {
        for (Caller *c = u->callers; c; c = c->next)
                if (streq(c->name, name))
                        return c;
        return NULL;
}

static bool parked_ready(Usage *u, sd_bus_message *m) {
        Caller *c = caller_find(u, strempty(sd_bus_message_get_sender(m)));
        return u->loads_pending == 0 && (!c || c->app);
}

static void caller_free(Usage *u, Caller *c) {
        for (Caller **cc = &u->callers; *cc; cc = &(*cc)->next)
                if (*cc == c) {
                        *cc = c->next;
                        break;
                }
        sd_bus_slot_unref(c->creds_slot);
        free(c->name);
        free(c->app);
        free(c);
}

/* Drops parked calls of a caller that left (nobody to answer). */
static void usage_drop_parked(Usage *u, const char *name) {
        Parked **pp = &u->parked;

        while (*pp) {
                Parked *p = *pp;
                if (!streq_ptr(sd_bus_message_get_sender(p->m), name)) {
                        pp = &p->next;
                        continue;
                }
                *pp = p->next;
                sd_bus_message_unref(p->m);
                free(p);
        }
}

static int creds_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Caller *c = userdata;
        Usage *u = c->usage;
        uint32_t pid = 0;
        int r;

        c->creds_slot = sd_bus_slot_unref(c->creds_slot);

        if (sd_bus_message_is_method_error(reply, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(reply);
                if (sd_bus_error_has_name(e, SD_BUS_ERROR_NAME_HAS_NO_OWNER)) {
                        usage_drop_parked(u, c->name);
                        caller_free(u, c);
                        return 0;
                }
                log_warning("Failed to get the credentials of %s: %s", c->name, strna(e->message));
        } else {
                r = sd_bus_message_enter_container(reply, 'a', "{sv}");
                while (r > 0) {
                        const char *key;
                        r = sd_bus_message_enter_container(reply, 'e', "sv");
                        if (r <= 0)
                                break;
                        r = sd_bus_message_read(reply, "s", &key);
                        if (r >= 0 && streq(key, "ProcessID"))
                                r = sd_bus_message_read(reply, "v", "u", &pid);
                        else if (r >= 0)
                                r = sd_bus_message_skip(reply, "v");
                        if (r >= 0)
                                r = sd_bus_message_exit_container(reply);
                        if (r >= 0)
                                r = 1;
                }
        }

        if (pid > 0)
                r = pid_app_id((pid_t) pid, &c->app);
        else
                r = -ESRCH;
        if (r < 0 || !c->app) {
                c->app = strdup("unknown");
                if (!c->app) {
                        usage_drop_parked(u, c->name);
                        caller_free(u, c);
                        return 0;
                }
        }
        log_debug("Caller %s (pid %" PRIu32 ") is app %s.", c->name, pid, c->app);
        usage_unpark(u, parked_ready);
        return 0;
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Usage *u = userdata;
        const char *name, *old_owner, *new_owner;
        Caller *c;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        if (name[0] != ':' || !isempty(new_owner))
                return 0;
        c = caller_find(u, name);
        if (c) {
                usage_drop_parked(u, name);
                caller_free(u, c);
        }
        return 0;
}

int usage_caller_app(Usage *u, sd_bus_message *m, const char **ret_app, sd_bus_error *error) {
        const char *sender = sd_bus_message_get_sender(m);
        sd_bus *bus = sd_bus_message_get_bus(m);
        Caller *c;
        int r;

        if (!u || !m || !ret_app)
                return -EINVAL;

        c = sender ? caller_find(u, sender) : NULL;
        if (c && c->app && u->loads_pending == 0) {
                *ret_app = c->app;
                return 1;
        }
        if (!sender || !sd_bus_is_bus_client(bus)) {
                /* A direct connection: nobody to ask. */
                if (u->loads_pending > 0)
                        goto park;
                *ret_app = "unknown";
                return 1;
        }
        if (!c) {
                if (!(c = calloc(1, sizeof(Caller))))
                        return -ENOMEM;
                c->usage = u;
                c->name = strdup(sender);
                if (!c->name) {
                        free(c);
                        return -ENOMEM;
                }
                c->next = u->callers;
                u->callers = c;
                r = sd_bus_call_method_async(bus, &c->creds_slot, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                             "org.freedesktop.DBus", "GetConnectionCredentials", creds_reply, c, "s",
                                             sender);
                if (r < 0) {
                        caller_free(u, c);
                        return sd_bus_error_setf(error, SD_BUS_ERROR_FAILED,
                                                 "Cannot identify the calling app: %s", strerror(-r));
                }
        }
park:
        r = usage_park(u, m);
        if (r < 0)
                return r;
        return 0;
}

/* ---- admission and booking --------------------------------------------------- */

int usage_admit(Usage *u, const char *app, double estimate_usd, sd_bus_error *error) {
        uint64_t now = now_usec(CLOCK_REALTIME), end = 0;
        AppSpend *a;
        Budget *b;
        double spent;

        if (!u || !app)
                return -EINVAL;
        if (!isfinite(estimate_usd) || estimate_usd < 0)
                estimate_usd = 0;

        b = budget_find(u, app);
        if (b) {
                a = app_spend(u, app, false);
                spent = spent_now(u, app, b->period, now);
                if (!budget_may_start(b->limit, spent, a ? a->in_flight : 0.0)) {
                        char when[64] = "";
                        time_t t;
                        struct tm tm;

                        (void) budget_period_bounds(b->period, now, NULL, &end);
                        t = (time_t) (end / USEC_PER_SEC);
                        if (localtime_r(&t, &tm))
                                (void) strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
                        /* debug: an app retrying in a loop must not flood the journal. */
                        log_debug("Refused a request of %s: its budget of %.4f USD per %s is spent (%.4f, %.4f in "
                                  "flight).", app, b->limit, budget_period_to_string(b->period), spent,
                                  a ? a->in_flight : 0.0);
                        return sd_bus_error_setf(error, BUS_ERROR_BUDGET_EXCEEDED,
                                                 "The app %s has spent its budget of %.2f USD per %s (%.4f USD spent%s). "
                                                 "It resets at %s; or raise it with \"bankr-llm budget set %s USD/%s\".",
                                                 app, b->limit, budget_period_to_string(b->period), spent,
                                                 a && a->n_in_flight > 0 ? ", more in flight" : "", when, app,
                                                 budget_period_to_string(b->period));
                }
        }
        a = app_spend(u, app, true);
        if (a) {
                a->in_flight += estimate_usd;
                a->n_in_flight++;
        }
        return 0;
}

void usage_release(Usage *u, const char *app, double estimate_usd) {
        AppSpend *a;

        if (!u || !app)
                return;
        a = app_spend(u, app, false);
        if (!a || a->n_in_flight == 0)
                return;
        a->n_in_flight--;
        a->in_flight = a->n_in_flight == 0 ? 0.0 : MAX(a->in_flight - (isfinite(estimate_usd) ? estimate_usd : 0), 0.0);
}

void usage_book(Usage *u, double estimate_usd, const LedgerRecord *rec) {
        uint64_t now = now_usec(CLOCK_REALTIME);
        AppSpend *a;
        Budget *b;
        int r;

        if (!u || !rec || !rec->app)
                return;
        usage_release(u, rec->app, estimate_usd);

        r = ledger_book(u->ledger, rec);
        if (r < 0)
                log_error_errno(r, "Failed to book a request of %s: %m", rec->app);

        a = app_spend(u, rec->app, true);
        if (a && isfinite(rec->cost_usd) && rec->cost_usd > 0)
                spend_add(a, rec->time ?: now, rec->cost_usd);

        b = budget_find(u, rec->app);
        if (b) {
                usage_emit_budgets(u);
                budget_check_reached(u, b, now);
        }
}

Ledger *usage_ledger(Usage *u) {
        return u ? u->ledger : NULL;
}

/* ---- start-up: what each app spent in its current periods ------------------ */

typedef struct LoadQuery {
        Usage *usage;
        BudgetPeriod period;
        uint64_t start;
} LoadQuery;

static void on_load(int error, const char *problem, const LedgerRow *rows, size_t n, void *userdata) {
        LoadQuery *q = userdata;
        Usage *u = q->usage;

        if (error == -ECANCELED) {
                free(q);
                return;
        }
        if (error < 0)
                log_warning("Budgets count only what is spent from now on: %s", strna(problem));
        for (size_t i = 0; i < n; i++) {
                AppSpend *a = app_spend(u, rows[i].app, true);
                if (!a)
                        continue;
                /* Bookings wait for this answer (calls are parked), so nothing
                 * is counted twice. */
                a->start[q->period] = q->start;
                a->spent[q->period] = rows[i].cost_usd;
        }
        free(q);
        if (--u->loads_pending == 0) {
                log_debug("Usage: spending of %zu app(s) read.", u->n_apps);
                usage_emit_budgets(u);
                for (size_t i = 0; i < u->n_budgets; i++)
                        budget_check_reached(u, &u->budgets[i], now_usec(CLOCK_REALTIME));
                usage_unpark(u, parked_ready);
        }
}

static int usage_start_load(Usage *u) {
        uint64_t now = now_usec(CLOCK_REALTIME);

        for (int p = 0; p < _BUDGET_PERIOD_MAX; p++) {
                LoadQuery *q = calloc(1, sizeof(LoadQuery));
                int r;

                if (!q)
                        return -ENOMEM;
                q->usage = u;
                q->period = (BudgetPeriod) p;
                r = budget_period_bounds(q->period, now, &q->start, NULL);
                if (r >= 0)
                        r = ledger_summary(u->ledger, LEDGER_GROUP_APP, &(LedgerFilter) { .since = q->start }, on_load, q);
                if (r < 0) {
                        free(q);
                        return r;
                }
                u->loads_pending++;
        }
        return 0;
}

/* ---- the interface ------------------------------------------------------------ */

typedef struct FilterRead {
        LedgerFilter *filter;
        sd_bus_error *error;
} FilterRead;

static int read_filter_entry(sd_bus_message *m, const char *key, void *userdata) {
        FilterRead *fr = userdata;
        LedgerFilter *f = fr->filter;
        sd_bus_error *error = fr->error;
        const char *contents = NULL, *s;
        char **dst = NULL;
        int r;

        r = sd_bus_message_peek_type(m, NULL, &contents);
        if (r < 0)
                return r;
        if (streq(key, "since") || streq(key, "until")) {
                uint64_t v;
                if (!streq(contents, "t"))
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Filter \"%s\" must be a t (µs since the epoch), not %s.",
                                                 key, contents);
                r = sd_bus_message_read(m, "v", "t", &v);
                if (r < 0)
                        return r;
                if (streq(key, "since"))
                        f->since = v;
                else
                        f->until = v;
        } else if (streq(key, "app") || streq(key, "model")) {
                if (!streq(contents, "s"))
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Filter \"%s\" must be a string, not %s.", key, contents);
                r = sd_bus_message_read(m, "v", "s", &s);
                if (r < 0)
                        return r;
                if (isempty(s) || strlen(s) > 256)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Filter \"%s\" must be 1 to 256 bytes long.", key);
                dst = streq(key, "app") ? &f->app : &f->model;
                r = free_and_strdup(dst, s);
                if (r < 0)
                        return r;
        } else
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Unknown filter \"%s\": use since, until, app or model.", key);
        return 0;
}

static int read_filter(sd_bus_message *m, LedgerFilter *f, sd_bus_error *error) {
        int r;

        r = bus_dict_walk(m, read_filter_entry, &(FilterRead) { .filter = f, .error = error });
        if (r < 0)
                return r;
        if (f->until && f->until <= f->since)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Filter \"until\" must come after \"since\".");
        return 0;
}

static int parse_group(const char *s, unsigned *ret, sd_bus_error *error) {
        unsigned g = 0;
        const char *p = s;

        while (*p) {
                size_t n = strcspn(p, ",");
                unsigned bit;

                if (n == 3 && memcmp(p, "app", 3) == 0)
                        bit = LEDGER_GROUP_APP;
                else if (n == 5 && memcmp(p, "model", 5) == 0)
                        bit = LEDGER_GROUP_MODEL;
                else if (n == 3 && memcmp(p, "day", 3) == 0)
                        bit = LEDGER_GROUP_DAY;
                else if (n == 4 && memcmp(p, "hour", 4) == 0)
                        bit = LEDGER_GROUP_HOUR;
                else
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Unknown group key \"%.*s\" in \"%s\": group by a comma-separated "
                                                 "list of app, model, day and hour, or \"\" for one total row.",
                                                 (int) MIN(n, (size_t) 64), p, s);
                if (g & bit)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Group key \"%.*s\" is given twice in \"%s\".", (int) n, p, s);
                g |= bit;
                p += n;
                if (*p == ',') {
                        p++;
                        if (!*p)
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "Group \"%s\" ends with a comma.", s);
                }
        }
        *ret = g;
        return 0;
}

static void filter_clear(LedgerFilter *f) {
        free(f->app);
        free(f->model);
}

static int reply_ledger_error(sd_bus_message *m, int error, const char *problem) {
        if (error == -ECANCELED)
                return sd_bus_reply_method_errorf(m, BUS_ERROR_LEDGER_UNAVAILABLE, "bankr-llmd is stopping.");
        return sd_bus_reply_method_errorf(m, BUS_ERROR_LEDGER_UNAVAILABLE, "%s",
                                          problem ?: "The usage database is not available.");
}

/* Appends row i of rows as one a{sv}. */
typedef int (*append_row_func_t)(sd_bus_message *reply, const void *rows, size_t i);

/* Replies to m with the n rows as an aa{sv}, or with the ledger's error;
 * what names the rows in the error sent when the reply cannot be. */
static void reply_rows(sd_bus_message *m, int error, const char *problem, const void *rows, size_t n,
                       append_row_func_t append_row, const char *what) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        if (error < 0) {
                (void) reply_ledger_error(m, error, problem);
                return;
        }
        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "a{sv}");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = append_row(reply, rows, i);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        if (r < 0)
                (void) sd_bus_reply_method_errorf(m, SD_BUS_ERROR_NO_MEMORY, "The %s could not be sent: %s", what,
                                                  strerror(-r));
}

static int append_summary_row(sd_bus_message *reply, const void *rows, size_t i) {
        const LedgerRow *w = &((const LedgerRow *) rows)[i];
        int r;

        r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r >= 0 && w->app)
                r = sd_bus_message_append(reply, "{sv}", "app", "s", w->app);
        if (r >= 0 && w->model)
                r = sd_bus_message_append(reply, "{sv}", "model", "s", w->model);
        if (r >= 0 && w->day)
                r = sd_bus_message_append(reply, "{sv}", "day", "s", w->day);
        if (r >= 0 && w->hour)
                r = sd_bus_message_append(reply, "{sv}", "hour", "s", w->hour);
        if (r >= 0)
                r = sd_bus_message_append(reply, "{sv}{sv}{sv}{sv}{sv}{sv}{sv}",
                                          "requests", "u", (uint32_t) MIN(w->requests, UINT32_MAX),
                                          "errors", "u", (uint32_t) MIN(w->errors, UINT32_MAX),
                                          "input_tokens", "t", w->input_tokens,
                                          "output_tokens", "t", w->output_tokens,
                                          "cache_read_tokens", "t", w->cache_read_tokens,
                                          "cache_write_tokens", "t", w->cache_write_tokens,
                                          "cost_usd", "d", w->cost_usd);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

static int append_recent_row(sd_bus_message *reply, const void *rows, size_t i) {
        const LedgerRecord *x = &((const LedgerRecord *) rows)[i];

        return sd_bus_message_append(reply, "a{sv}", 16,
                                     "id", "t", x->id,
                                     "time", "t", x->time,
                                     "app", "s", x->app,
                                     "via", "s", x->via,
                                     "model", "s", x->model,
                                     "status", "s", x->status,
                                     "error", "s", x->error,
                                     "input_tokens", "t", x->input_tokens,
                                     "output_tokens", "t", x->output_tokens,
                                     "cache_read_tokens", "t", x->cache_read_tokens,
                                     "cache_write_tokens", "t", x->cache_write_tokens,
                                     "cost_usd", "d", x->cost_usd,
                                     "latency_first_ms", "d", x->latency_first_ms,
                                     "latency_total_ms", "d", x->latency_total_ms,
                                     "attempts", "u", x->attempts,
                                     "privacy_tier", "s", x->privacy_tier);
}

static void on_summary(int error, const char *problem, const LedgerRow *rows, size_t n, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = userdata;

        reply_rows(m, error, problem, rows, n, append_summary_row, "summary");
}

static void on_recent(int error, const char *problem, const LedgerRecord *recs, size_t n, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = userdata;

        reply_rows(m, error, problem, recs, n, append_recent_row, "records");
}

static int method_summary(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Usage *u = userdata;
        LedgerFilter f = {};
        const char *group;
        unsigned g = 0;
        int r;

        r = sd_bus_message_read(m, "s", &group);
        if (r >= 0)
                r = parse_group(group, &g, error);
        if (r >= 0)
                r = read_filter(m, &f, error);
        if (r >= 0) {
                r = ledger_summary(u->ledger, g, &f, on_summary, m);
                if (r >= 0)
                        sd_bus_message_ref(m);
        }
        filter_clear(&f);
        return r < 0 ? r : 1;
}

static int method_recent(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Usage *u = userdata;
        LedgerFilter f = {};
        uint32_t limit;
        int r;

        r = sd_bus_message_read(m, "u", &limit);
        if (r >= 0 && (limit == 0 || limit > LEDGER_RECENT_MAX))
                r = sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                      "The limit must be 1 to %u records, not %" PRIu32 ".", LEDGER_RECENT_MAX, limit);
        if (r >= 0)
                r = read_filter(m, &f, error);
        if (r >= 0) {
                r = ledger_recent(u->ledger, limit, &f, on_recent, m);
                if (r >= 0)
                        sd_bus_message_ref(m);
        }
        filter_clear(&f);
        return r < 0 ? r : 1;
}

static int method_set_budget(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Usage *u = userdata;
        const char *app, *period_s;
        double limit;
        BudgetPeriod period;
        Budget *b;
        int r;

        r = sd_bus_message_read(m, "sds", &app, &limit, &period_s);
        if (r < 0)
                return r;
        if (!app_id_is_valid(app, strlen(app)))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "\"%.64s\" is not an app id: 1 to %u letters, digits, '.', '_' or '-' "
                                         "(see \"bankr-llm usage --by app\").", app, APP_ID_MAX);
        if (!budget_limit_is_valid(limit))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "The limit must be a number of USD from 0 (no budget) to %.0f.",
                                         BUDGET_LIMIT_MAX_USD);
        period = budget_period_from_string(period_s);
        if (period < 0 && !(limit == 0.0 && isempty(period_s)))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Unknown period \"%.32s\": use day, week or month.", period_s);

        b = budget_find(u, app);
        if (limit == 0.0 ? !b : (b && b->limit == limit && b->period == period))
                return sd_bus_reply_method_return(m, NULL);
        if (limit > 0.0 && !b && u->n_budgets >= USAGE_MAX_BUDGETS)
                return sd_bus_error_setf(error, BUS_ERROR_LIMIT_EXCEEDED,
                                         "There are already %u budgets, the limit; clear one first.", USAGE_MAX_BUDGETS);

        if (!u->polkit)
                return sd_bus_error_set(error, BUS_ERROR_NOT_AUTHORIZED, "Cannot check authorization.");
        r = polkit_check_async(u->polkit, m, ACTION_CONFIGURE_BUDGET, error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1;

        if (limit == 0.0) {
                size_t i = (size_t) (b - u->budgets);
                free(b->app);
                memmove(&u->budgets[i], &u->budgets[i + 1], (u->n_budgets - i - 1) * sizeof(Budget));
                u->n_budgets--;
                log_info("Budget of %s removed.", app);
        } else {
                if (!b) {
                        if (!GREEDY_REALLOC(u->budgets, u->n_budgets_allocated, u->n_budgets + 1))
                                return -ENOMEM;
                        b = &u->budgets[u->n_budgets];
                        *b = (Budget) { .app = strdup(app) };
                        if (!b->app)
                                return -ENOMEM;
                        u->n_budgets++;
                }
                if (b->period != period)
                        b->notified = 0;
                b->limit = limit;
                b->period = period;
                log_info("Budget of %s set to %.4f USD per %s.", app, limit, budget_period_to_string(period));
        }
        budgets_save(u);
        usage_arm_reset(u);
        usage_emit_budgets(u);
        if (limit > 0.0)
                budget_check_reached(u, budget_find(u, app), now_usec(CLOCK_REALTIME));
        return sd_bus_reply_method_return(m, NULL);
}

static int property_budgets(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Usage *u = userdata;
        uint64_t now = now_usec(CLOCK_REALTIME);
        int r;

        r = sd_bus_message_open_container(reply, 'a', "a{sv}");
        for (size_t i = 0; r >= 0 && i < u->n_budgets; i++) {
                const Budget *b = &u->budgets[i];
                uint64_t end = 0;
                (void) budget_period_bounds(b->period, now, NULL, &end);
                r = sd_bus_message_append(reply, "a{sv}", 5,
                                          "app", "s", b->app,
                                          "limit_usd", "d", b->limit,
                                          "period", "s", budget_period_to_string(b->period),
                                          "spent_usd", "d", spent_now(u, b->app, b->period, now),
                                          "resets_at", "t", end);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

const sd_bus_vtable usage_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Budgets", "aa{sv}", property_budgets, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("Summary", SD_BUS_ARGS("s", group_by, "a{sv}", filter), SD_BUS_RESULT("aa{sv}", rows),
                                method_summary, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Recent", SD_BUS_ARGS("u", limit, "a{sv}", filter), SD_BUS_RESULT("aa{sv}", records),
                                method_recent, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetBudget", SD_BUS_ARGS("s", app, "d", limit_usd, "s", period), SD_BUS_NO_RESULT,
                                method_set_budget, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("BudgetReached", SD_BUS_ARGS("s", app, "d", spent_usd, "d", limit_usd), 0),
        SD_BUS_VTABLE_END,
};

/* ---- lifetime ------------------------------------------------------------------ */

static int state_path(char **ret) {
        const char *base = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
        char *p = NULL;

        if (!isempty(base) && base[0] == '/') {
                if (asprintf(&p, "%s/bankr-llm/usage.db", base) < 0)
                        return -ENOMEM;
        } else if (!isempty(home) && home[0] == '/') {
                if (asprintf(&p, "%s/.local/state/bankr-llm/usage.db", home) < 0)
                        return -ENOMEM;
        } else
                return -ENXIO;
        *ret = p;
        return 0;
}

int usage_new(sd_event *e, sd_bus *bus, Polkit *polkit, const char *config_dir, Usage **ret) {
        _cleanup_(usage_freep) Usage *u = NULL;
        _cleanup_free_ char *db = NULL;
        int r;

        if (!e || !bus || !config_dir || !ret)
                return -EINVAL;
        u = calloc(1, sizeof(Usage));
        if (!u)
                return -ENOMEM;
        u->event = sd_event_ref(e);
        u->bus = sd_bus_ref(bus);
        u->polkit = polkit;
        if (asprintf(&u->budgets_path, "%s/budgets.json", config_dir) < 0)
                return -ENOMEM;

        r = state_path(&db);
        if (r < 0)
                return log_error_errno(r, "Cannot locate the usage database: neither XDG_STATE_HOME nor HOME is set.");
        r = ledger_new(e, db, &u->ledger);
        if (r < 0)
                return log_error_errno(r, "Failed to start the ledger: %m");

        budgets_load(u);
        usage_arm_reset(u);

        /* Installed before the name is taken, so no caller can leave unseen. */
        r = sd_bus_match_signal_async(bus, &u->owner_match, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                      "org.freedesktop.DBus", "NameOwnerChanged", on_name_owner_changed, NULL, u);
        if (r < 0)
                return log_error_errno(r, "Failed to watch for clients leaving the bus: %m");

        *ret = TAKE_PTR(u);
        return 0;
}

int usage_start(Usage *u) {
        ledger_start(u->ledger);
        return usage_start_load(u);
}

Usage *usage_free(Usage *u) {
        if (!u)
                return NULL;
        /* The ledger first: it writes what is queued and answers the queries
         * still out (their callbacks need u). */
        u->ledger = ledger_free(u->ledger);
        while (u->parked) {
                Parked *p = u->parked;
                u->parked = p->next;
                sd_bus_message_unref(p->m);
                free(p);
        }
        while (u->callers)
                caller_free(u, u->callers);
        for (size_t i = 0; i < u->n_budgets; i++)
                free(u->budgets[i].app);
        free(u->budgets);
        for (size_t i = 0; i < u->n_apps; i++)
                free(u->apps[i].app);
        free(u->apps);
        sd_bus_slot_unref(u->owner_match);
        sd_event_source_disable_unref(u->reset_timer);
        sd_bus_unref(u->bus);
        sd_event_unref(u->event);
        free(u->budgets_path);
        free(u);
        return NULL;
}
