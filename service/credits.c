/* SPDX-License-Identifier: MIT */
/*
 * bot.bankr.LLM1.Credits: the balance, its state, the low threshold, and
 * Key.Validate (which asks the same endpoint).
 *
 * States: "unknown" until the gateway answered for the current key; then
 * 200 → "ok" or "low" (balance below LowThreshold), 402 → "exhausted"
 * (balance 0), 401/403 → "unauthorized". A network failure, a 5xx, a 429 or
 * an unusable answer keep the last state and balance.
 *
 * Refreshed every 10 minutes ±20% while a key is present and not rejected,
 * once (coalesced) a few seconds after chat requests finish, and on demand.
 * All askers share one request in flight. Low fires once per crossing below
 * the threshold, Exhausted on each entry into "exhausted".
 */
#include <json-c/json.h>
#include <math.h>

#include "fetcher.h"
#include "gateway.h"
#include "json-strict.h"
#include "json-util.h"
#include "log.h"
#include "credits.h"
#include "settings.h"

#define CREDITS_INTERVAL_USEC (10 * 60 * USEC_PER_SEC)
#define CREDITS_COALESCE_USEC (3 * USEC_PER_SEC)
#define CREDITS_TIMEOUT_USEC (10 * USEC_PER_SEC) /* as the bankr CLI */
#define CREDITS_MAX_BODY (1024U * 1024U)
#define THRESHOLD_DEFAULT 1.0
#define THRESHOLD_MAX 1000000.0

/* Who is waiting for the request in flight. */
typedef enum Waiter {
        WAITER_REFRESH,
        WAITER_VALIDATE,
} Waiter;

struct Credits {
        Context *context;

        double balance;
        CreditsState state;
        uint64_t updated_at;
        double threshold;
        CreditsPosition position;
        bool key_rejected; /* 401/403: no background calls until the key changes */

        Fetcher *fetcher;  /* GET /v1/credits, the calls sharing it, the periodic refresh */
        bool fetch_again;  /* a chat finished while the fetch was already out */

        sd_event_source *coalesce_timer; /* after chat requests */
        uint64_t interval_usec, coalesce_usec;
};

static const char *const credits_state_table[_CREDITS_STATE_MAX] = {
        [CREDITS_STATE_UNKNOWN] = "unknown",
        [CREDITS_STATE_OK] = "ok",
        [CREDITS_STATE_LOW] = "low",
        [CREDITS_STATE_EXHAUSTED] = "exhausted",
        [CREDITS_STATE_UNAUTHORIZED] = "unauthorized",
};

const char *credits_state_to_string(CreditsState s) {
        return s >= 0 && s < _CREDITS_STATE_MAX ? credits_state_table[s] : NULL;
}

/* --- settings ----------------------------------------------------------- */

static bool threshold_valid(double d) {
        return isfinite(d) && d >= 0 && d <= THRESHOLD_MAX;
}

static void credits_load_settings(Credits *cr) {
        _cleanup_free_ char *path = NULL;
        struct json_object *root = NULL, *o;

        cr->threshold = THRESHOLD_DEFAULT;
        if (settings_load(cr->context->state_dir, "using the default low threshold", &path, &root) < 0)
                return;
        if (!root || !json_object_is_type(root, json_type_object)) {
                log_warning("Ignoring %s: not a JSON object; using the default low threshold.", path);
                json_object_put(root);
                return;
        }
        if (json_object_object_get_ex(root, "low_threshold_usd", &o)) {
                double d = json_object_get_double(o);
                if ((json_object_is_type(o, json_type_double) || json_object_is_type(o, json_type_int)) &&
                    threshold_valid(d))
                        cr->threshold = d;
                else
                        log_warning("Ignoring low_threshold_usd in %s: not a number from 0 to 1000000.", path);
        }
        json_object_put(root);
}

/* --- state -------------------------------------------------------------- */

/* Sets state and balance, emits PropertiesChanged for what changed, then
 * Low or Exhausted when this was a crossing. answered: the gateway said so
 * now (moves UpdatedAt). */
CreditsTransition credits_transition(CreditsState old_state, CreditsPosition old_position, CreditsState state,
                                     double balance, double threshold) {
        CreditsTransition t = { .position = old_position };

        if (state == CREDITS_STATE_OK || state == CREDITS_STATE_LOW)
                t.position = balance < threshold ? CREDITS_POSITION_BELOW : CREDITS_POSITION_ABOVE;
        else if (state == CREDITS_STATE_EXHAUSTED)
                t.position = CREDITS_POSITION_BELOW;
        else if (state == CREDITS_STATE_UNKNOWN)
                t.position = CREDITS_POSITION_UNKNOWN;
        /* UNAUTHORIZED says nothing about the balance: the position stays. */

        t.low = state == CREDITS_STATE_LOW && old_position != CREDITS_POSITION_BELOW;
        t.exhausted = state == CREDITS_STATE_EXHAUSTED && old_state != CREDITS_STATE_EXHAUSTED;
        return t;
}

CreditsState credits_state_for_balance(double balance, double threshold) {
        return balance < threshold ? CREDITS_STATE_LOW : CREDITS_STATE_OK;
}

static void credits_apply(Credits *cr, CreditsState state, double balance, bool answered) {
        const char *changed[5];
        size_t n = 0;
        CreditsTransition t = credits_transition(cr->state, cr->position, state, balance, cr->threshold);
        bool low_signal = t.low, exhausted_signal = t.exhausted;
        CreditsPosition position = t.position;

        if (balance != cr->balance)
                changed[n++] = "Balance";
        if (state != cr->state)
                changed[n++] = "State";
        uint64_t updated_at = answered ? now_usec(CLOCK_REALTIME) : state == CREDITS_STATE_UNKNOWN ? 0 : cr->updated_at;
        if (updated_at != cr->updated_at)
                changed[n++] = "UpdatedAt";

        if (state != cr->state)
                log_info("Credits: %s%s (balance $%.2f, low below $%.2f).", credits_state_to_string(state),
                         state == CREDITS_STATE_UNAUTHORIZED ? ", no background refreshes until the key changes" : "",
                         balance, cr->threshold);

        cr->state = state;
        cr->balance = balance;
        cr->updated_at = updated_at;
        cr->position = position;

        if (!cr->context->bus)
                return;
        if (n > 0) {
                changed[n] = NULL;
                (void) sd_bus_emit_properties_changed_strv(cr->context->bus, OBJECT_PATH, IFACE_CREDITS,
                                                           (char **) changed);
        }
        if (low_signal)
                (void) sd_bus_emit_signal(cr->context->bus, OBJECT_PATH, IFACE_CREDITS, "Low", "dd", balance,
                                          cr->threshold);
        if (exhausted_signal)
                (void) sd_bus_emit_signal(cr->context->bus, OBJECT_PATH, IFACE_CREDITS, "Exhausted", NULL);
}

static CreditsState state_for_balance(Credits *cr, double balance) {
        return credits_state_for_balance(balance, cr->threshold);
}

void credits_set_balance(Credits *cr, double balance_usd) {
        if (!cr || !isfinite(balance_usd))
                return;
        /* A top-up goes through the agent API key: it says nothing about
         * whether a rejected LLM key works again, so key_rejected stays. */
        credits_apply(cr, state_for_balance(cr, balance_usd), balance_usd, true);
}

void credits_gateway_status(Credits *cr, long status) {
        /* A chat answered 402: exhausted now, without another call. */
        if (!cr || status != 402)
                return;
        credits_apply(cr, CREDITS_STATE_EXHAUSTED, 0, true);
}

/* --- scheduling --------------------------------------------------------- */

static bool credits_may_call(Credits *cr) {
        return context_llm_key(cr->context) && !cr->key_rejected;
}

static int credits_fetch_start(Credits *cr);

/* The periodic timer (the fetcher's) and the one after chat requests. */
static void on_refresh_due(void *userdata) {
        Credits *cr = userdata;
        int r;

        if (!credits_may_call(cr))
                return;
        r = credits_fetch_start(cr);
        if (r < 0)
                log_warning_errno(r, "Failed to start a balance refresh: %m");
}

static int on_coalesce_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        on_refresh_due(userdata);
        return 0;
}

static void schedule(Credits *cr, sd_event_source **timer, uint64_t delay, const char *description) {
        int r;

        if (*timer) {
                r = sd_event_source_set_time_relative(*timer, delay);
                if (r >= 0)
                        r = sd_event_source_set_enabled(*timer, SD_EVENT_ONESHOT);
        } else {
                r = sd_event_add_time_relative(cr->context->event, timer, CLOCK_MONOTONIC, delay, 100 * USEC_PER_MSEC,
                                               on_coalesce_timer, cr);
                if (r >= 0)
                        (void) sd_event_source_set_description(*timer, description);
        }
        if (r < 0)
                log_warning_errno(r, "Failed to schedule a balance refresh: %m");
}

static void unschedule(sd_event_source *timer) {
        if (timer)
                (void) sd_event_source_set_enabled(timer, SD_EVENT_OFF);
}

/* The slow timer: interval ±20%, so that many sessions do not call in step. */
static void credits_schedule_periodic(Credits *cr, uint64_t base) {
        uint64_t spread = base / 5, delay;

        if (!credits_may_call(cr)) {
                fetcher_schedule(cr->fetcher, UINT64_MAX);
                return;
        }
        delay = base - spread + (spread > 0 ? (uint64_t) random() % (2 * spread + 1) : 0);
        fetcher_schedule(cr->fetcher, delay);
}

void credits_request_finished(Credits *cr) {
        int enabled = SD_EVENT_OFF;

        if (!cr || !credits_may_call(cr))
                return;
        if (cr->coalesce_timer)
                (void) sd_event_source_get_enabled(cr->coalesce_timer, &enabled);
        if (enabled != SD_EVENT_OFF)
                return; /* one is already coming: a burst gives one call */
        schedule(cr, &cr->coalesce_timer, cr->coalesce_usec, "credits-after-chat");
}

/* --- fetching ----------------------------------------------------------- */

/* A fetch went out: whatever started it, it counts as the periodic one. */
static void credits_fetch_started(Credits *cr) {
        cr->fetch_again = false;
        credits_schedule_periodic(cr, cr->interval_usec);
}

static int credits_fetch_start(Credits *cr) {
        int r;

        r = fetcher_start(cr->fetcher);
        if (r < 0)
                return r;
        if (r > 0) {
                /* A request started before this chat was billed may miss it. */
                cr->fetch_again = true;
                return 0;
        }
        credits_fetch_started(cr);
        return 0;
}

static int credits_join(Credits *cr, sd_bus_message *m, Waiter kind) {
        bool joined = fetcher_in_flight(cr->fetcher);
        int r;

        r = fetcher_join(cr->fetcher, m, kind);
        if (r < 0)
                return r;
        if (!joined)
                credits_fetch_started(cr);
        return 0;
}

/* Parses {"balanceUsd": number}. */
static int parse_balance(const char *body, size_t len, double *ret, const char **ret_why) {
        struct json_object *root, *o;
        double d;
        int r;

        r = json_parse_body(body, len, &root);
        if (r == -E2BIG)
                return *ret_why = "it is too large", -EBADMSG;
        if (r == -EBADMSG)
                return *ret_why = "it is not valid JSON", -EBADMSG;
        if (r < 0)
                return r;
        if (!json_object_is_type(root, json_type_object) || !json_object_object_get_ex(root, "balanceUsd", &o)) {
                json_object_put(root);
                return *ret_why = "it has no \"balanceUsd\"", -EBADMSG;
        }
        if (!json_object_is_type(o, json_type_double) && !json_object_is_type(o, json_type_int)) {
                json_object_put(root);
                return *ret_why = "\"balanceUsd\" is not a number", -EBADMSG;
        }
        d = json_object_get_double(o);
        json_object_put(root);
        if (!isfinite(d) || fabs(d) > 1e12)
                return *ret_why = "\"balanceUsd\" is out of range", -EBADMSG;
        *ret = d;
        return 0;
}

static char *validate_sentence(Credits *cr, const sd_bus_error *e, bool *ret_ok) {
        char *s = NULL;

        if (!e) {
                *ret_ok = true;
                if (asprintf(&s, "The key works: $%.2f of credits left%s.", cr->balance,
                             cr->state == CREDITS_STATE_LOW ? " (low)" : "") < 0)
                        return NULL;
                return s;
        }
        if (sd_bus_error_has_name(e, BUS_ERROR_PAYMENT_REQUIRED)) {
                *ret_ok = true;
                return strdup("The key works, but the credits are exhausted: add credits with \"bankr-llm credits add\".");
        }
        *ret_ok = false;
        return strdup(e->message ?: e->name);
}

static int credits_reply(sd_bus_message *m, unsigned kind, const sd_bus_error *e, void *userdata) {
        Credits *cr = userdata;

        if (kind == WAITER_VALIDATE) {
                _cleanup_free_ char *msg = NULL;
                bool ok = false;

                msg = validate_sentence(cr, e, &ok);
                return msg ? sd_bus_reply_method_return(m, "bs", ok, msg) : -ENOMEM;
        }
        if (e)
                return sd_bus_reply_method_error(m, e);
        return sd_bus_reply_method_return(m, "d", cr->balance);
}

static void credits_reply_pending(Credits *cr, const sd_bus_error *e) {
        fetcher_reply_all(cr->fetcher, e);
}

static void credits_fetch_done(HttpRequest *hr, int error, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        Credits *cr = userdata;
        const char *body, *why = NULL;
        uint64_t total;
        double balance = 0;
        size_t len;
        int q;

        http_request_get_timing(hr, NULL, &total);
        q = gateway_check_answer(cr->context, hr, error, "the balance", &e);
        if (q >= 0) {
                body = http_request_get_body(hr, &len);
                q = parse_balance(body, len, &balance, &why);
                if (q == -ENOMEM)
                        sd_bus_error_set(&e, SD_BUS_ERROR_NO_MEMORY, "Out of memory.");
                else if (q < 0)
                        sd_bus_error_setf(&e, BUS_ERROR_GATEWAY_ERROR,
                                          "The gateway at %s sent a balance that cannot be used: %s.",
                                          context_gateway_url(cr->context), why);
        }

        if (q >= 0) {
                log_debug("Balance from %s: $%.2f (%.0f ms).", context_gateway_url(cr->context), balance,
                          (double) total / USEC_PER_MSEC);
                fetcher_reset_failures(cr->fetcher);
                cr->key_rejected = false;
                credits_apply(cr, state_for_balance(cr, balance), balance, true);
        } else if (sd_bus_error_has_name(&e, BUS_ERROR_PAYMENT_REQUIRED)) {
                fetcher_reset_failures(cr->fetcher);
                cr->key_rejected = false;
                credits_apply(cr, CREDITS_STATE_EXHAUSTED, 0, true);
        } else if (sd_bus_error_has_name(&e, BUS_ERROR_UNAUTHORIZED)) {
                cr->key_rejected = true;
                credits_apply(cr, CREDITS_STATE_UNAUTHORIZED, cr->balance, true);
                fetcher_schedule(cr->fetcher, UINT64_MAX);
                unschedule(cr->coalesce_timer);
        } else {
                /* Network or gateway trouble: keep what we knew, try again sooner. */
                unsigned failures = fetcher_note_failure(cr->fetcher);

                log_warning("Failed to refresh the balance: %s", e.message);
                credits_schedule_periodic(cr, retry_fetch_backoff_usec(failures, cr->interval_usec));
        }

        credits_reply_pending(cr, q >= 0 ? NULL : &e);

        if (cr->fetch_again && credits_may_call(cr)) {
                int k = credits_fetch_start(cr);
                if (k < 0)
                        log_warning_errno(k, "Failed to start a balance refresh: %m");
        }
}

void credits_key_changed(Credits *cr) {
        if (!cr)
                return;
        /* An answer for the old key says nothing about the new one. */
        fetcher_cancel(cr->fetcher);
        cr->fetch_again = false;
        cr->key_rejected = false;
        fetcher_reset_failures(cr->fetcher);
        unschedule(cr->coalesce_timer);
        credits_apply(cr, CREDITS_STATE_UNKNOWN, 0, false);

        if (!context_llm_key(cr->context)) {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

                fetcher_schedule(cr->fetcher, UINT64_MAX);
                sd_bus_error_set(&e, BUS_ERROR_NO_KEY, "The key was removed while the balance was being fetched.");
                credits_reply_pending(cr, &e);
                return;
        }
        /* At once: the new key's state is unknown until the gateway answers
         * (and anyone still waiting gets this answer). */
        int r = credits_fetch_start(cr);
        if (r < 0) {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

                log_warning_errno(r, "Failed to start a balance refresh: %m");
                sd_bus_error_set_errnof(&e, r, "Failed to ask the gateway: %m");
                credits_reply_pending(cr, &e);
        }
}

static const FetcherOps credits_fetcher_ops = {
        .done = credits_fetch_done,
        .reply = credits_reply,
        .timer = on_refresh_due,
};

/* --- D-Bus -------------------------------------------------------------- */

int credits_validate(Credits *cr, sd_bus_message *m, sd_bus_error *error) {
        int r;

        if (!context_llm_key(cr->context))
                return sd_bus_reply_method_return(m, "bs", false,
                                                  "No key is set. Set one with \"bankr-llm key set\" (or give "
                                                  "bankr-llmd BANKR_LLM_KEY in its environment).");
        r = credits_join(cr, m, WAITER_VALIDATE);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Failed to ask the gateway: %m");
        return 1;
}

static int method_refresh(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Credits *cr = userdata;
        int r;

        if (!context_llm_key(cr->context))
                return sd_bus_error_set(error, BUS_ERROR_NO_KEY,
                                        "No key is set, so there is no balance to ask for. Set one with \"bankr-llm key set\".");
        r = credits_join(cr, m, WAITER_REFRESH);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Failed to ask the gateway: %m");
        return 1;
}

static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Credits *cr = userdata;

        if (streq(property, "Balance"))
                return sd_bus_message_append(reply, "d", cr->balance);
        if (streq(property, "State"))
                return sd_bus_message_append(reply, "s", credits_state_to_string(cr->state));
        if (streq(property, "UpdatedAt"))
                return sd_bus_message_append(reply, "t", cr->updated_at);
        if (streq(property, "LowThreshold"))
                return sd_bus_message_append(reply, "d", cr->threshold);
        return -ENOENT;
}

static int property_set_threshold(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *value, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *why = NULL;
        Credits *cr = userdata;
        double d;
        int r;

        r = sd_bus_message_read(value, "d", &d);
        if (r < 0)
                return r;
        if (isnan(d))
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "The low threshold must be a number, not NaN.");
        if (d < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "The low threshold cannot be negative (got %g); use 0 to turn the warning off.", d);
        if (!threshold_valid(d))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "The low threshold must be at most $%.0f (got %g).", THRESHOLD_MAX, d);
        if (d == cr->threshold)
                return 0;

        r = settings_set(cr->context->state_dir, "low_threshold_usd", json_new_number(d), &why);
        if (r == -EBADMSG) {
                log_warning("Not saving the low threshold: %s/settings.json cannot be read back: %s.",
                            cr->context->state_dir, why);
                return sd_bus_error_setf(error, BUS_ERROR_INVALID_CONFIG,
                                         "Cannot save the low threshold: %s/settings.json was left untouched, "
                                         "because %s.", cr->context->state_dir, why);
        }
        if (r < 0) {
                log_warning_errno(r, "Failed to save the low threshold in %s/settings.json: %m", cr->context->state_dir);
                return sd_bus_error_set_errnof(error, r, "Failed to save the low threshold in %s/settings.json: %m",
                                               cr->context->state_dir);
        }
        log_info("Low threshold set to $%.2f.", d);
        cr->threshold = d;
        (void) sd_bus_emit_properties_changed(bus, OBJECT_PATH, IFACE_CREDITS, "LowThreshold", NULL);

        /* A balance now below the new threshold is a crossing like any other. */
        if (cr->state == CREDITS_STATE_OK || cr->state == CREDITS_STATE_LOW)
                credits_apply(cr, state_for_balance(cr, cr->balance), cr->balance, false);
        return 0;
}

const sd_bus_vtable credits_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Balance", "d", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("State", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("UpdatedAt", "t", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_WRITABLE_PROPERTY("LowThreshold", "d", property_get, property_set_threshold, 0,
                                 SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE | SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Refresh", SD_BUS_NO_ARGS, SD_BUS_RESULT("d", balance), method_refresh,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("Low", SD_BUS_ARGS("d", balance, "d", threshold), 0),
        SD_BUS_SIGNAL("Exhausted", NULL, 0),
        SD_BUS_VTABLE_END,
};

/* --- lifetime ----------------------------------------------------------- */

int credits_new(Context *c, Credits **ret) {
        Credits *cr;

        cr = calloc(1, sizeof(Credits));
        if (!cr)
                return -ENOMEM;
        cr->context = c;
        cr->state = CREDITS_STATE_UNKNOWN;
        cr->interval_usec = getenv_msec("BANKR_LLMD_CREDITS_INTERVAL_MS", CREDITS_INTERVAL_USEC, 1, MSEC_MAX);
        cr->coalesce_usec = getenv_msec("BANKR_LLMD_CREDITS_COALESCE_MS", CREDITS_COALESCE_USEC, 1, MSEC_MAX);
        /* sd-event moves a timer, within its accuracy, onto a 250 ms or 1 s
         * boundary when one falls there; at a hundredth of the interval (at
         * most 100 ms) that cannot take up the ±20 % jitter, also with the
         * short intervals of tests. */
        if (fetcher_new(c, "/v1/credits", getenv_msec("BANKR_LLMD_FETCH_TIMEOUT_MS", CREDITS_TIMEOUT_USEC, 1, MSEC_MAX),
                        CREDITS_MAX_BODY, CLAMP(cr->interval_usec / 100, USEC_PER_MSEC, 100 * USEC_PER_MSEC),
                        "credits-refresh", &credits_fetcher_ops, cr, &cr->fetcher) < 0) {
                free(cr);
                return -ENOMEM;
        }
        srandom((unsigned) (now_usec(CLOCK_REALTIME) ^ (uint64_t) getpid()));
        credits_load_settings(cr);

        /* The first balance is asked for from the loop, so a keyring key that
         * arrives a moment later replaces this one before any request. */
        if (context_llm_key(c))
                fetcher_schedule(cr->fetcher, 0);

        *ret = cr;
        return 0;
}

Credits *credits_free(Credits *cr) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

        if (!cr)
                return NULL;
        sd_bus_error_set(&e, BUS_ERROR_CANCELLED, "bankr-llmd is shutting down.");
        credits_reply_pending(cr, &e);
        fetcher_free(cr->fetcher);
        sd_event_source_disable_unref(cr->coalesce_timer);
        free(cr);
        return NULL;
}
