/* SPDX-License-Identifier: MIT */
/*
 * bankr-llm-notify's pure part: topic levels, transitions and wording, and
 * the told file format. See notify-state.h.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <time.h>

#include "notify-state.h"
#include "util.h"

static const char *const topic_table[_TOPIC_MAX] = {
        [TOPIC_CREDITS] = "credits",
        [TOPIC_KEY] = "key",
};

static const char *const level_table[_LEVEL_MAX] = {
        [LEVEL_NONE] = "none",
        [LEVEL_LOW] = "low",
        [LEVEL_EXHAUSTED] = "exhausted",
        [LEVEL_UNAUTHORIZED] = "unauthorized",
};

DEFINE_STRING_TABLE_LOOKUP(topic, Topic, _TOPIC_INVALID);
DEFINE_STRING_TABLE_LOOKUP(level, Level, _LEVEL_INVALID);

int credits_state_apply(const char *state, Level levels[_TOPIC_MAX]) {
        if (!state)
                return -EINVAL;

        if (streq(state, "unknown"))
                return 0;
        if (streq(state, "unauthorized")) {
                levels[TOPIC_KEY] = LEVEL_UNAUTHORIZED;
                return 0;
        }

        /* Any answer other than 401/403 means the gateway took the key. */
        if (streq(state, "ok"))
                levels[TOPIC_CREDITS] = LEVEL_NONE;
        else if (streq(state, "low"))
                levels[TOPIC_CREDITS] = LEVEL_LOW;
        else if (streq(state, "exhausted"))
                levels[TOPIC_CREDITS] = LEVEL_EXHAUSTED;
        else
                return -EINVAL;

        levels[TOPIC_KEY] = LEVEL_NONE;
        return 0;
}

void facts_done(Facts *f) {
        f->key_source = mfree(f->key_source);
        f->key_kind = mfree(f->key_kind);
}

void message_done(Message *m) {
        m->summary = mfree(m->summary);
        m->body = mfree(m->body);
}

/* "$4.20"; tiny or odd values still print sensibly. */
static void format_usd(char buf[static 32], double v) {
        if (!isfinite(v))
                v = 0;
        if (v < 0 && v > -0.005)
                v = 0; /* no "$-0.00" */
        (void) snprintf(buf, 32, "$%.2f", v);
}

static int message_credits(Level told, Level now, const Facts *f, Message *m) {
        char balance[32], threshold[32];

        format_usd(balance, f->balance);
        format_usd(threshold, f->threshold);

        switch (now) {
        case LEVEL_LOW:
                if (told == LEVEL_EXHAUSTED) {
                        /* Topped up, but not above the threshold. */
                        m->icon = "dialog-information";
                        m->urgency = 1;
                        m->summary = strdup("Bankr LLM credits topped up");
                        if (f->have_balance && f->have_threshold)
                                (void) asprintf(&m->body, "%s left, still below the %s threshold.", balance, threshold);
                        else
                                m->body = strdup("Requests work again. The balance is still low.");
                        break;
                }
                m->icon = "dialog-warning";
                m->urgency = 1;
                m->actions = ACTIONS_TOP_UP;
                m->summary = strdup("Bankr LLM credits are low");
                if (f->have_balance && f->have_threshold)
                        (void) asprintf(&m->body, "%s left (threshold %s).", balance, threshold);
                else if (f->have_balance)
                        (void) asprintf(&m->body, "%s left.", balance);
                else
                        m->body = strdup("The balance is below your threshold.");
                break;

        case LEVEL_EXHAUSTED:
                m->icon = "dialog-error";
                m->urgency = 2;
                m->actions = ACTIONS_TOP_UP;
                m->summary = strdup("Bankr LLM credits used up");
                /* The command on a line of its own: popups wrap at hyphens. */
                m->body = strdup("Requests will fail until you top up:\nbankr-llm credits add");
                break;

        case LEVEL_NONE:
                if (told != LEVEL_EXHAUSTED) {
                        /* Low → ok: the warning is moot, withdraw it quietly. */
                        m->close_only = true;
                        return 0;
                }
                m->icon = "dialog-information";
                m->urgency = 1;
                m->summary = strdup("Bankr LLM credits topped up");
                if (f->have_balance)
                        (void) asprintf(&m->body, "Balance: %s. Requests work again.", balance);
                else
                        m->body = strdup("Requests work again.");
                break;

        default:
                return -ENODATA;
        }

        return 0;
}

static int message_key(Level told, Level now, const Facts *f, Message *m) {
        switch (now) {
        case LEVEL_UNAUTHORIZED:
                m->icon = "dialog-error";
                m->urgency = 2;
                m->summary = strdup("Bankr LLM key rejected");
                if (streq_ptr(f->key_source, "env")) {
                        /* A key in the environment wins over anything stored,
                         * so "key set" would not help: say where it is. */
                        (void) asprintf(&m->body,
                                        "Requests fail until %s in the service's environment is replaced.",
                                        streq_ptr(f->key_kind, "api") ? "BANKR_API_KEY" : "BANKR_LLM_KEY");
                } else {
                        m->actions = ACTIONS_SET_KEY;
                        m->body = strdup("Requests fail until you set a new one:\nbankr-llm key set");
                }
                break;

        case LEVEL_NONE:
                if (told != LEVEL_UNAUTHORIZED)
                        return -ENODATA;
                m->icon = "dialog-information";
                m->urgency = 1;
                m->summary = strdup("Bankr LLM key accepted");
                m->body = strdup("Requests work again.");
                break;

        default:
                return -ENODATA;
        }

        return 0;
}

int message_for_transition(Topic topic, Level told, Level now, const Facts *facts, Message *ret) {
        Message m = {};
        int r;

        if (told == now)
                return -ENODATA;

        switch (topic) {
        case TOPIC_CREDITS:
                r = message_credits(told, now, facts, &m);
                break;
        case TOPIC_KEY:
                r = message_key(told, now, facts, &m);
                break;
        default:
                return -EINVAL;
        }
        if (r < 0)
                return r;

        if (!m.close_only && (!m.summary || !m.body)) {
                message_done(&m);
                return -ENOMEM;
        }

        *ret = m;
        return 0;
}

void told_done(Told *t) {
        t->server = mfree(t->server);
        t->deprecated = strv_free(t->deprecated);
}

bool deprecation_id_ok(const char *id) {
        size_t n = id ? strlen(id) : 0;

        if (n == 0 || n > 200)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') || (id[i] >= '0' && id[i] <= '9') ||
                      strchr("._:/@+-", id[i])))
                        return false;
        return true;
}

bool told_has_deprecated(const Told *t, const char *id) {
        return strv_contains(t->deprecated, id);
}

int told_add_deprecated(Told *t, const char *id) {
        if (!deprecation_id_ok(id))
                return -EINVAL;
        if (told_has_deprecated(t, id))
                return 0;
        return strv_extend(&t->deprecated, id);
}

int message_for_deprecation(const char *id, const char *replacement, Message *ret) {
        Message m = { .icon = "dialog-information", .urgency = 1, .actions = ACTIONS_NONE };

        if (!deprecation_id_ok(id))
                return -EINVAL;
        if (asprintf(&m.summary, "The model %s is deprecated", id) < 0)
                return -ENOMEM;
        if (deprecation_id_ok(replacement) ?
            asprintf(&m.body, "The Bankr LLM Gateway will retire it. Use %s instead.", replacement) < 0 :
            asprintf(&m.body, "The Bankr LLM Gateway will retire it. \"bankr-llm models\" lists the models "
                              "to use instead.") < 0) {
                free(m.summary);
                return -ENOMEM;
        }
        *ret = m;
        return 0;
}

int told_parse(const char *text, Told *ret) {
        Told t = {};

        for (const char *p = text; p && *p;) {
                const char *eol = strchrnul(p, '\n');
                char line[256], name[32], level[32];
                size_t n = (size_t) (eol - p);
                unsigned id;

                if (n >= sizeof line)
                        goto next; /* not ours; skip */
                memcpy(line, p, n);
                line[n] = 0;

                if (line[0] == '#' || line[0] == 0)
                        goto next;

                if (startswith(line, "deprecated=")) {
                        /* A bad id is skipped: the worst is being told twice. */
                        if (deprecation_id_ok(line + strlen("deprecated=")) &&
                            told_add_deprecated(&t, line + strlen("deprecated=")) < 0) {
                                told_done(&t);
                                return -ENOMEM;
                        }
                        goto next;
                }

                if (startswith(line, "server=")) {
                        const char *v = line + strlen("server=");
                        if (isempty(v))
                                goto next;
                        /* Unique names only (":1.42"); anything else is junk. */
                        if (v[0] != ':' || strspn(v + 1, "0123456789.") != strlen(v + 1)) {
                                told_done(&t);
                                return -EBADMSG;
                        }
                        if (free_and_strdup(&t.server, v) < 0) {
                                told_done(&t);
                                return -ENOMEM;
                        }
                        goto next;
                }

                if (sscanf(line, "%31[a-z]=%31[a-z] %u", name, level, &id) == 3) {
                        Topic topic = topic_from_string(name);
                        Level l = level_from_string(level);

                        if (topic < 0)
                                goto next; /* a topic from a newer version */
                        if (l < 0) {
                                told_done(&t);
                                return -EBADMSG;
                        }
                        t.level[topic] = l;
                        t.id[topic] = id;
                }
        next:
                p = *eol ? eol + 1 : eol;
        }

        *ret = t;
        return 0;
}

int told_format(const Told *t, char **ret) {
        char *s = NULL;

        if (asprintf(&s,
                     "# bankr-llm-notify: what the user of this session was told (topic=level id)\n"
                     "server=%s\n"
                     "credits=%s %u\n"
                     "key=%s %u\n",
                     t->server ?: "",
                     level_to_string(t->level[TOPIC_CREDITS]), t->id[TOPIC_CREDITS],
                     level_to_string(t->level[TOPIC_KEY]), t->id[TOPIC_KEY]) < 0)
                return -ENOMEM;
        for (char **d = t->deprecated; d && *d; d++) {
                char *n;
                if (asprintf(&n, "%sdeprecated=%s\n", s, *d) < 0) {
                        free(s);
                        return -ENOMEM;
                }
                free(s);
                s = n;
        }

        *ret = s;
        return 0;
}

bool budget_notice_wanted(const BudgetNotice *told, uint64_t resets_at) {
        if (!told)
                return true;
        if (resets_at == 0)
                return false;
        return resets_at != told->resets_at;
}

int budget_message(const char *app, double spent_usd, double limit_usd, const char *period, uint64_t resets_at,
                   Message *ret) {
        Message m = {
                .icon = "dialog-warning",
                .urgency = 1,
                .actions = ACTIONS_NONE,
        };
        char when[64] = "";

        if (!app || !ret)
                return -EINVAL;
        if (resets_at > 0) {
                time_t t = (time_t) (resets_at / 1000000);
                struct tm tm;
                if (localtime_r(&t, &tm))
                        (void) strftime(when, sizeof when, " It resets on %a %d %b at %H:%M.", &tm);
        }
        if (asprintf(&m.summary, "%s reached its budget", app) < 0)
                m.summary = NULL;
        if (asprintf(&m.body, "It has spent $%.2f of its $%.2f%s%s, and its requests are refused until the "
                     "budget resets or is raised (bankr-llm budget).%s",
                     isfinite(spent_usd) ? spent_usd : 0.0, isfinite(limit_usd) ? limit_usd : 0.0,
                     period ? " per " : "", period ?: "", when) < 0)
                m.body = NULL;
        if (!m.summary || !m.body) {
                message_done(&m);
                return -ENOMEM;
        }
        *ret = m;
        return 0;
}
