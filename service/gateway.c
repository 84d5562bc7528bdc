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
        _cleanup_(http_request_freep) HttpRequest *r = NULL;
        _cleanup_free_ char *url = NULL;
        _cleanup_erase_ char *header = NULL;
        const char *key = context_llm_key(c);
        int q;

        if (!key)
                return -ENOKEY;
        if (asprintf(&url, "%s%s", context_gateway_url(c), path) < 0)
                return -ENOMEM;
        q = http_request_new(c->http, "GET", url, &r);
        if (q < 0)
                return q;
        if (asprintf(&header, "X-API-Key: %s", key) < 0) {
                header = NULL;
                return -ENOMEM;
        }
        q = http_request_add_header(r, header);
        if (q >= 0)
                q = http_request_add_header(r, "Accept: application/json");
        if (q < 0)
                return q;
        http_request_set_timeouts(r, timeout_usec, timeout_usec, timeout_usec, timeout_usec);
        http_request_set_max_body(r, max_body);
        *ret = TAKE_PTR(r);
        return 0;
}

/* "Invalid API key" → "Invalid API key.": messages are embedded in sentences. */
static const char *final_stop(const char *s) {
        size_t n = s ? strlen(s) : 0;
        return n > 0 && strchr(".!?", s[n - 1]) ? "" : ".";
}

int gateway_check_answer(Context *c, HttpRequest *r, int error, const char *what, sd_bus_error *ret_error) {
        const char *url = context_gateway_url(c), *why = http_request_get_error_message(r);
        _cleanup_erase_ char *raw = NULL; /* may quote the key */
        _cleanup_free_ char *gw_message = NULL;
        const char *body;
        size_t len;
        long status;

        if (error == -ETIMEDOUT)
                return sd_bus_error_setf(ret_error, BUS_ERROR_TIMEOUT, "The gateway at %s did not send %s in time: %s",
                                         url, what, why ?: "timed out."), -EIO;
        if (error == -EFBIG)
                return sd_bus_error_setf(ret_error, BUS_ERROR_GATEWAY_ERROR,
                                         "The gateway at %s sent an answer for %s that is too large to be genuine: %s",
                                         url, what, why ?: "over the size limit."), -EIO;
        if (error == -ENOMEM)
                return sd_bus_error_set(ret_error, SD_BUS_ERROR_NO_MEMORY, "Out of memory."), -EIO;
        if (error < 0)
                return sd_bus_error_setf(ret_error, BUS_ERROR_GATEWAY_UNAVAILABLE, "Cannot reach the gateway at %s: %s%s",
                                         url, why ?: strerror(-error), final_stop(why ?: ".")), -EIO;

        status = http_request_get_status(r);
        if (status >= 200 && status < 300)
                return 0;

        body = http_request_get_body(r, &len);
        if (chat_parse_error_body(body, len, NULL, &raw) < 0)
                return sd_bus_error_set(ret_error, SD_BUS_ERROR_NO_MEMORY, "Out of memory."), -EIO;
        gw_message = key_redact(raw, context_llm_key(c));
        if (raw && !gw_message)
                return sd_bus_error_set(ret_error, SD_BUS_ERROR_NO_MEMORY, "Out of memory."), -EIO;
        const char *gm = strempty(gw_message), *stop = final_stop(gm);

        switch (status) {
        case 401:
        case 403:
                return sd_bus_error_setf(ret_error, BUS_ERROR_UNAUTHORIZED,
                                         "The gateway rejected the key (%ld): %s%s Set a valid key with \"bankr-llm key set\".",
                                         status, gm, stop), -EIO;
        case 402:
                return sd_bus_error_setf(ret_error, BUS_ERROR_PAYMENT_REQUIRED,
                                         "The credits are exhausted (402): %s%s Add credits with \"bankr-llm credits add\".",
                                         gm, stop), -EIO;
        case 429:
                return sd_bus_error_setf(ret_error, BUS_ERROR_RATE_LIMITED,
                                         "The gateway at %s is rate limiting requests (429): %s%s Try again in a moment.",
                                         url, gm, stop), -EIO;
        }
        if (status >= 500)
                return sd_bus_error_setf(ret_error, BUS_ERROR_GATEWAY_UNAVAILABLE,
                                         "The gateway at %s failed to send %s (HTTP %ld): %s%s",
                                         url, what, status, gm, stop), -EIO;
        return sd_bus_error_setf(ret_error, BUS_ERROR_GATEWAY_ERROR,
                                 "The gateway at %s answered the request for %s with HTTP %ld: %s%s",
                                 url, what, status, gm, stop), -EIO;
}
