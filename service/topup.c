/* SPDX-License-Identifier: MIT */
/*
 * Credits.TopUp, Credits.GetAutoTopUp and Credits.SetAutoTopUp: the Credits
 * methods that go to the agent API ({api}/llm/credits/…, X-API-Key with the
 * API key) rather than to the LLM gateway. TopUp spends money from the
 * wallet and SetAutoTopUp lets the gateway do so later, so both ask polkit
 * first; GetAutoTopUp only reads.
 *
 * Each handler runs in the order of the house style: read → validate
 * (InvalidArgs, before anyone else hears of the call) → key present →
 * polkit (the handler returns and runs again from the top once polkit has
 * answered) → one HTTP request → reply from its completion. Nothing blocks.
 */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <time.h>
#include <json-c/json.h>

#include "http-error.h"
#include "json-util.h"
#include "gateway.h"
#include "http.h"
#include "keyfmt.h"
#include "bus-util.h"
#include "log.h"
#include "topup.h"
#include "polkit.h"
#include "utf8.h"


#define PATH_TOP_UP "/llm/credits/topup"
#define PATH_AUTO_TOP_UP "/llm/credits/auto-topup"

#define TOP_UP_MIN_USD 1.0
#define TOP_UP_MAX_USD 1000.0
#define THRESHOLD_MIN_USD 1.0
#define THRESHOLD_MAX_USD 500.0
#define TOKENS_MAX 3U
#define TOKEN_LEN_MAX 100U

#define AGENT_CONNECT_TIMEOUT_USEC (10 * USEC_PER_SEC)
#define AGENT_TOTAL_TIMEOUT_USEC (30 * USEC_PER_SEC)
#define AGENT_MAX_BODY (64U * 1024U)

#define NO_API_KEY_MESSAGE                                                                         \
        "Top-ups use the Bankr API key, and none is set: set it with \"bankr-llm key set --api\" " \
        "(or BANKR_API_KEY, or apiKey in ~/.bankr/config.json)."


typedef enum AgentOp {
        AGENT_TOP_UP,
        AGENT_GET_AUTO_TOP_UP,
        AGENT_SET_AUTO_TOP_UP,
} AgentOp;

static const char *const agent_op_what[] = {
        [AGENT_TOP_UP] = "top-up",
        [AGENT_GET_AUTO_TOP_UP] = "reading the auto top-up settings",
        [AGENT_SET_AUTO_TOP_UP] = "changing the auto top-up settings",
};

/* One method call waiting for the agent API. */
typedef struct AgentCall AgentCall;
struct AgentCall {
        AgentCall *prev, *next;
        Topup *topup;
        AgentOp op;
        sd_bus_message *message; /* the call to answer */
        HttpRequest *request;
        Http *own_http;               /* TopUp: a connection pool of its own, see agent_call_start() */
        sd_event_source *exit_source; /* drops the call when the daemon exits */
        sd_event_source *free_source; /* frees it after the answer, outside curl's callbacks */
        double amount_usd;            /* TopUp: for the log */
        bool answered;
};

struct Topup {
        Context *context;
        AgentCall *calls; /* in flight */
};

static AgentCall *agent_call_free(AgentCall *ac) {
        if (!ac)
                return NULL;
        if (ac->prev)
                ac->prev->next = ac->next;
        else if (ac->topup && ac->topup->calls == ac)
                ac->topup->calls = ac->next;
        if (ac->next)
                ac->next->prev = ac->prev;
        http_request_free(ac->request);
        http_free(ac->own_http);
        sd_event_source_disable_unref(ac->exit_source);
        sd_event_source_disable_unref(ac->free_source);
        sd_bus_message_unref(ac->message);
        free(ac);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(AgentCall *, agent_call_free);

/* The same message already has a request out. polkit re-dispatches a call
 * once after answering; this makes sure no path can ever turn one call into
 * two requests, whatever runs the handler again. */
static bool agent_call_pending_for(Topup *t, sd_bus_message *m) {
        uint64_t cookie = 0, c2 = 0;

        (void) sd_bus_message_get_cookie(m, &cookie);
        for (AgentCall *ac = t->calls; ac; ac = ac->next) {
                if (ac->message == m)
                        return true;
                if (sd_bus_message_get_cookie(ac->message, &c2) >= 0 && c2 == cookie &&
                    streq_ptr(sd_bus_message_get_sender(ac->message), sd_bus_message_get_sender(m)))
                        return true;
        }
        return false;
}

static int on_daemon_exit(sd_event_source *s, void *userdata) {
        AgentCall *ac = userdata;

        /* Not answered: the caller sees us leave the bus. A top-up in flight
         * may still be carried out by the agent API. */
        if (ac->op == AGENT_TOP_UP && !ac->answered)
                log_warning("Exiting while a top-up of $%.2f was in flight: it may have gone through.", ac->amount_usd);
        agent_call_free(ac);
        return 0;
}

/* --- validation (pure) --------------------------------------------------- */

static bool amount_ok(double v, double lo, double hi) {
        return isfinite(v) && v >= lo && v <= hi;
}

/* A token symbol or address: printable ASCII without blanks. */
static int token_check(const char *t, const char **ret_reason) {
        size_t n = strlen(t);

        if (n == 0) {
                *ret_reason = "is empty";
                return -EINVAL;
        }
        if (n > TOKEN_LEN_MAX) {
                *ret_reason = "is longer than 100 characters";
                return -EINVAL;
        }
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) t[i] <= ' ' || (unsigned char) t[i] >= 0x7f) {
                        *ret_reason = "may only hold printable ASCII characters without spaces (a symbol such as "
                                      "USDC, or a 0x… address)";
                        return -EINVAL;
                }
        return 0;
}

/* Reads a{sv} for SetAutoTopUp into the JSON body the agent API takes.
 * Every key, type and range is checked here, before polkit is asked. */
static int read_auto_top_up_settings(sd_bus_message *m, json_object **ret_body, sd_bus_error *error) {
        _cleanup_(json_object_putp) json_object *body = json_object_new_object();
        bool seen_enabled = false, seen_amount = false, seen_threshold = false, seen_tokens = false;
        unsigned n = 0;
        int r;

        if (!body)
                return -ENOMEM;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key, *contents;
                bool *seen;

                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                r = sd_bus_message_peek_type(m, NULL, &contents);
                if (r < 0)
                        return r;

                if (streq(key, "enabled"))
                        seen = &seen_enabled;
                else if (streq(key, "amount_usd"))
                        seen = &seen_amount;
                else if (streq(key, "threshold_usd"))
                        seen = &seen_threshold;
                else if (streq(key, "tokens"))
                        seen = &seen_tokens;
                else
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Unknown auto top-up setting \"%.64s\"; valid settings are enabled (b), "
                                                 "amount_usd (d), threshold_usd (d) and tokens (as).",
                                                 key);
                if (*seen)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "The setting \"%s\" is given twice.", key);
                *seen = true;

                if (seen == &seen_enabled) {
                        int b;
                        if (!streq(contents, "b"))
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "enabled must be a boolean (b), not \"%s\".", contents);
                        r = sd_bus_message_read(m, "v", "b", &b);
                        if (r < 0)
                                return r;
                        json_object_object_add(body, "enabled", json_object_new_boolean(b));

                } else if (seen == &seen_amount || seen == &seen_threshold) {
                        bool is_amount = seen == &seen_amount;
                        double lo = is_amount ? TOP_UP_MIN_USD : THRESHOLD_MIN_USD;
                        double hi = is_amount ? TOP_UP_MAX_USD : THRESHOLD_MAX_USD;
                        char num[64];
                        double v;

                        if (!streq(contents, "d"))
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "%s must be a number of US dollars (d), not \"%s\".", key,
                                                         contents);
                        r = sd_bus_message_read(m, "v", "d", &v);
                        if (r < 0)
                                return r;
                        if (!amount_ok(v, lo, hi))
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "%s must be between %g and %g US dollars, not %g.", key, lo,
                                                         hi, v);
                        /* %.15g: the shortest form that reads back as the number given. */
                        (void) snprintf(num, sizeof num, "%.15g", v);
                        json_object_object_add(body, is_amount ? "amountUsd" : "thresholdUsd",
                                               json_object_new_double_s(v, num));

                } else {
                        json_object *arr;
                        const char *t;
                        unsigned k = 0;

                        if (!streq(contents, "as"))
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "tokens must be a list of strings (as), not \"%s\".", contents);
                        arr = json_object_new_array();
                        if (!arr)
                                return -ENOMEM;
                        json_object_object_add(body, "tokens", arr);
                        r = sd_bus_message_enter_container(m, 'v', "as");
                        if (r < 0)
                                return r;
                        r = sd_bus_message_enter_container(m, 'a', "s");
                        if (r < 0)
                                return r;
                        while ((r = sd_bus_message_read(m, "s", &t)) > 0) {
                                const char *reason;
                                if (++k > TOKENS_MAX)
                                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                                 "tokens lists more than %u tokens.", TOKENS_MAX);
                                if (token_check(t, &reason) < 0)
                                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                                 "Token %u in tokens %s.", k, reason);
                                for (size_t i = 0; i < json_object_array_length(arr); i++)
                                        if (strcasecmp(json_object_get_string(json_object_array_get_idx(arr, i)), t) == 0)
                                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                                         "tokens lists \"%s\" twice.", t);
                                json_object_array_add(arr, json_object_new_string(t));
                        }
                        if (r < 0)
                                return r;
                        if (k == 0)
                                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS,
                                                        "tokens must list between 1 and 3 tokens, not none.");
                        r = sd_bus_message_exit_container(m);
                        if (r < 0)
                                return r;
                        r = sd_bus_message_exit_container(m);
                        if (r < 0)
                                return r;
                }

                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
                n++;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;

        if (n == 0)
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS,
                                        "No auto top-up setting given: pass any of enabled, amount_usd, threshold_usd "
                                        "and tokens (GetAutoTopUp reads them).");

        *ret_body = TAKE_PTR(body);
        return 0;
}

/* --- answers (pure) ------------------------------------------------------ */

typedef struct AutoTopUp {
        bool enabled;
        double amount_usd, threshold_usd;
        char **tokens;
        char *last_top_up_at, *last_error;
} AutoTopUp;

static void auto_top_up_done(AutoTopUp *a) {
        strv_free(a->tokens);
        free(a->last_top_up_at);
        free(a->last_error);
}

static bool json_is_number(json_object *o) {
        return json_object_is_type(o, json_type_double) || json_object_is_type(o, json_type_int);
}

static int json_get_finite(json_object *o, double *ret) {
        double v;

        if (!json_is_number(o))
                return -EBADMSG;
        v = json_object_get_double(o);
        if (!isfinite(v))
                return -EBADMSG;
        *ret = v;
        return 0;
}

/* A string from the agent API fit for D-Bus and a person: valid UTF-8, no
 * control characters, at most max bytes. */
static int json_get_clean_string(json_object *o, size_t max, char **ret) {
        const char *s;
        int n;

        if (!json_object_is_type(o, json_type_string))
                return -EBADMSG;
        s = json_object_get_string(o);
        n = json_object_get_string_len(o);
        if (n < 0 || (size_t) n > max || !utf8_is_valid_n(s, n))
                return -EBADMSG;
        for (int i = 0; i < n; i++)
                if ((unsigned char) s[i] < ' ' || s[i] == 0x7f)
                        return -EBADMSG;
        return free_and_strdup(ret, s);
}

/* lastTopUpAt: ISO 8601 text as given, or epoch seconds/milliseconds. */
static int parse_time(json_object *o, char **ret) {
        char buf[64];
        struct tm tm;
        double v;
        time_t t;

        if (json_object_is_type(o, json_type_string))
                return json_get_clean_string(o, 64, ret);
        if (json_get_finite(o, &v) < 0 || v < 0)
                return -EBADMSG;
        if (v > 1e11) /* milliseconds: 1e11 s is in the year 5138 */
                v /= 1000;
        if (v > 253402300799.0) /* 9999-12-31 */
                return -EBADMSG;
        t = (time_t) v;
        if (!gmtime_r(&t, &tm) || strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return -EBADMSG;
        return free_and_strdup(ret, buf);
}

static int parse_token(json_object *t, char **ret) {
        json_object *sym, *addr;

        if (json_object_is_type(t, json_type_string))
                return json_get_clean_string(t, TOKEN_LEN_MAX, ret);
        if (!json_object_is_type(t, json_type_object))
                return -EBADMSG;
        /* "?" is how the agent API spells an unknown symbol: show the address then. */
        if (json_object_object_get_ex(t, "symbol", &sym) && json_object_is_type(sym, json_type_string) &&
            !isempty(json_object_get_string(sym)) && !streq(json_object_get_string(sym), "?"))
                return json_get_clean_string(sym, TOKEN_LEN_MAX, ret);
        if (json_object_object_get_ex(t, "address", &addr))
                return json_get_clean_string(addr, TOKEN_LEN_MAX, ret);
        return -EBADMSG;
}

/* {"config": {"enabled", "amountUsd", "thresholdUsd", "tokens", "lastTopUpAt"?, "lastError"?}} */
static int parse_auto_top_up(json_object *root, AutoTopUp *ret) {
        _cleanup_(auto_top_up_done) AutoTopUp a = {};
        json_object *cfg, *v;
        int r;

        if (!json_object_object_get_ex(root, "config", &cfg) || !json_object_is_type(cfg, json_type_object))
                return -EBADMSG;

        if (!json_object_object_get_ex(cfg, "enabled", &v) || !json_object_is_type(v, json_type_boolean))
                return -EBADMSG;
        a.enabled = json_object_get_boolean(v);
        if (!json_object_object_get_ex(cfg, "amountUsd", &v) || json_get_finite(v, &a.amount_usd) < 0)
                return -EBADMSG;
        if (!json_object_object_get_ex(cfg, "thresholdUsd", &v) || json_get_finite(v, &a.threshold_usd) < 0)
                return -EBADMSG;

        a.tokens = calloc(1, sizeof(char *));
        if (!a.tokens)
                return -ENOMEM;
        if (json_object_object_get_ex(cfg, "tokens", &v) && !json_object_is_type(v, json_type_null)) {
                if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) > 16)
                        return -EBADMSG;
                for (size_t i = 0; i < json_object_array_length(v); i++) {
                        _cleanup_free_ char *t = NULL;
                        r = parse_token(json_object_array_get_idx(v, i), &t);
                        if (r < 0)
                                return r;
                        r = strv_extend(&a.tokens, t);
                        if (r < 0)
                                return r;
                }
        }

        if (json_object_object_get_ex(cfg, "lastTopUpAt", &v) && !json_object_is_type(v, json_type_null)) {
                r = parse_time(v, &a.last_top_up_at);
                if (r < 0)
                        return r;
        }
        if (json_object_object_get_ex(cfg, "lastError", &v) && !json_object_is_type(v, json_type_null)) {
                json_object *msg = v;
                if (json_object_is_type(v, json_type_object) && !json_object_object_get_ex(v, "message", &msg))
                        return -EBADMSG;
                if (!json_object_is_type(msg, json_type_null)) {
                        r = json_get_clean_string(msg, 1024, &a.last_error);
                        if (r < 0)
                                return r;
                }
        }

        *ret = a;
        a = (AutoTopUp) {};
        return 0;
}

static int append_auto_top_up(sd_bus_message *reply, const AutoTopUp *a) {
        int r;

        r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "{sv}{sv}{sv}", "enabled", "b", a->enabled, "amount_usd", "d", a->amount_usd,
                                  "threshold_usd", "d", a->threshold_usd);
        if (r < 0)
                return r;
        r = bus_append_dict_strv(reply, "tokens", a->tokens);
        if (r < 0)
                return r;
        if (a->last_top_up_at) {
                r = sd_bus_message_append(reply, "{sv}", "last_top_up_at", "s", a->last_top_up_at);
                if (r < 0)
                        return r;
        }
        if (a->last_error) {
                r = sd_bus_message_append(reply, "{sv}", "last_error", "s", a->last_error);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

/* {"creditsGranted", "newBalance", "txHash"?} */
static int parse_top_up(json_object *root, double *ret_granted, double *ret_balance, char **ret_tx) {
        _cleanup_free_ char *tx = NULL;
        double granted, balance;
        json_object *v;
        int r;

        if (!json_object_is_type(root, json_type_object))
                return -EBADMSG;
        if (!json_object_object_get_ex(root, "creditsGranted", &v) || json_get_finite(v, &granted) < 0 || granted < 0)
                return -EBADMSG;
        if (!json_object_object_get_ex(root, "newBalance", &v) || json_get_finite(v, &balance) < 0)
                return -EBADMSG;
        if (json_object_object_get_ex(root, "txHash", &v) && !json_object_is_type(v, json_type_null)) {
                r = json_get_clean_string(v, 256, &tx);
                if (r < 0)
                        return r;
        }
        if (!tx) {
                tx = strdup("");
                if (!tx)
                        return -ENOMEM;
        }
        *ret_granted = granted;
        *ret_balance = balance;
        *ret_tx = TAKE_PTR(tx);
        return 0;
}

/* --- completion ---------------------------------------------------------- */

/* Errors for answers that are not 2xx. */
static int set_status_error(AgentCall *ac, long status, const char *body, size_t len, sd_bus_error *error) {
        _cleanup_erase_ char *raw = NULL, *half = NULL; /* may quote a key */
        _cleanup_free_ char *msg = NULL;
        bool top_up = ac->op == AGENT_TOP_UP;
        const char *name = gateway_failure_to_bus_error(gateway_failure_for_status(status, GATEWAY_ENDPOINT_AGENT));

        if (chat_parse_error_body(body, len, NULL, &raw) < 0)
                return -ENOMEM;
        half = key_redact(raw, context_api_key(ac->topup->context));
        msg = key_redact(half, context_llm_key(ac->topup->context));
        if (!msg)
                return -ENOMEM;

        switch (status) {
        case 400:
                return sd_bus_error_setf(error, name,
                                         "The agent API refused the request: %s.%s", msg,
                                         top_up ? " Nothing was charged." : "");
        case 401:
                return sd_bus_error_setf(error, name,
                                         "The agent API rejected the Bankr API key (%s). Check it with \"bankr-llm status\" "
                                         "and set the right one with \"bankr-llm key set --api\".", msg);
        case 402:
                if (top_up)
                        return sd_bus_error_setf(error, name,
                                                 "Your Bankr wallet does not hold enough to pay for this top-up (%s). "
                                                 "Nothing was charged: add funds to the wallet, or pay with another token.",
                                                 msg);
                return sd_bus_error_setf(error, name, "The agent API asks for payment: %s.", msg);
        case 403:
                return sd_bus_error_setf(error, name,
                                         "The LLM gateway is not enabled for this Bankr API key (%s). Enable LLM "
                                         "gateway access for the key in your Bankr account.", msg);
        case 429:
                return sd_bus_error_setf(error, name,
                                         "The agent API is rate limiting requests (%s). Try again in a minute.%s", msg,
                                         top_up ? " Nothing was charged." : "");
        case 502:
                if (top_up)
                        return sd_bus_error_setf(error, name,
                                                 "The top-up failed: the token swap did not go through (%s). Check "
                                                 "\"bankr-llm credits\" before trying again, perhaps with another token.",
                                                 msg);
                __attribute__((fallthrough));
        default:
                if (top_up && status >= 500)
                        return sd_bus_error_setf(error, name,
                                                 "The agent API failed with HTTP %ld (%s); the top-up may or may not "
                                                 "have gone through: check \"bankr-llm credits\" before trying again.",
                                                 status, msg);
                return sd_bus_error_setf(error, name, "The agent API answered HTTP %ld: %s.", status,
                                         msg);
        }
}

/* Transport failures. A top-up request may have reached the agent API and
 * been carried out even when its answer was lost, so only failures that
 * happen before anything was sent may say "nothing was charged". */
static int set_transport_error(AgentCall *ac, int e, sd_bus_error *error) {
        const char *why = http_request_get_error_message(ac->request);
        _cleanup_free_ char *fallback = NULL;
        bool not_sent = e == -ECONNREFUSED || e == -EHOSTUNREACH || e == -ENETUNREACH || e == -EADDRNOTAVAIL ||
                        e == -EKEYREJECTED || e == -EMFILE || e == -ENFILE;
        const char *name = gateway_failure_to_bus_error(gateway_failure_for_transport(e, GATEWAY_ENDPOINT_AGENT));

        if (!why) {
                if (asprintf(&fallback, "%s.", strerror(-e)) < 0)
                        return -ENOMEM;
                why = fallback;
        }
        if (ac->op != AGENT_TOP_UP)
                return sd_bus_error_setf(error, name, "The agent API could not be reached: %s", why);
        if (not_sent)
                return sd_bus_error_setf(error, name, "The agent API could not be reached: %s Nothing was charged.", why);
        return sd_bus_error_setf(error, name,
                                 "The answer to the top-up was lost: %s The top-up may have gone through; check your "
                                 "balance with \"bankr-llm credits\" before trying again.",
                                 why);
}

static int finish_top_up(AgentCall *ac, json_object *root, sd_bus_error *error) {
        _cleanup_free_ char *tx = NULL;
        double granted, balance;
        int r;

        r = parse_top_up(root, &granted, &balance, &tx);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                log_warning("The agent API's answer to a top-up of $%.2f could not be read.", ac->amount_usd);
                return sd_bus_error_set(error, BUS_ERROR_GATEWAY_ERROR,
                                        "The agent API's answer to the top-up could not be read; the top-up may or may "
                                        "not have gone through: check \"bankr-llm credits\" before trying again.");
        }

        log_info("Topped up $%.2f of credits (granted $%.2f, new balance $%.2f%s%s).", ac->amount_usd, granted, balance,
                 isempty(tx) ? "" : ", transaction ", tx);
        /* Balance and State first, so a caller reading them after the reply
         * already sees the new balance. */
        context_balance_known(ac->topup->context, balance);
        return sd_bus_reply_method_return(ac->message, "dds", granted, balance, tx);
}

static int finish_auto_top_up(AgentCall *ac, json_object *root, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(auto_top_up_done) AutoTopUp a = {};
        int r;

        r = parse_auto_top_up(root, &a);
        if (r == -ENOMEM)
                return r;
        if (r >= 0 && a.last_error) {
                /* The agent API's own words: they may quote a key. */
                Context *c = ac->topup->context;
                _cleanup_erase_ char *half = key_redact(a.last_error, context_api_key(c)); /* may still hold the LLM key */
                char *clean = half ? key_redact(half, context_llm_key(c)) : NULL;
                if (!clean)
                        return -ENOMEM;
                erase_and_free(a.last_error);
                a.last_error = clean;
        }
        if (r < 0)
                return sd_bus_error_setf(error, BUS_ERROR_GATEWAY_ERROR,
                                         "The agent API's answer when %s could not be read.%s", agent_op_what[ac->op],
                                         ac->op == AGENT_SET_AUTO_TOP_UP ?
                                                 " The change may have been made: check with \"bankr-llm credits auto\"." :
                                                 "");

        if (ac->op == AGENT_SET_AUTO_TOP_UP)
                log_info("Auto top-up is now %s ($%.2f when the balance falls below $%.2f).",
                         a.enabled ? "enabled" : "disabled", a.amount_usd, a.threshold_usd);

        r = sd_bus_message_new_method_return(ac->message, &reply);
        if (r < 0)
                return r;
        r = append_auto_top_up(reply, &a);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int agent_call_finish(AgentCall *ac, int e, sd_bus_error *error) {
        _cleanup_(json_object_putp) json_object *root = NULL;
        const char *body;
        size_t len;
        long status;
        int r;

        if (e < 0)
                return set_transport_error(ac, e, error);

        status = http_request_get_status(ac->request);
        body = http_request_get_body(ac->request, &len);
        if (status < 200 || status > 299)
                return set_status_error(ac, status, body, len, error);

        r = json_parse_body(body, len, &root);
        if (r == -ENOMEM)
                return r;
        if (r < 0 || !json_object_is_type(root, json_type_object)) {
                /* Go on with no object: the parsers report it as unreadable. */
                json_object_put(root);
                root = NULL;
        }

        if (ac->op == AGENT_TOP_UP)
                return finish_top_up(ac, root, error);
        return finish_auto_top_up(ac, root, error);
}

static int on_free_later(sd_event_source *s, void *userdata) {
        agent_call_free(userdata);
        return 0;
}

/* http_free() must not run inside a curl callback: a call with an Http of
 * its own is freed on the next loop iteration (or, failing that, at exit). */
static void agent_call_release(AgentCall *ac) {
        int r;

        if (!ac->own_http) {
                agent_call_free(ac);
                return;
        }
        r = sd_event_add_defer(ac->topup->context->event, &ac->free_source, on_free_later, ac);
        if (r >= 0)
                r = sd_event_source_set_enabled(ac->free_source, SD_EVENT_ONESHOT);
        if (r < 0)
                log_debug_errno(r, "Failed to schedule freeing a finished agent API call, keeping it until exit: %m");
}

static void on_agent_done(HttpRequest *hr, int e, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        AgentCall *ac = userdata;
        int r;

        /* Never retried: for a top-up a second request could charge the
         * wallet twice, and the others are quick to ask again by hand. */
        ac->answered = true;
        r = agent_call_finish(ac, e, &error);
        if (r >= 0 && !sd_bus_error_is_set(&error)) {
                agent_call_release(ac);
                return;
        }

        if (!sd_bus_error_is_set(&error))
                (void) sd_bus_error_set_errnof(&error, r, "Failed while %s: %m", agent_op_what[ac->op]);
        log_full_errno(ac->op == AGENT_TOP_UP ? LOG_WARNING : LOG_INFO, 0, "Agent API %s failed: %s",
                       ac->op == AGENT_TOP_UP ? "top-up" : "auto top-up call", error.message);
        r = sd_bus_reply_method_error(ac->message, &error);
        if (r < 0)
                log_debug_errno(r, "Failed to send the error reply (the caller may have left): %m");
        agent_call_release(ac);
}

/* --- starting a request --------------------------------------------------- */

/* Never a second send of the same call: a top-up sent twice may be paid
 * twice. (Top-ups use a connection of their own, where libcurl does not
 * resend; this makes sure of it for every agent call.) */
static int agent_on_send(HttpRequest *hr, unsigned n, void *userdata) {
        return n > 1 ? -ECONNRESET : 0;
}

static int agent_call_start(Topup *t, AgentOp op, sd_bus_message *m, const char *method, const char *path,
                            json_object *body, double amount_usd, sd_bus_error *error) {
        _cleanup_(agent_call_freep) AgentCall *ac = NULL;
        _cleanup_erase_ char *header = NULL;
        _cleanup_free_ char *url = NULL;
        Context *c = t->context;
        const char *key = context_api_key(c);
        int r;

        if (!key)
                return sd_bus_error_set(error, BUS_ERROR_NO_KEY, NO_API_KEY_MESSAGE);

        ac = calloc(1, sizeof(AgentCall));
        if (!ac)
                return -ENOMEM;
        ac->topup = t;
        ac->op = op;
        ac->amount_usd = amount_usd;
        ac->message = sd_bus_message_ref(m);

        /* A top-up gets a connection pool of its own, so its POST always
         * goes out on a new connection. libcurl silently sends a request
         * again when a reused keep-alive connection closes before any
         * answer (it takes the connection for stale); the agent API may
         * have received and carried out the first one, and the wallet would
         * be charged twice. On a fresh connection libcurl never resends. */
        if (op == AGENT_TOP_UP) {
                r = http_new(c->event, &ac->own_http);
                if (r < 0)
                        return r;
        }

        if (asprintf(&url, "%s%s", context_api_url(c), path) < 0)
                return -ENOMEM;
        r = http_request_new(ac->own_http ?: c->http, method, url, &ac->request);
        if (r == -EINVAL)
                return sd_bus_error_setf(error, BUS_ERROR_GATEWAY_ERROR,
                                         "The agent API URL %s is not usable; check BANKR_API_URL or apiUrl.",
                                         context_api_url(c));
        if (r < 0)
                return r;

        if (asprintf(&header, "X-API-Key: %s", key) < 0)
                return -ENOMEM;
        r = http_request_add_header(ac->request, header);
        if (r >= 0)
                r = http_request_add_header(ac->request, "Accept: application/json");
        if (r >= 0)
                r = http_request_add_header(ac->request, "User-Agent: bankr-llmd/" VERSION);
        if (r >= 0 && body) {
                const char *text = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN |
                                                                                JSON_C_TO_STRING_NOSLASHESCAPE);
                r = text ? http_request_set_body(ac->request, text, strlen(text), "application/json") : -ENOMEM;
        }
        if (r < 0)
                return r;
        http_request_set_timeouts(ac->request, AGENT_CONNECT_TIMEOUT_USEC, 0, 0, AGENT_TOTAL_TIMEOUT_USEC);
        http_request_set_max_body(ac->request, AGENT_MAX_BODY);
        http_request_set_on_send(ac->request, agent_on_send);
        http_request_set_on_done(ac->request, on_agent_done);
        http_request_set_userdata(ac->request, ac);

        r = sd_event_add_exit(c->event, &ac->exit_source, on_daemon_exit, ac);
        if (r < 0)
                return r;

        r = http_request_start(ac->request);
        if (r < 0)
                return log_warning_errno(r, "Failed to start the agent API request: %m");

        ac->next = t->calls;
        if (t->calls)
                t->calls->prev = ac;
        t->calls = TAKE_PTR(ac);
        return 1;
}

/* --- methods ------------------------------------------------------------- */

static int method_top_up(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(json_object_putp) json_object *body = NULL;
        Topup *t = userdata;
        Context *c = t->context;
        const char *token, *reason;
        char num[64];
        double amount;
        int r;

        r = sd_bus_message_read(m, "ds", &amount, &token);
        if (r < 0)
                return r;

        if (!amount_ok(amount, TOP_UP_MIN_USD, TOP_UP_MAX_USD))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "The top-up amount must be between 1 and 1000 US dollars, not %g.", amount);
        if (!isempty(token) && token_check(token, &reason) < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "The source token %s.", reason);

        /* Already sent for this very call: it is answered when that request is. */
        if (agent_call_pending_for(t, m))
                return 1;

        if (!context_api_key(c))
                return sd_bus_error_set(error, BUS_ERROR_NO_KEY, NO_API_KEY_MESSAGE);

        r = polkit_check_async(c->polkit, m, ACTION_TOP_UP, error);
        if (r <= 0)
                return r < 0 ? r : 1; /* denied, or asked: we run again once polkit answers */

        /* Authorized. Exactly one request goes out for this call, and it is
         * never retried, not even after a timeout or a broken connection: the
         * agent API may have carried out a top-up whose answer we lost, and a
         * second request would charge the wallet twice. The caller is told
         * so and decides. */
        body = json_object_new_object();
        if (!body)
                return -ENOMEM;
        (void) snprintf(num, sizeof num, "%.15g", amount);
        json_object_object_add(body, "amountUsd", json_object_new_double_s(amount, num));
        if (!isempty(token))
                json_object_object_add(body, "sourceToken", json_object_new_string(token));

        r = agent_call_start(t, AGENT_TOP_UP, m, "POST", PATH_TOP_UP, body, amount, error);
        if (r < 0)
                return r;
        log_info("Top-up of $%.2f%s%s authorized by polkit; asking the agent API.", amount,
                 isempty(token) ? "" : " from ", strempty(token));
        return 1;
}

static int method_get_auto_top_up(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Topup *t = userdata;

        return agent_call_start(t, AGENT_GET_AUTO_TOP_UP, m, "GET", PATH_AUTO_TOP_UP, NULL, 0, error);
}

static int method_set_auto_top_up(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(json_object_putp) json_object *body = NULL;
        Topup *t = userdata;
        Context *c = t->context;
        int r;

        r = read_auto_top_up_settings(m, &body, error);
        if (r < 0)
                return r;

        if (agent_call_pending_for(t, m))
                return 1;

        if (!context_api_key(c))
                return sd_bus_error_set(error, BUS_ERROR_NO_KEY, NO_API_KEY_MESSAGE);

        r = polkit_check_async(c->polkit, m, ACTION_CONFIGURE_AUTO_TOP_UP, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        /* Like a top-up, never retried: the change may have been made. */
        return agent_call_start(t, AGENT_SET_AUTO_TOP_UP, m, "POST", PATH_AUTO_TOP_UP, body, 0, error);
}

/* Registered by main.c on bot.bankr.LLM1.Credits, next to credits_vtable. */
const sd_bus_vtable topup_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("TopUp", SD_BUS_ARGS("d", amount_usd, "s", source_token),
                                SD_BUS_RESULT("d", granted, "d", new_balance, "s", tx_hash), method_top_up,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetAutoTopUp", SD_BUS_NO_ARGS, SD_BUS_RESULT("a{sv}", settings),
                                method_get_auto_top_up, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetAutoTopUp", SD_BUS_ARGS("a{sv}", settings), SD_BUS_RESULT("a{sv}", result),
                                method_set_auto_top_up, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/* --- lifetime ------------------------------------------------------------ */

int topup_new(Context *c, Topup **ret) {
        Topup *t;

        t = calloc(1, sizeof(Topup));
        if (!t)
                return -ENOMEM;
        t->context = c;
        *ret = t;
        return 0;
}

Topup *topup_free(Topup *t) {
        if (!t)
                return NULL;
        /* The loop's exit handlers have dropped every call; whatever is left
         * (the loop never ran) goes the same way, unanswered. */
        while (t->calls)
                agent_call_free(t->calls);
        free(t);
        return NULL;
}
