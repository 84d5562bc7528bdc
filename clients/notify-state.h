/* SPDX-License-Identifier: MIT */
/*
 * bankr-llm-notify's decisions, free of I/O: how the service's Credits state
 * maps onto the two topics the user hears about (credits, key), what to say
 * when a topic moves from what the user was told to what is true now, and
 * the format of the per-session "told" file.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

typedef enum Topic {
        TOPIC_CREDITS,
        TOPIC_KEY,
        _TOPIC_MAX,
        _TOPIC_INVALID = -22, /* -EINVAL */
} Topic;

/* One scale for both topics; credits use NONE/LOW/EXHAUSTED, the key
 * NONE/UNAUTHORIZED. NONE means "nothing the user needs to hear". */
typedef enum Level {
        LEVEL_NONE,
        LEVEL_LOW,
        LEVEL_EXHAUSTED,
        LEVEL_UNAUTHORIZED,
        _LEVEL_MAX,
        _LEVEL_INVALID = -22, /* -EINVAL */
} Level;

DECLARE_STRING_TABLE_LOOKUP(topic, Topic);
DECLARE_STRING_TABLE_LOOKUP(level, Level);

/* Applies Credits.State to the topics it says something about: "ok", "low"
 * and "exhausted" settle both, "unauthorized" only the key (the balance is
 * unknown then), "unknown" neither. Returns -EINVAL for any other string. */
int credits_state_apply(const char *state, Level levels[_TOPIC_MAX]);

/* What we know about the service, for the wording. */
typedef struct Facts {
        double balance;
        double threshold;
        bool have_balance;
        bool have_threshold;
        char *key_source; /* Key.Source: "env", "keyring", "config", "none" */
        char *key_kind;   /* Key.Kind: "llm" or "api" */
} Facts;

void facts_done(Facts *f);

typedef enum MessageActions {
        ACTIONS_NONE,
        ACTIONS_TOP_UP,  /* "Top up" + "Dismiss" */
        ACTIONS_SET_KEY, /* "Set key" (when a terminal exists) + "Dismiss" */
} MessageActions;

typedef struct Message {
        bool close_only; /* nothing to say: just withdraw the old notification */
        const char *icon;
        uint8_t urgency; /* 0 low, 1 normal, 2 critical */
        MessageActions actions;
        char *summary;
        char *body;
} Message;

void message_done(Message *m);

/* What to show when topic goes from told to now (told != now). Returns
 * -ENODATA when the transition needs no notification at all (e.g. a level
 * that does not belong to the topic), -ENOMEM on allocation failure. */
int message_for_transition(Topic topic, Level told, Level now, const Facts *facts, Message *ret);

/* The told file: which level the user was last shown per topic, the id of
 * our notification and the notification server (its unique bus name) the
 * ids belong to. */
typedef struct Told {
        Level level[_TOPIC_MAX];
        uint32_t id[_TOPIC_MAX];
        char *server;
        char **deprecated; /* models whose deprecation the user was told of */
} Told;

/* The deprecation topic: unlike credits and the key it has no level, only
 * events (Models.ModelDeprecated), and each model is told once per session
 * (the told file's "deprecated=ID" lines).
 *
 * A model id as it may appear in a notification: 1..200 bytes of
 * [A-Za-z0-9._:/@+-] (nothing a server could take for markup). */
bool deprecation_id_ok(const char *id);
bool told_has_deprecated(const Told *t, const char *id);
int told_add_deprecated(Told *t, const char *id);
/* "Model X is deprecated" with the replacement (NULL, "" or not a clean id:
 * the body points at "bankr-llm models" instead). -EINVAL for an id that
 * is not clean. */
int message_for_deprecation(const char *id, const char *replacement, Message *ret);

void told_done(Told *t);
/* Parses the file's text; unknown lines are ignored (forward compatible),
 * malformed known lines are -EBADMSG. */
int told_parse(const char *text, Told *ret);
int told_format(const Told *t, char **ret);

/* Budgets (bot.bankr.LLM1.Usage): one notification per app, shown once per
 * period of its budget (the period ending at resets_at) and replaced, not
 * stacked, by the next period's. */
typedef struct BudgetNotice {
        char *app;
        uint64_t resets_at; /* of the period the user was told about */
        uint32_t id;        /* our notification for it, 0 when closed */
} BudgetNotice;

/* Whether BudgetReached for the period ending at resets_at is news, given
 * what the user was told (NULL: nothing yet for this app). resets_at 0
 * (unknown) is news unless something was shown already. */
bool budget_notice_wanted(const BudgetNotice *told, uint64_t resets_at);

/* The text of a BudgetReached notification. period may be NULL (unknown),
 * resets_at 0 (unknown). */
int budget_message(const char *app, double spent_usd, double limit_usd, const char *period, uint64_t resets_at,
                   Message *ret);
