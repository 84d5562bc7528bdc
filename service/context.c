/* SPDX-License-Identifier: MIT */
/*
 * The Context's events and accessors (declared in bankr-llmd.h): the one
 * place where a module's news reaches the modules that react to it, and
 * where every module reads the resolved key and URLs. Modules never call
 * each other sideways; they call these, and these call the modules
 * through the headers named after them. main.c owns the Context's
 * lifetime.
 */
#include "bankr-llmd.h"
#include "chat.h"
#include "retry-policy.h"
#include "credits.h"
#include "endpoint.h"
#include "key.h"
#include "model-list.h"
#include "models.h"
#include "budget.h"
#include "usage.h"

/* --- accessors (key.c's state) ------------------------------------------ */

const char *context_llm_key(Context *c) {
        return keys_get_llm_key(c->keys);
}

const char *context_api_key(Context *c) {
        return keys_get_api_key(c->keys);
}

const char *context_gateway_url(Context *c) {
        return keys_get_gateway_url(c->keys);
}

const char *context_api_url(Context *c) {
        return keys_get_api_url(c->keys);
}

const char *context_endpoint_url(Context *c) {
        return endpoint_get_url(c->endpoint);
}

ChatPrivacy context_default_privacy(Context *c) {
        return c->chat ? chat_get_default_privacy(c->chat) : CHAT_PRIVACY_STANDARD;
}

/* --- events ------------------------------------------------------------- */

void context_key_changed(Context *c) {
        if (c->models)
                models_key_changed(c->models);
        if (c->credits)
                credits_key_changed(c->credits);
}

void context_gateway_status(Context *c, long status, const char *type, const char *message) {
        /* A daily budget is not an empty balance: Credits stays as it is. */
        if (status == 402 && !gateway_failure_exhausts_credits(gateway_failure_for_402(type, message)))
                return;
        if (c->credits)
                credits_gateway_status(c->credits, status);
}

void context_model_deprecated(Context *c, const char *model, const char *replacement) {
        if (c->models && model)
                models_note_deprecated(c->models, model, replacement);
}

void context_request_finished(Context *c) {
        if (c->credits)
                credits_request_finished(c->credits);
}

void context_balance_known(Context *c, double balance_usd) {
        if (c->credits)
                credits_set_balance(c->credits, balance_usd);
}

int context_validate_key(Context *c, sd_bus_message *m, sd_bus_error *error) {
        return credits_validate(c->credits, m, error);
}

/* --- the ledger and budgets (usage.c) ------------------------------------ */

int context_caller_app(Context *c, sd_bus_message *m, const char **ret_app, sd_bus_error *error) {
        if (!c->usage) {
                *ret_app = "unknown";
                return 1;
        }
        return usage_caller_app(c->usage, m, ret_app, error);
}

int context_request_admit(Context *c, const char *app, const char *model, uint64_t input_bytes, uint32_t max_tokens,
                          double *ret_estimate, sd_bus_error *error) {
        const Model *rec = models_find(c->models, model);
        double estimate = 0.0;
        int r;

        /* The most it may cost: without pricing we cannot say, and hold
         * nothing back (documented in the XML). */
        if (rec)
                estimate = budget_estimate_usd(rec->price_input, rec->price_output, input_bytes,
                                               max_tokens > 0 ? max_tokens
                                                              : (rec->max_output_tokens ?: 32768));
        if (c->usage) {
                r = usage_admit(c->usage, app, estimate, error);
                if (r < 0)
                        return r;
        }
        *ret_estimate = estimate;
        return 0;
}

void context_request_booked(Context *c, const char *app, double estimate_usd, const LedgerRecord *rec) {
        if (!c->usage)
                return;
        if (rec)
                usage_book(c->usage, estimate_usd, rec);
        else
                usage_release(c->usage, app, estimate_usd);
}
