/* SPDX-License-Identifier: MIT */
/*
 * Plain GETs to the gateway (models, credits) and the mapping of their
 * failures to bus errors. See gateway.h.
 */
#include <inttypes.h>

#include "http-error.h"
#include "gateway.h"
#include "keyfmt.h"
#include "log.h"

int gateway_get_new(Context *c, const char *path, uint64_t timeout_usec, size_t max_body, HttpRequest **ret) {
        _cleanup_(http_request_freep) HttpRequest *hr = NULL;
        _cleanup_free_ char *url = NULL;
        _cleanup_erase_ char *header = NULL;
        const char *key = context_llm_key(c);
        int q;

        if (!key)
                return -ENOKEY;
        if (asprintf(&url, "%s%s", context_gateway_url(c), path) < 0)
                return -ENOMEM;
        q = http_request_new(c->http, "GET", url, &hr);
        if (q < 0)
                return q;
        if (asprintf(&header, "X-API-Key: %s", key) < 0) {
                header = NULL;
                return -ENOMEM;
        }
        q = http_request_add_header(hr, header);
        if (q >= 0)
                q = http_request_add_header(hr, "Accept: application/json");
        if (q < 0)
                return q;
        http_request_set_timeouts(hr, timeout_usec, timeout_usec, timeout_usec, timeout_usec);
        http_request_set_max_body(hr, max_body);
        *ret = TAKE_PTR(hr);
        return 0;
}

/* "Invalid API key" → "Invalid API key.": messages are embedded in sentences. */
static const char *final_stop(const char *s) {
        size_t n = s ? strlen(s) : 0;
        return n > 0 && strchr(".!?", s[n - 1]) ? "" : ".";
}

int gateway_check_answer(Context *c, HttpRequest *hr, int error, const char *what, sd_bus_error *ret_error) {
        const char *url = context_gateway_url(c), *why = http_request_get_error_message(hr);
        _cleanup_erase_ char *raw = NULL; /* may quote the key */
        _cleanup_free_ char *gw_message = NULL;
        const char *body, *name;
        GatewayFailure failure;
        size_t len;
        long status;

        if (error == -ENOMEM)
                return sd_bus_error_set(ret_error, SD_BUS_ERROR_NO_MEMORY, "Out of memory."), -EIO;
        if (error < 0) {
                GatewayFailure f = gateway_failure_for_transport(error, GATEWAY_ENDPOINT_GET);
                name = gateway_failure_to_bus_error(f);

                if (f == GATEWAY_FAILURE_TIMEOUT)
                        return sd_bus_error_setf(ret_error, name, "The gateway at %s did not send %s in time: %s", url,
                                                 what, why ?: "timed out."), -EIO;
                if (f == GATEWAY_FAILURE_ERROR) /* -EFBIG */
                        return sd_bus_error_setf(ret_error, name,
                                                 "The gateway at %s sent an answer for %s that is too large to be genuine: %s",
                                                 url, what, why ?: "over the size limit."), -EIO;
                return sd_bus_error_setf(ret_error, name, "Cannot reach the gateway at %s: %s%s", url,
                                         why ?: strerror(-error), final_stop(why ?: ".")), -EIO;
        }

        status = http_request_get_status(hr);
        if (status >= 200 && status < 300)
                return 0;

        body = http_request_get_body(hr, &len);
        if (chat_parse_error_body(body, len, NULL, &raw) < 0)
                return sd_bus_error_set(ret_error, SD_BUS_ERROR_NO_MEMORY, "Out of memory."), -EIO;
        gw_message = key_redact(raw, context_llm_key(c));
        if (raw && !gw_message)
                return sd_bus_error_set(ret_error, SD_BUS_ERROR_NO_MEMORY, "Out of memory."), -EIO;
        const char *gm = strempty(gw_message), *stop = final_stop(gm);

        failure = gateway_failure_for_status(status, GATEWAY_ENDPOINT_GET);
        name = gateway_failure_to_bus_error(failure);
        switch (failure) {
        case GATEWAY_FAILURE_UNAUTHORIZED:
                return sd_bus_error_setf(ret_error, name,
                                         "The gateway rejected the key (%ld): %s%s Set a valid key with \"bankr-llm key set\".",
                                         status, gm, stop), -EIO;
        case GATEWAY_FAILURE_PAYMENT_REQUIRED:
                return sd_bus_error_setf(ret_error, name,
                                         "The credits are exhausted (402): %s%s Add credits with \"bankr-llm credits add\".",
                                         gm, stop), -EIO;
        case GATEWAY_FAILURE_RATE_LIMITED:
                return sd_bus_error_setf(ret_error, name,
                                         "The gateway at %s is rate limiting requests (429): %s%s Try again in a moment.",
                                         url, gm, stop), -EIO;
        case GATEWAY_FAILURE_UNAVAILABLE:
                return sd_bus_error_setf(ret_error, name, "The gateway at %s failed to send %s (HTTP %ld): %s%s",
                                         url, what, status, gm, stop), -EIO;
        default:
                return sd_bus_error_setf(ret_error, name,
                                         "The gateway at %s answered the request for %s with HTTP %ld: %s%s",
                                         url, what, status, gm, stop), -EIO;
        }
}

const char *gateway_failure_to_bus_error(GatewayFailure f) {
        static const char *const table[_GATEWAY_FAILURE_MAX] = {
                [GATEWAY_FAILURE_NONE] = NULL,
                [GATEWAY_FAILURE_UNAUTHORIZED] = BUS_ERROR_UNAUTHORIZED,
                [GATEWAY_FAILURE_PAYMENT_REQUIRED] = BUS_ERROR_PAYMENT_REQUIRED,
                [GATEWAY_FAILURE_DAILY_BUDGET] = BUS_ERROR_DAILY_BUDGET_EXCEEDED,
                [GATEWAY_FAILURE_MODEL_RETIRED] = BUS_ERROR_MODEL_RETIRED,
                [GATEWAY_FAILURE_PRIVACY] = SD_BUS_ERROR_INVALID_ARGS,
                [GATEWAY_FAILURE_MODEL_NOT_FOUND] = BUS_ERROR_MODEL_NOT_FOUND,
                [GATEWAY_FAILURE_TIMEOUT] = BUS_ERROR_TIMEOUT,
                [GATEWAY_FAILURE_RATE_LIMITED] = BUS_ERROR_RATE_LIMITED,
                [GATEWAY_FAILURE_UNAVAILABLE] = BUS_ERROR_GATEWAY_UNAVAILABLE,
                [GATEWAY_FAILURE_INVALID_ARGS] = SD_BUS_ERROR_INVALID_ARGS,
                [GATEWAY_FAILURE_ERROR] = BUS_ERROR_GATEWAY_ERROR,
        };

        return f >= 0 && f < _GATEWAY_FAILURE_MAX && table[f] ? table[f] : BUS_ERROR_GATEWAY_ERROR;
}
