/* SPDX-License-Identifier: MIT */
/*
 * The names of the contract, defined once for the daemon, the CLI and the
 * notifier: the bus name, object paths, interfaces, error names, polkit
 * action ids and the documented limits. The contract itself is
 * dbus/bot.bankr.LLM1.xml (a test compares it with the live introspection)
 * and /work/shared/design/dbus-api.md; change a name there first.
 */
#pragma once

#include <stddef.h>

#define BUS_NAME "bot.bankr.LLM1"
#define OBJECT_PATH "/bot/bankr/LLM1"
/* Request objects are OBJECT_PATH/request/<n>. */
#define REQUEST_PATH_PREFIX OBJECT_PATH "/request"

/* IFACE("Key") is "bot.bankr.LLM1.Key". */
#define IFACE(x) BUS_NAME "." x
#define IFACE_KEY IFACE("Key")
#define IFACE_MODELS IFACE("Models")
#define IFACE_CREDITS IFACE("Credits")
#define IFACE_CHAT IFACE("Chat")
#define IFACE_REQUEST IFACE("Request")
#define IFACE_SETUP IFACE("Setup")
#define IFACE_ENDPOINT IFACE("Endpoint")
#define IFACE_USAGE IFACE("Usage")
#define IFACE_IMAGES IFACE("Images")

/* The notifier's own name: one agent per session, and tests can wait for it. */
#define BANKR_NOTIFIER_NAME BUS_NAME ".Notifier"

/* The Secret Service schema our keyring items carry. */
#define BANKR_SECRET_SCHEMA BUS_NAME ".Key"

/* Bus errors (bot.bankr.LLM1.Error.*). */
#define BUS_ERROR(x) BUS_NAME ".Error." x
#define BUS_ERROR_NO_KEY BUS_ERROR("NoKey")
#define BUS_ERROR_UNAUTHORIZED BUS_ERROR("Unauthorized")
#define BUS_ERROR_PAYMENT_REQUIRED BUS_ERROR("PaymentRequired")
#define BUS_ERROR_MODEL_NOT_FOUND BUS_ERROR("ModelNotFound")
#define BUS_ERROR_RATE_LIMITED BUS_ERROR("RateLimited")
#define BUS_ERROR_GATEWAY_UNAVAILABLE BUS_ERROR("GatewayUnavailable")
#define BUS_ERROR_GATEWAY_ERROR BUS_ERROR("GatewayError")
#define BUS_ERROR_TIMEOUT BUS_ERROR("Timeout")
#define BUS_ERROR_CANCELLED BUS_ERROR("Cancelled")
#define BUS_ERROR_LIMIT_EXCEEDED BUS_ERROR("LimitExceeded")
#define BUS_ERROR_KEYRING_UNAVAILABLE BUS_ERROR("KeyringUnavailable")
#define BUS_ERROR_NOT_AUTHORIZED BUS_ERROR("NotAuthorized")
#define BUS_ERROR_INVALID_CONFIG BUS_ERROR("InvalidConfig")
#define BUS_ERROR_BUDGET_EXCEEDED BUS_ERROR("BudgetExceeded")
#define BUS_ERROR_LEDGER_UNAVAILABLE BUS_ERROR("LedgerUnavailable")
#define BUS_ERROR_DAILY_BUDGET_EXCEEDED BUS_ERROR("DailyBudgetExceeded")
#define BUS_ERROR_MODEL_RETIRED BUS_ERROR("ModelRetired")

/* polkit actions (polkit/bot.bankr.LLM1.policy). */
#define ACTION_REVEAL_KEY BUS_NAME ".reveal-key"
#define ACTION_TOP_UP BUS_NAME ".top-up"
#define ACTION_CONFIGURE_AUTO_TOP_UP BUS_NAME ".configure-auto-top-up"
#define ACTION_CREATE_TOKEN BUS_NAME ".create-token"
#define ACTION_CONFIGURE_BUDGET BUS_NAME ".configure-budget"

/* Limits of Chat.Start/Complete (LimitExceeded beyond them). */
#define CHAT_TEXT_LIMIT ((size_t) 4U * 1024U * 1024U) /* bytes of message text per request */
/* Empty messages cost no text but memory and time on the loop (the JSON
 * body grows ~50 bytes per message): their number has a cap of its own. */
#define CHAT_MAX_MESSAGES 10000U                      /* messages per request */
#define CHAT_MAX_PER_CALLER 128U                      /* requests in flight per caller */
#define CHAT_MAX_TOTAL 1024U                          /* requests in flight in all */
#define CHAT_MAX_STOP 4U                              /* "stop" sequences (InvalidArgs beyond) */
#define CHAT_MAX_FALLBACKS 4U                         /* "fallback_models" (InvalidArgs beyond) */
/* Ended requests kept for reading at most; beyond, the oldest go early, so
 * a script firing thousands of requests cannot grow our memory for 30 s. */
#define CHAT_MAX_LINGERING 1024U
