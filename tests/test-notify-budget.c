/* SPDX-License-Identifier: MIT */
/* bankr-llm-notify's budget decisions (clients/notify-state.c). */
#include <stdio.h>
#include <string.h>

#include "notify-state.h"

static int failures;
#define CHECK(x)                                                                   \
        do {                                                                       \
                if (!(x)) {                                                        \
                        fprintf(stderr, "%s:%d: FAIL: %s\n", __FILE__, __LINE__, #x); \
                        failures++;                                                \
                }                                                                  \
        } while (0)

int main(void) {
        BudgetNotice told = { .app = (char *) "org.x.Y", .resets_at = 1000, .id = 7 };
        Message m = {};

        /* Once per period: the same period is not news, the next one is. */
        CHECK(budget_notice_wanted(NULL, 1000));
        CHECK(budget_notice_wanted(NULL, 0));
        CHECK(!budget_notice_wanted(&told, 1000));
        CHECK(budget_notice_wanted(&told, 2000));
        CHECK(!budget_notice_wanted(&told, 0));

        CHECK(budget_message("org.x.Y", 5.02, 5, "day", 0, &m) == 0);
        CHECK(m.summary && strcmp(m.summary, "org.x.Y reached its budget") == 0);
        CHECK(m.body && strstr(m.body, "$5.02 of its $5.00 per day"));
        CHECK(m.body && !strstr(m.body, "resets on"));
        message_done(&m);
        CHECK(budget_message("org.x.Y", 1, 1, NULL, 1767225600ULL * 1000000, &m) == 0);
        CHECK(m.body && strstr(m.body, "It resets on"));
        CHECK(m.body && !strstr(m.body, " per "));
        message_done(&m);
        CHECK(budget_message(NULL, 1, 1, NULL, 0, &m) < 0);

        if (failures) {
                fprintf(stderr, "%d failure(s)\n", failures);
                return 1;
        }
        printf("notify budget: all cases passed\n");
        return 0;
}
