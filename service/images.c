/* SPDX-License-Identifier: MIT */
/*
 * bot.bankr.LLM1.Images (see images.h). One call is one POST: the gateway
 * does not stream images, so there are no retries with partial results to
 * think about, only one timeout that fits a slow generation (180 s unless
 * the caller says otherwise) and the caller leaving, which cuts the
 * transfer. Nothing is retried: a generation is billed per image, and a
 * second attempt after a timeout could pay twice.
 */
#include <ctype.h>
#include <fcntl.h>
#include <stdarg.h>
#include <inttypes.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include <json-c/json.h>

#include "bus-util.h"
#include "chat-request.h"
#include "gateway.h"
#include "http-error.h"
#include "http.h"
#include "image-type.h"
#include "images.h"
#include "json-util.h"
#include "keyfmt.h"
#include "log.h"
#include "model-list.h"
#include "models.h"
#include "retry-policy.h"

/* A whole answer: IMAGES_MAX_N images of IMAGE_SIZE_MAX, in base64, and
 * the JSON around them. */
#define IMAGES_BODY_MAX ((size_t) IMAGES_MAX_N * (IMAGE_SIZE_MAX / 3 * 4 + 16) + (size_t) 1024 * 1024)

typedef struct ImageCall ImageCall;

struct Images {
        Context *context;
        ImageCall *calls;
        sd_bus_slot *owner_match;
};

struct ImageCall {
        Images *images;
        ImageCall *prev, *next;
        sd_bus_message *m; /* the call to answer */
        char *owner;
        char *model;
        unsigned n;
        ChatPrivacy expected; /* the tier asked for */
        ChatPrivacy reported; /* X-Privacy-Tier, or _CHAT_PRIVACY_INVALID */
        bool deprecated;
        char *replacement;
        bool downgraded;
        uint64_t start_usec;
        HttpRequest *http;
};

static ImageCall *image_call_free(ImageCall *ic) {
        if (!ic)
                return NULL;
        if (ic->images) {
                if (ic->prev)
                        ic->prev->next = ic->next;
                else
                        ic->images->calls = ic->next;
                if (ic->next)
                        ic->next->prev = ic->prev;
        }
        http_request_free(ic->http);
        sd_bus_message_unref(ic->m);
        free(ic->owner);
        free(ic->model);
        free(ic->replacement);
        free(ic);
        return NULL;
}

/* ---- the answer -------------------------------------------------------- */

/* A sealed memfd holding data: the receiver can neither be handed a file
 * that changes under it nor change ours. */
static int memfd_with(const void *data, size_t size, int *ret_fd) {
        const uint8_t *p = data;
        size_t done = 0;
        int fd;

        fd = memfd_create("bankr-llm-image", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return -errno;
        while (done < size) {
                ssize_t l = write(fd, p + done, size - done);
                if (l < 0 && errno == EINTR)
                        continue;
                if (l < 0) {
                        int e = -errno;
                        close(fd);
                        return e;
                }
                done += (size_t) l;
        }
        if (lseek(fd, 0, SEEK_SET) < 0 ||
            fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
                int e = -errno;
                close(fd);
                return e;
        }
        *ret_fd = fd;
        return 0;
}

static void image_call_fail(ImageCall *ic, const char *name, const char *fmt, ...) _printf_(3, 4);
static void image_call_fail(ImageCall *ic, const char *name, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, fmt);
        (void) free_and_vasprintf(&msg, fmt, ap);
        va_end(ap);
        log_info("Image generation with %s failed: %s", ic->model, strna(msg));
        (void) sd_bus_reply_method_errorf(ic->m, name, "%s", msg ?: "Image generation failed.");
        image_call_free(ic);
}

static double json_number_or(json_object *o, const char *key, double fallback) {
        json_object *v;
        if (json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, key, &v) &&
            (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)) &&
            json_object_get_double(v) >= 0)
                return json_object_get_double(v);
        return fallback;
}

static void image_call_answer(ImageCall *ic, const char *body, size_t len) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(json_object_putp) json_object *root = NULL;
        _cleanup_strv_free_ char **mimes = NULL;
        json_tokener *tok;
        json_object *data, *usage;
        const Model *rec;
        size_t n;
        double cost;
        int k;

        tok = json_tokener_new();
        if (!tok)
                return image_call_fail(ic, BUS_ERROR_GATEWAY_ERROR, "The service ran out of memory.");
        root = json_tokener_parse_ex(tok, body, (int) MIN(len, (size_t) INT32_MAX));
        json_tokener_free(tok);
        data = json_get(root, "data");
        if (!json_object_is_type(data, json_type_array) || json_object_array_length(data) == 0)
                return image_call_fail(ic, BUS_ERROR_GATEWAY_ERROR,
                                       "The gateway's answer for %s holds no images (no \"data\" list).", ic->model);
        n = json_object_array_length(data);
        if (n > IMAGES_MAX_N)
                n = IMAGES_MAX_N;

        k = sd_bus_message_new_method_return(ic->m, &reply);
        if (k >= 0)
                k = sd_bus_message_open_container(reply, 'a', "h");
        for (size_t i = 0; k >= 0 && i < n; i++) {
                json_object *item = json_object_array_get_idx(data, i);
                const char *b64 = json_get_string(item, "b64_json", NULL), *url = json_get_string(item, "url", NULL);
                _cleanup_free_ uint8_t *img = NULL;
                const char *mime;
                size_t size;
                int fd = -1;

                /* Tolerated: a data: URL in "url". A link elsewhere is not
                 * fetched: the service talks to the gateway only. */
                if (!b64 && url && startswith(url, "data:") && strstr(url, ";base64,"))
                        b64 = strstr(url, ";base64,") + 8;
                if (!b64)
                        return image_call_fail(ic, BUS_ERROR_GATEWAY_ERROR,
                                               "The gateway's answer for %s holds image %zu as a link, not as data; the "
                                               "service does not fetch links.", ic->model, i + 1);
                k = base64_decode(b64, strlen(b64), IMAGE_SIZE_MAX, &img, &size);
                if (k == -EFBIG)
                        return image_call_fail(ic, BUS_ERROR_LIMIT_EXCEEDED,
                                               "Image %zu from the gateway is larger than %zu MiB; it was dropped.", i + 1,
                                               IMAGE_SIZE_MAX / 1024 / 1024);
                if (k < 0 && k != -ENOMEM)
                        return image_call_fail(ic, BUS_ERROR_GATEWAY_ERROR,
                                               "Image %zu from the gateway is not valid base64.", i + 1);
                if (k < 0)
                        break;
                mime = image_type_detect(img, size);
                if (!mime)
                        return image_call_fail(ic, BUS_ERROR_GATEWAY_ERROR,
                                               "Image %zu from the gateway is not a PNG, JPEG, GIF or WebP image.", i + 1);
                k = memfd_with(img, size, &fd);
                if (k < 0)
                        break;
                k = sd_bus_message_append(reply, "h", fd); /* sd-bus keeps a duplicate */
                close(fd);
                if (k >= 0)
                        k = strv_extend(&mimes, mime);
        }
        if (k >= 0)
                k = sd_bus_message_close_container(reply);

        /* The gateway's own figure when it gives one, else the list's price. */
        usage = json_get(root, "usage");
        rec = models_find(ic->images->context->models, ic->model);
        cost = rec ? rec->price_image_output * (double) n : 0.0;
        cost = json_number_or(usage, "cost", json_number_or(usage, "cost_usd", json_number_or(root, "cost_usd", cost)));

        if (k >= 0)
                k = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (k >= 0)
                k = sd_bus_message_append(reply, "{sv}{sv}{sv}{sv}{sv}{sv}{sv}", "model", "s", ic->model, "images", "u",
                                          (uint32_t) n, "cost_usd", "d", cost, "privacy_tier", "s",
                                          ic->reported >= 0 ? chat_privacy_to_string(ic->reported) : "", "deprecated",
                                          "b", ic->deprecated, "replacement", "s", strempty(ic->replacement),
                                          "latency_total_ms", "d",
                                          (double) (now_usec(CLOCK_MONOTONIC) - ic->start_usec) / USEC_PER_MSEC);
        if (k >= 0)
                k = bus_append_dict_strv(reply, "mime_types", mimes);
        if (k >= 0)
                k = sd_bus_message_close_container(reply);
        if (k >= 0)
                k = sd_bus_send(NULL, reply, NULL);
        if (k < 0)
                return image_call_fail(ic, BUS_ERROR_GATEWAY_ERROR, "The images could not be handed over: %s",
                                       strerror(-k));
        log_debug("Generated %zu image(s) with %s.", n, ic->model);
        image_call_free(ic);
}

static void image_call_status_failed(ImageCall *ic, long status) {
        _cleanup_free_ char *type = NULL, *raw = NULL, *gw = NULL;
        Context *c = ic->images->context;
        GatewayFailure failure;
        const char *body, *name;
        size_t len;

        body = http_request_get_body(ic->http, &len);
        if (chat_parse_error_body(body, len, &type, &raw) < 0 || !(gw = key_redact(raw, context_llm_key(c))))
                return image_call_fail(ic, BUS_ERROR_GATEWAY_ERROR, "The service ran out of memory.");
        const char *kind = status == 402 && memmem(body, len, "daily_budget_exceeded", 21) ? "daily_budget_exceeded" : type;
        context_gateway_status(c, status, kind, raw);
        (void) retry_for_status(status, kind, raw, &failure);
        name = gateway_failure_to_bus_error(failure);
        switch (failure) {
        case GATEWAY_FAILURE_UNAUTHORIZED:
                return image_call_fail(ic, name, "The gateway rejected the key (HTTP %ld: %s). Check it with "
                                       "\"bankr-llm key validate\".", status, gw);
        case GATEWAY_FAILURE_PAYMENT_REQUIRED:
                return image_call_fail(ic, name, "Your Bankr LLM credits are exhausted (HTTP 402: %s). Add credits with "
                                       "\"bankr-llm credits add\" and try again.", gw);
        case GATEWAY_FAILURE_DAILY_BUDGET:
                return image_call_fail(ic, name, "Your daily spend budget for the Bankr LLM Gateway is used up (HTTP 402: "
                                       "%s). Your balance is not the problem, so a top-up does not help; the budget "
                                       "covers a trailing 24 hours, or raise it at https://bankr.bot/llm.", gw);
        case GATEWAY_FAILURE_MODEL_NOT_FOUND:
                return image_call_fail(ic, name, "The gateway does not know the image model \"%s\" (HTTP %ld: %s). "
                                       "\"bankr-llm models\" lists the models whose output includes image.",
                                       ic->model, status, gw);
        case GATEWAY_FAILURE_MODEL_RETIRED:
                if (ic->replacement)
                        return image_call_fail(ic, name, "The model \"%s\" is retired (HTTP 410: %s). Use its "
                                               "replacement \"%s\" instead.", ic->model, gw, ic->replacement);
                return image_call_fail(ic, name, "The model \"%s\" is retired (HTTP 410: %s).", ic->model, gw);
        case GATEWAY_FAILURE_PRIVACY:
                return image_call_fail(ic, name, "The gateway cannot generate with %s at the privacy tier \"%s\" "
                                       "(HTTP %ld: %s); it never downgrades a tier.", ic->model,
                                       chat_privacy_to_string(ic->expected), status, gw);
        case GATEWAY_FAILURE_RATE_LIMITED:
                return image_call_fail(ic, name, "The gateway is rate limiting requests (HTTP 429: %s). Wait a moment "
                                       "and try again.", gw);
        case GATEWAY_FAILURE_UNAVAILABLE:
                return image_call_fail(ic, name, "The gateway failed to answer (HTTP %ld: %s). Try again later.", status,
                                       gw);
        default:
                return image_call_fail(ic, name, "The gateway refused the image request (HTTP %ld: %s).", status, gw);
        }
}

static int on_http_headers(HttpRequest *h, long status, void *userdata) {
        ImageCall *ic = userdata;
        const char *tier = http_request_get_header(h, "x-privacy-tier");
        const char *dep = http_request_get_header(h, "x-model-deprecated");
        const char *repl = http_request_get_header(h, "x-model-replacement");

        ic->reported = tier ? chat_privacy_from_header(tier) : _CHAT_PRIVACY_INVALID;
        ic->deprecated = dep && (strcasecmp(dep, "true") == 0 || streq(dep, "1"));
        if (!isempty(repl) && strlen(repl) <= 256 && !strpbrk(repl, " \t\"\\") &&
            free_and_strdup(&ic->replacement, repl) < 0)
                return -ENOMEM;
        if (ic->deprecated || status == 410)
                context_model_deprecated(ic->images->context, ic->model, ic->replacement);
        if (status >= 200 && status < 300 && ic->reported >= 0 && ic->reported < ic->expected) {
                ic->downgraded = true;
                return -EPERM;
        }
        return 0;
}

static void on_http_done(HttpRequest *h, int error, void *userdata) {
        ImageCall *ic = userdata;
        long status;
        const char *body, *what = http_request_get_error_message(h);
        size_t len;

        if (ic->downgraded)
                return image_call_fail(ic, BUS_ERROR_GATEWAY_ERROR,
                                       "The gateway served %s at the privacy tier \"%s\" although \"%s\" was asked; the "
                                       "answer was discarded unread.", ic->model, chat_privacy_to_string(ic->reported),
                                       chat_privacy_to_string(ic->expected));
        if (error == -ETIMEDOUT)
                return image_call_fail(ic, BUS_ERROR_TIMEOUT, "The gateway did not generate the image in time (%s); "
                                       "the option timeout_s allows up to %u s.", what ?: "timed out", IMAGES_TIMEOUT_S_MAX);
        if (error == -EFBIG)
                return image_call_fail(ic, BUS_ERROR_GATEWAY_ERROR, "The gateway's answer is larger than %zu MiB.",
                                       IMAGES_BODY_MAX / 1024 / 1024);
        if (error < 0)
                return image_call_fail(ic, gateway_failure_to_bus_error(
                                                   gateway_failure_for_transport(error, GATEWAY_ENDPOINT_CHAT)),
                                       "Cannot reach the gateway at %s: %s", context_gateway_url(ic->images->context),
                                       what ?: strerror(-error));
        status = http_request_get_status(h);
        if (status < 200 || status > 299)
                return image_call_status_failed(ic, status);
        body = http_request_get_body(h, &len);
        image_call_answer(ic, body, len);
}

/* ---- the call ---------------------------------------------------------- */

static int read_uint_option(sd_bus_message *m, const char *contents, const char *name, uint32_t lo, uint32_t hi,
                            uint32_t *ret, sd_bus_error *error) {
        int64_t v;
        int k;

        k = bus_option_read_integer(m, contents, name, lo, hi, &v, error);
        if (k < 0)
                return k;
        *ret = (uint32_t) v;
        return 0;
}

/* size and quality are the gateway's to judge; only what is plainly not
 * such a value is refused here. */
static bool option_word_ok(const char *s) {
        if (isempty(s) || strlen(s) > 32)
                return false;
        for (const char *p = s; *p; p++)
                if (!isalnum((unsigned char) *p) && *p != 'x' && *p != '-' && *p != '_')
                        return false;
        return true;
}

/* The model to use when the caller names none: the first of the list whose
 * output includes image, else IMAGES_DEFAULT_MODEL. */
static const char *default_model(Images *im) {
        const ModelList *l = models_list(im->context->models);

        for (size_t i = 0; l && i < l->n; i++)
                if (strv_contains(l->models[i].output, "image"))
                        return l->models[i].id;
        return IMAGES_DEFAULT_MODEL;
}

static unsigned count_caller(Images *im, const char *owner) {
        unsigned n = 0;
        for (ImageCall *ic = im->calls; ic; ic = ic->next)
                n += streq(ic->owner, owner);
        return n;
}

typedef struct GenerateOptions {
        uint32_t n, timeout_s;
        const char *size, *quality;
        ChatPrivacy privacy;
} GenerateOptions;

static int read_option(sd_bus_message *m, const char *name, const char *contents, void *userdata,
                       sd_bus_error *error) {
        GenerateOptions *o = userdata;
        const char *v;
        int k;

        if (streq(name, "n"))
                return read_uint_option(m, contents, name, 1, IMAGES_MAX_N, &o->n, error);
        if (streq(name, "timeout_s"))
                return read_uint_option(m, contents, name, 1, IMAGES_TIMEOUT_S_MAX, &o->timeout_s, error);
        if (streq(name, "size") || streq(name, "quality")) {
                k = bus_option_read_string(m, contents, name, &v, error);
                if (k >= 0 && !option_word_ok(v))
                        k = sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                              "Option %s must be a short word such as \"1024x1024\" or \"high\".", name);
                if (k >= 0)
                        *(streq(name, "size") ? &o->size : &o->quality) = v;
                return k;
        }
        if (streq(name, "privacy")) {
                k = bus_option_read_string(m, contents, name, &v, error);
                if (k >= 0 && chat_privacy_from_string(v) < 0)
                        k = sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                              "Option privacy is \"%s\": use \"standard\", \"zdr\" or \"private\".", v);
                if (k >= 0)
                        o->privacy = chat_privacy_from_string(v);
                return k;
        }
        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                 "Unknown option \"%s\". Known options: n, size, quality, privacy, timeout_s.", name);
}

static int method_generate(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(json_object_putp) json_object *body = NULL;
        _cleanup_(http_request_freep) HttpRequest *h = NULL;
        _cleanup_free_ char *url = NULL, *model_id = NULL;
        _cleanup_erase_ char *auth = NULL;
        Images *im = userdata;
        Context *c = im->context;
        GenerateOptions o = {
                .n = 1,
                .timeout_s = IMAGES_TIMEOUT_USEC_DEFAULT / USEC_PER_SEC,
                .privacy = CHAT_PRIVACY_STANDARD,
        };
        const char *model, *prompt, *sender = sd_bus_message_get_sender(m), *key, *js;
        ChatPrivacy expected;
        const Model *rec;
        ImageCall *ic;
        size_t bare_len;
        int k;

        k = sd_bus_message_read(m, "ss", &model, &prompt);
        if (k < 0)
                return k;
        k = bus_read_options(m, read_option, &o, error);
        if (k < 0)
                return k;

        if (isempty(model))
                model = default_model(im);
        if (strlen(model) > 256 || strpbrk(model, " \t\n\r\"\\"))
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "The model id is too long or holds white space.");
        if (isempty(prompt) || strspn(prompt, " \t\n\r") == strlen(prompt))
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "The prompt is empty: say what to draw.");
        if (strlen(prompt) > IMAGES_PROMPT_MAX)
                return sd_bus_error_setf(error, BUS_ERROR_LIMIT_EXCEEDED, "The prompt is longer than %zu KiB.",
                                         IMAGES_PROMPT_MAX / 1024);
        expected = chat_privacy_max(chat_privacy_max(o.privacy, context_default_privacy(c)),
                                    chat_privacy_from_model_suffix(model, &bare_len));
        model_id = strndup(model, bare_len);
        if (!model_id)
                return -ENOMEM;
        rec = models_find(c->models, model_id);
        if (rec && !strv_contains(rec->output, "image"))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "The model \"%s\" does not generate images (its output is text); name one whose "
                                         "output includes image, or none for %s.", model, default_model(im));
        if (sender && count_caller(im, sender) >= IMAGES_MAX_PER_CALLER)
                return sd_bus_error_setf(error, BUS_ERROR_LIMIT_EXCEEDED,
                                         "This client already has %u image generations in flight; wait for one to end.",
                                         IMAGES_MAX_PER_CALLER);
        key = context_llm_key(c);
        if (!key)
                return sd_bus_error_set(error, BUS_ERROR_NO_KEY,
                                        "No Bankr LLM Gateway key is configured. Set one with \"bankr-llm key set\".");

        expected = chat_privacy_max(expected, chat_privacy_from_url(context_gateway_url(c)));
        body = json_object_new_object();
        if (!body)
                return -ENOMEM;
        k = json_add(body, "model", json_object_new_string(model));
        if (k >= 0)
                k = json_add(body, "prompt", json_object_new_string(prompt));
        if (k >= 0)
                k = json_add(body, "n", json_object_new_int64(o.n));
        if (k >= 0 && o.size)
                k = json_add(body, "size", json_object_new_string(o.size));
        if (k >= 0 && o.quality)
                k = json_add(body, "quality", json_object_new_string(o.quality));
        /* As for chat: a tier endpoint already serves its tier. */
        ChatPrivacy send = chat_privacy_max(o.privacy, context_default_privacy(c));
        if (k >= 0 && send > chat_privacy_from_url(context_gateway_url(c)))
                k = json_add(body, "privacy", json_object_new_string(chat_privacy_to_string(send)));
        if (k < 0)
                return k;
        js = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!js)
                return -ENOMEM;

        if (asprintf(&url, "%s/v1/images/generations", context_gateway_url(c)) < 0)
                return -ENOMEM;
        k = http_request_new(c->http, "POST", url, &h);
        if (k < 0)
                return sd_bus_error_setf(error, BUS_ERROR_GATEWAY_UNAVAILABLE, "Cannot send a request to %s: %s", url,
                                         strerror(-k));
        if (asprintf(&auth, "Authorization: Bearer %s", key) < 0)
                return -ENOMEM;
        k = http_request_add_header(h, auth);
        if (k >= 0)
                k = http_request_set_body(h, js, strlen(js), "application/json");
        if (k < 0)
                return k;
        /* No streaming: nothing arrives until the image is done. */
        http_request_set_timeouts(h, 10 * USEC_PER_SEC, (uint64_t) o.timeout_s * USEC_PER_SEC, 60 * USEC_PER_SEC,
                                  (uint64_t) o.timeout_s * USEC_PER_SEC + 60 * USEC_PER_SEC);
        http_request_set_max_body(h, IMAGES_BODY_MAX);
        http_request_set_on_headers(h, on_http_headers);
        http_request_set_on_done(h, on_http_done);

        ic = calloc(1, sizeof(ImageCall));
        if (!ic)
                return -ENOMEM;
        ic->m = sd_bus_message_ref(m);
        ic->owner = strdup(strempty(sender));
        ic->model = strdup(model);
        ic->n = o.n;
        ic->expected = expected;
        ic->reported = _CHAT_PRIVACY_INVALID;
        ic->start_usec = now_usec(CLOCK_MONOTONIC);
        if (!ic->owner || !ic->model) {
                image_call_free(ic);
                return -ENOMEM;
        }
        http_request_set_userdata(h, ic);
        k = http_request_start(h);
        if (k < 0) {
                image_call_free(ic);
                return sd_bus_error_setf(error, BUS_ERROR_GATEWAY_UNAVAILABLE, "Cannot start a request to %s: %s", url,
                                         strerror(-k));
        }
        ic->http = TAKE_PTR(h);
        ic->images = im;
        ic->next = im->calls;
        if (im->calls)
                im->calls->prev = ic;
        im->calls = ic;
        log_debug("Generating %" PRIu32 " image(s) with %s for %s.", o.n, model, strna(sender));
        return 1;
}

const sd_bus_vtable images_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("Generate", SD_BUS_ARGS("s", model, "s", prompt, "a{sv}", options),
                                SD_BUS_RESULT("ah", images, "a{sv}", info), method_generate, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/* ---- lifetime ---------------------------------------------------------- */

/* The caller left: nobody can take the images; the transfer is cut. */
static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Images *im = userdata;
        const char *name, *old_owner, *new_owner;
        ImageCall *ic, *next;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        if (name[0] != ':' || !isempty(new_owner))
                return 0;
        for (ic = im->calls; ic; ic = next) {
                next = ic->next;
                if (streq(ic->owner, name)) {
                        log_info("%s left the bus; its image generation with %s was cancelled.", name, ic->model);
                        image_call_free(ic);
                }
        }
        return 0;
}

int images_new(Context *c, Images **ret) {
        Images *im;
        int r;

        im = calloc(1, sizeof(Images));
        if (!im)
                return -ENOMEM;
        im->context = c;
        r = sd_bus_match_signal_async(c->bus, &im->owner_match, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                      "org.freedesktop.DBus", "NameOwnerChanged", on_name_owner_changed, NULL, im);
        if (r < 0) {
                free(im);
                return log_error_errno(r, "Failed to watch for clients leaving the bus: %m");
        }
        *ret = im;
        return 0;
}

Images *images_free(Images *im) {
        if (!im)
                return NULL;
        while (im->calls) {
                (void) sd_bus_reply_method_errorf(im->calls->m, BUS_ERROR_CANCELLED,
                                                  "bankr-llmd is stopping; the image generation was cancelled.");
                image_call_free(im->calls);
        }
        sd_bus_slot_unref(im->owner_match);
        free(im);
        return NULL;
}
