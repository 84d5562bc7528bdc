/* SPDX-License-Identifier: MIT */
/* Unit tests for the credit state decisions of service/credits.c: Low once
 * per crossing, Exhausted on each entry (docs/architecture.md). */
#include "credits.h"
#include "test.h"

/* A Credits state machine fed with what the gateway says, as credits_apply() does. */
typedef struct Sim {
        CreditsState state;
        CreditsPosition position;
        double threshold;
        unsigned lows, exhausteds;
} Sim;

static void sim_answer(Sim *s, CreditsState state, double balance) {
        CreditsTransition t = credits_transition(s->state, s->position, state, balance, s->threshold);

        s->lows += t.low;
        s->exhausteds += t.exhausted;
        s->state = state;
        s->position = t.position;
}

static void sim_balance(Sim *s, double balance) {
        sim_answer(s, credits_state_for_balance(balance, s->threshold), balance);
}

static void test_state_for_balance(void) {
        ASSERT(credits_state_for_balance(0.5, 1.0) == CREDITS_STATE_LOW);
        ASSERT(credits_state_for_balance(1.0, 1.0) == CREDITS_STATE_OK);
        ASSERT(credits_state_for_balance(5.0, 1.0) == CREDITS_STATE_OK);
        /* Threshold 0 turns the warning off: no balance is below it. */
        ASSERT(credits_state_for_balance(0.0, 0.0) == CREDITS_STATE_OK);
        ASSERT_STREQ(credits_state_to_string(CREDITS_STATE_UNKNOWN), "unknown");
        ASSERT_STREQ(credits_state_to_string(CREDITS_STATE_OK), "ok");
        ASSERT_STREQ(credits_state_to_string(CREDITS_STATE_LOW), "low");
        ASSERT_STREQ(credits_state_to_string(CREDITS_STATE_EXHAUSTED), "exhausted");
        ASSERT_STREQ(credits_state_to_string(CREDITS_STATE_UNAUTHORIZED), "unauthorized");
        ASSERT(!credits_state_to_string(_CREDITS_STATE_MAX));
}

static void test_low_once_per_crossing(void) {
        Sim s = { .threshold = 1.0 };

        /* The first balance of a key, below the threshold: a crossing. */
        sim_balance(&s, 0.5);
        ASSERT(s.state == CREDITS_STATE_LOW && s.lows == 1);
        /* Still below on the next refreshes: no new signal. */
        sim_balance(&s, 0.4);
        sim_balance(&s, 0.3);
        ASSERT(s.lows == 1);
        /* Above, then below again: a new crossing. */
        sim_balance(&s, 2.0);
        ASSERT(s.state == CREDITS_STATE_OK && s.lows == 1);
        sim_balance(&s, 0.9);
        ASSERT(s.lows == 2);
        /* Exactly at the threshold is not below it. */
        sim_balance(&s, 1.0);
        ASSERT(s.state == CREDITS_STATE_OK && s.position == CREDITS_POSITION_ABOVE && s.lows == 2);
        ASSERT(s.exhausteds == 0);
}

static void test_first_balance_above(void) {
        Sim s = { .threshold = 1.0 };

        sim_balance(&s, 10.0);
        ASSERT(s.state == CREDITS_STATE_OK && s.position == CREDITS_POSITION_ABOVE && s.lows == 0);
        sim_balance(&s, 0.5);
        ASSERT(s.lows == 1);
}

static void test_raised_threshold(void) {
        Sim s = { .threshold = 1.0 };

        sim_balance(&s, 5.0);
        ASSERT(s.lows == 0);
        /* The user asks to be warned at $10: the balance of $5 is a crossing now. */
        s.threshold = 10.0;
        sim_balance(&s, 5.0);
        ASSERT(s.state == CREDITS_STATE_LOW && s.lows == 1);
        /* Raising it again while below: no second warning. */
        s.threshold = 20.0;
        sim_balance(&s, 5.0);
        ASSERT(s.lows == 1);
        /* Lowering it under the balance: ok, and a later fall is a crossing. */
        s.threshold = 1.0;
        sim_balance(&s, 5.0);
        ASSERT(s.state == CREDITS_STATE_OK);
        sim_balance(&s, 0.5);
        ASSERT(s.lows == 2);
}

static void test_exhausted(void) {
        Sim s = { .threshold = 1.0 };

        sim_balance(&s, 0.5);
        ASSERT(s.lows == 1);
        /* 402: Exhausted on entry, and no Low with it. */
        sim_answer(&s, CREDITS_STATE_EXHAUSTED, 0);
        ASSERT(s.exhausteds == 1 && s.lows == 1 && s.position == CREDITS_POSITION_BELOW);
        /* Every further 402 while exhausted: nothing. */
        sim_answer(&s, CREDITS_STATE_EXHAUSTED, 0);
        sim_answer(&s, CREDITS_STATE_EXHAUSTED, 0);
        ASSERT(s.exhausteds == 1);
        /* A small top-up leaves exhausted for low: the balance went up, no crossing. */
        sim_balance(&s, 0.2);
        ASSERT(s.state == CREDITS_STATE_LOW && s.lows == 1);
        /* Spent again: a new entry. */
        sim_answer(&s, CREDITS_STATE_EXHAUSTED, 0);
        ASSERT(s.exhausteds == 2);
        /* Straight from ok to exhausted. */
        sim_balance(&s, 50.0);
        sim_answer(&s, CREDITS_STATE_EXHAUSTED, 0);
        ASSERT(s.exhausteds == 3 && s.lows == 1);
}

static void test_new_key_and_unauthorized(void) {
        Sim s = { .threshold = 1.0 };

        sim_balance(&s, 0.5);
        ASSERT(s.lows == 1);
        /* 401: the balance is not known to have moved. */
        sim_answer(&s, CREDITS_STATE_UNAUTHORIZED, 0.5);
        ASSERT(s.position == CREDITS_POSITION_BELOW);
        sim_balance(&s, 0.5);
        ASSERT(s.lows == 1);
        /* A new key starts from "unknown": its first low balance warns. */
        sim_answer(&s, CREDITS_STATE_UNKNOWN, 0);
        ASSERT(s.position == CREDITS_POSITION_UNKNOWN);
        sim_balance(&s, 0.5);
        ASSERT(s.lows == 2);
        /* Exhausted from unknown is an entry too. */
        sim_answer(&s, CREDITS_STATE_UNKNOWN, 0);
        sim_answer(&s, CREDITS_STATE_EXHAUSTED, 0);
        ASSERT(s.exhausteds == 1);
}

int main(void) {
        test_state_for_balance();
        test_low_once_per_crossing();
        test_first_balance_above();
        test_raised_threshold();
        test_exhausted();
        test_new_key_and_unauthorized();
        return test_exit_status();
}
