/* SPDX-License-Identifier: MIT */
/*
 * bot.bankr.LLM1.Credits (credits.c): the balance, its state, the low
 * threshold, and the answer to Key.Validate.
 */
#pragma once

#include "bankr-llmd.h"

#include <stdbool.h>

typedef enum CreditsState {
        CREDITS_STATE_UNKNOWN,
        CREDITS_STATE_OK,
        CREDITS_STATE_LOW,
        CREDITS_STATE_EXHAUSTED,
        CREDITS_STATE_UNAUTHORIZED,
        _CREDITS_STATE_MAX,
} CreditsState;

const char *credits_state_to_string(CreditsState s);

/* Where the last known balance stands against the threshold: a crossing is
 * a move from UNKNOWN or ABOVE to BELOW. */
typedef enum CreditsPosition {
        CREDITS_POSITION_UNKNOWN,
        CREDITS_POSITION_ABOVE,
        CREDITS_POSITION_BELOW,
} CreditsPosition;

typedef struct CreditsTransition {
        CreditsPosition position; /* where the balance stands now */
        bool low;                 /* emit Low: a crossing below the threshold */
        bool exhausted;           /* emit Exhausted: an entry into "exhausted" */
} CreditsTransition;

/* The pure decision of a move from old_state (with the balance at
 * old_position) to state with balance: Low once per crossing, Exhausted on
 * each entry (docs/architecture.md). */
CreditsTransition credits_transition(CreditsState old_state, CreditsPosition old_position, CreditsState state,
                                     double balance, double threshold);
/* A 200 with this balance: "low" below the threshold, else "ok". */
CreditsState credits_state_for_balance(double balance, double threshold);

/* --- the Credits interface ----------------------------------------------- */


int credits_new(Context *c, Credits **ret);
Credits *credits_free(Credits *cr);
/* Balance, State, UpdatedAt, LowThreshold, Refresh, Low, Exhausted. The
 * methods that spend money are topup.c's, on the same interface. */
extern const sd_bus_vtable credits_vtable[];

/* The Context's events. */
void credits_key_changed(Credits *cr);
/* A chat answered with status: a 402 means exhausted now, without another call. */
void credits_gateway_status(Credits *cr, long status);
/* A chat request finished: schedule one coalesced refresh. */
void credits_request_finished(Credits *cr);
/* A top-up answered with the new balance: Balance/State/UpdatedAt change at
 * once (PropertiesChanged, Low/Exhausted as for any refresh). */
void credits_set_balance(Credits *cr, double balance_usd);
/* Key.Validate: asks the gateway (credits endpoint) and replies to m with
 * (b ok, s message) later. Returns 1, or <0 with error set. */
int credits_validate(Credits *cr, sd_bus_message *m, sd_bus_error *error);
