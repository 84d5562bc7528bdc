/* SPDX-License-Identifier: MIT */
/*
 * bot.bankr.LLM1.Chat: Start and Complete read and check a call, enforce the
 * limits and create a Request (request.c) that does the rest. This file
 * keeps the books: requests in flight (ActiveRequests), per-caller counts,
 * callers leaving the bus (their requests are cancelled at once), and ended
 * requests lingering for a while so Text and State can still be read.
 */
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "image-type.h"
#include "json-util.h"
#include "bus-util.h"
#include "log.h"
#include "chat.h"
#include "model-list.h"
#include "models.h"
#include "request.h"
#include "settings.h"

/* What a request in flight may hold in descriptors: its socket, and curl's
 * resolver thread's socketpair while the host is looked up. */
#define CHAT_FDS_PER_REQUEST 3U
/* Descriptors kept for everything else: the session and system buses, the
 * keyring's connection, sd-event's epoll, signal, timer and inotify fds,
 * curl's wakeup pair, Models.Refresh and Credits, files of Setup.Install,
 * the cache and the settings. */
#define CHAT_FD_RESERVE 64U
#define CHAT_MODEL_ID_MAX 256U

struct Chat {
        Context *context;

        Request *active, *active_tail;  /* in start order */
        Request *ended, *ended_tail;    /* in end order: the oldest goes first */
        unsigned n_active, n_ended;
        uint64_t next_id;

        uint64_t linger_usec;
        uint64_t backoff_base_usec;
        unsigned max_total, max_per_caller; /* CHAT_MAX_*, or fewer if descriptors are short */
        sd_bus_slot *owner_match;
        sd_event_source *exit_source;
        ChatPrivacy default_privacy; /* Chat.DefaultPrivacy, in settings.json as default_privacy */
};

ChatPrivacy chat_get_default_privacy(Chat *ch) {
        return ch ? ch->default_privacy : CHAT_PRIVACY_STANDARD;
}

/* ---- settings (the file credits.c keeps low_threshold_usd in) ----------- */

static void chat_load_settings(Chat *ch) {
        _cleanup_free_ char *path = NULL;
        _cleanup_(json_object_putp) json_object *root = NULL;
        json_object *o;

        ch->default_privacy = CHAT_PRIVACY_STANDARD;
        if (settings_load(ch->context->state_dir, "the default privacy tier is \"standard\"", &path, &root) < 0)
                return;
        if (!json_object_object_get_ex(root, "default_privacy", &o))
                return;
        if (json_object_is_type(o, json_type_string) && chat_privacy_from_string(json_object_get_string(o)) >= 0)
                ch->default_privacy = chat_privacy_from_string(json_object_get_string(o));
        else {
                /* Fail closed: a tier that cannot be read must not weaken
                 * what the user asked for. */
                ch->default_privacy = CHAT_PRIVACY_PRIVATE;
                log_warning("default_privacy in %s is not \"standard\", \"zdr\" or \"private\"; using \"private\", "
                            "the strongest, until it is set again.", path);
        }
}

/* The documented limits need CHAT_MAX_TOTAL * CHAT_FDS_PER_REQUEST +
 * CHAT_FD_RESERVE descriptors; main() raised the soft limit to the hard
 * one. Where even the hard limit is lower, admit fewer requests, so that
 * streams never starve the buses, the keyring and the files of the fds
 * they need (and are refused with LimitExceeded instead). */
static void chat_size_limits(Chat *ch) {
        struct rlimit rl;
        uint64_t budget;

        ch->max_total = CHAT_MAX_TOTAL;
        if (getrlimit(RLIMIT_NOFILE, &rl) >= 0 && rl.rlim_cur != RLIM_INFINITY) {
                budget = rl.rlim_cur > CHAT_FD_RESERVE ? (rl.rlim_cur - CHAT_FD_RESERVE) / CHAT_FDS_PER_REQUEST : 0;
                if (budget < ch->max_total) {
                        ch->max_total = budget > 0 ? (unsigned) budget : 1;
                        log_warning("Only %llu file descriptors may be open: admitting %u chat requests at a time, "
                                    "not %u.", (unsigned long long) rl.rlim_cur, ch->max_total, CHAT_MAX_TOTAL);
                }
        }
        ch->max_per_caller = MIN(CHAT_MAX_PER_CALLER, ch->max_total);
}

/* ---- lists ------------------------------------------------------------- */

static Request *next_of(Request *req) {
        return request_get_link(req)->next;
}

static void list_remove(Request **head, Request **tail, Request *req) {
        RequestLink *l = request_get_link(req);

        if (l->prev)
                request_get_link(l->prev)->next = l->next;
        else
                *head = l->next;
        if (l->next)
                request_get_link(l->next)->prev = l->prev;
        else
                *tail = l->prev;
        l->prev = l->next = NULL;
}

static void list_append(Request **head, Request **tail, Request *req) {
        RequestLink *l = request_get_link(req);

        l->next = NULL;
        l->prev = *tail;
        if (*tail)
                request_get_link(*tail)->next = req;
        else
                *head = req;
        *tail = req;
}

/* ---- books ------------------------------------------------------------- */

static void chat_emit_active(Chat *ch) {
        int r = sd_bus_emit_properties_changed(ch->context->bus, OBJECT_PATH, IFACE_CHAT, "ActiveRequests", NULL);
        if (r < 0)
                log_debug_errno(r, "Failed to emit PropertiesChanged for ActiveRequests: %m");
}

static void chat_drop(Chat *ch, Request *req) {
        list_remove(&ch->ended, &ch->ended_tail, req);
        ch->n_ended--;
        request_free(req);
}

static void on_linger_done(Request *req, void *userdata) {
        chat_drop(userdata, req);
}

static void on_request_ended(Request *req, void *userdata) {
        Chat *ch = userdata;
        uint64_t linger;
        int k;

        list_remove(&ch->active, &ch->active_tail, req);
        ch->n_active--;
        list_append(&ch->ended, &ch->ended_tail, req);
        ch->n_ended++;
        chat_emit_active(ch);
        if (request_get_attempts(req) > 0)
                context_request_finished(ch->context);
        if (request_get_app(req)) {
                /* The ledger: booked when it reached the gateway, else only
                 * its estimate released. */
                LedgerRecord rec;
                bool reached = request_get_attempts(req) > 0;
                if (reached)
                        request_get_record(req, &rec);
                context_request_booked(ch->context, request_get_app(req), request_get_estimate(req),
                                       reached ? &rec : NULL);
        }

        /* Nobody can read what has no object or no owner any more: go at
         * the next iteration (never right here, our caller still uses r). */
        linger = request_get_path(req) && !request_owner_is_gone(req) ? ch->linger_usec : 0;
        k = request_linger(req, linger, on_linger_done, ch);
        if (k < 0)
                log_warning_errno(k, "Failed to schedule the end of %s: %m", strna(request_get_path(req)));

        /* The oldest ended requests go early when there are too many. */
        while (ch->n_ended > CHAT_MAX_LINGERING && ch->ended != req)
                chat_drop(ch, ch->ended);
}

static unsigned chat_count_caller(Chat *ch, const char *sender) {
        unsigned n = 0;
        for (Request *req = ch->active; req; req = next_of(req))
                if (streq(request_get_owner(req), sender))
                        n++;
        return n;
}

/* A caller left the bus: cancel what it started and forget its ended
 * requests (only it could read them). */
static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Chat *ch = userdata;
        const char *name, *old_owner, *new_owner;
        Request *req, *next;
        unsigned n = 0;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        if (name[0] != ':' || !isempty(new_owner))
                return 0;

        for (req = ch->active; req; req = next) {
                next = next_of(req);
                if (streq(request_get_owner(req), name)) {
                        request_cancel(req, false);
                        n++;
                }
        }
        for (req = ch->ended; req; req = next_of(req))
                if (streq(request_get_owner(req), name))
                        request_forget_owner(req);
        if (n > 0)
                log_info("%s left the bus; cancelled %u request(s) it had started.", name, n);
        return 0;
}

/* ---- reading a call ---------------------------------------------------- */

static int check_model_id(const char *id, const char *what, sd_bus_error *error) {
        if (isempty(id))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "The %s is empty: name a model, e.g. "
                                         "\"claude-haiku-4.5\" (see \"bankr-llm models\").", what);
        if (strlen(id) > CHAT_MODEL_ID_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "The %s is longer than %u bytes.", what,
                                         CHAT_MODEL_ID_MAX);
        for (const char *p = id; *p; p++)
                if ((unsigned char) *p <= ' ' || *p == 0x7f)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "The %s \"%s\" contains whitespace or control characters.", what, id);
        return 0;
}

/* Reads the (role, content) array. The total text is counted into *size. */
static int read_messages(sd_bus_message *m, ChatMessage **ret, size_t *ret_n, size_t *size, sd_bus_error *error) {
        ChatMessage *msgs = NULL;
        size_t n = 0, alloc = 0;
        bool have_turn = false;
        const char *role, *content;
        int k;

        k = sd_bus_message_enter_container(m, 'a', "(ss)");
        if (k < 0)
                return k;
        while ((k = sd_bus_message_read(m, "(ss)", &role, &content)) > 0) {
                static const char *const roles[] = { "system", "user", "assistant" };
                const char *r = NULL;

                for (size_t i = 0; i < ELEMENTSOF(roles); i++)
                        if (streq(role, roles[i]))
                                r = roles[i];
                if (!r) {
                        k = sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                              "Message %zu has the role \"%s\": use \"system\", \"user\" or \"assistant\".",
                                              n + 1, role);
                        goto fail;
                }
                if (!streq(r, "system"))
                        have_turn = true;
                *size += strlen(content);
                if (*size > CHAT_TEXT_LIMIT) {
                        k = sd_bus_error_setf(error, BUS_ERROR_LIMIT_EXCEEDED,
                                              "The messages hold more than 4 MiB of text, the limit for one request.");
                        goto fail;
                }
                if (n >= CHAT_MAX_MESSAGES) {
                        k = sd_bus_error_setf(error, BUS_ERROR_LIMIT_EXCEEDED,
                                              "The request holds more than %u messages, the limit for one request.",
                                              CHAT_MAX_MESSAGES);
                        goto fail;
                }
                if (n == alloc) {
                        size_t a = MAX(alloc * 2, (size_t) 8);
                        ChatMessage *p = realloc(msgs, a * sizeof(ChatMessage));
                        if (!p) {
                                k = -ENOMEM;
                                goto fail;
                        }
                        msgs = p;
                        alloc = a;
                }
                msgs[n].role = r;
                msgs[n].content = strdup(content);
                if (!msgs[n].content) {
                        k = -ENOMEM;
                        goto fail;
                }
                n++;
        }
        if (k < 0)
                goto fail;
        k = sd_bus_message_exit_container(m);
        if (k < 0)
                goto fail;
        if (n == 0) {
                k = sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS,
                                     "The message list is empty: send at least one (\"user\", text) message.");
                goto fail;
        }
        if (!have_turn) {
                k = sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS,
                                     "The messages hold only system prompts: add at least one \"user\" message.");
                goto fail;
        }
        *ret = msgs;
        *ret_n = n;
        return 0;
fail:
        chat_messages_free(msgs, n);
        return k;
}

static const char *const option_names =
        "system, max_tokens, temperature, top_p, stop, api, fallback_models, timeout_s, connect_timeout_ms, "
        "first_byte_timeout_ms, idle_timeout_ms, privacy, follow_replacement, images";

/* An integer option from lo to hi, in units of unit microseconds. */
static int read_usec(sd_bus_message *m, const char *contents, const char *name, int64_t lo, int64_t hi, uint64_t unit,
                     uint64_t *ret, sd_bus_error *error) {
        int64_t i;
        int k;

        k = bus_option_read_integer(m, contents, name, lo, hi, &i, error);
        if (k < 0)
                return k;
        *ret = (uint64_t) i * unit;
        return 0;
}

static int read_double(sd_bus_message *m, const char *contents, const char *name, double lo, double hi,
                       double *ret, sd_bus_error *error) {
        double d;
        int k;

        if (streq(contents, "d")) {
                k = sd_bus_message_read_basic(m, 'd', &d);
                if (k < 0)
                        return k;
        } else {
                int64_t i;
                k = bus_option_read_integer(m, contents, name, INT64_MIN, INT64_MAX, &i, error);
                if (k < 0) {
                        sd_bus_error_free(error);
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Option %s must be a number (type d), not of type %s.", name, contents);
                }
                d = (double) i;
        }
        if (!isfinite(d) || d < lo || d > hi)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Option %s must be between %g and %g, not %g.",
                                         name, lo, hi, d);
        *ret = d;
        return 0;
}

static int read_string_list(sd_bus_message *m, const char *contents, const char *name, size_t max, char ***ret,
                            sd_bus_error *error) {
        _cleanup_strv_free_ char **l = NULL;
        int k;

        if (!streq(contents, "as"))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Option %s must be a list of strings (type as), not of type %s.", name, contents);
        k = sd_bus_message_read_strv(m, &l);
        if (k < 0)
                return k;
        if (strv_length(l) > max)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Option %s holds %zu entries; at most %zu are allowed.",
                                         name, strv_length(l), max);
        *ret = TAKE_PTR(l);
        return 0;
}

/* Reads what fd holds, at most IMAGE_SIZE_MAX - *total bytes. A regular file
 * (or memfd) is read from its start with pread(), bounded by the cap; a
 * pipe or socket only as far as it can be read without waiting (poll with
 * no timeout before each read): the caller writes the whole image and
 * closes its end before the call. The event loop never waits on a caller. */
static int read_image_fd(int fd, size_t limit, void **ret, size_t *ret_size, const char **ret_why) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t n = 0, alloc = 0;
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode)) {
                *ret_why = "is a directory";
                return -EISDIR;
        }
        if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) {
                if (S_ISREG(st.st_mode) && (uint64_t) st.st_size > limit)
                        return -EFBIG;
                /* A block device says no size: room for the most it may hold. */
                return pread_full(fd, S_ISREG(st.st_mode) ? (size_t) st.st_size : limit, limit, ret, ret_size);
        }
        for (;;) {
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                ssize_t l;
                int p = poll(&pfd, 1, 0);

                if (p < 0 && errno == EINTR)
                        continue;
                if (p < 0)
                        return -errno;
                if (p == 0 || !(pfd.revents & (POLLIN | POLLHUP))) {
                        *ret_why = "is a pipe or socket whose writer has not finished (write the whole image "
                                   "and close your end before the call, or pass a file or memfd)";
                        return -EAGAIN;
                }
                if (n + 65536 > alloc) {
                        size_t a = MIN(MAX(alloc * 2, (size_t) 65536 * 2), limit + 65536 + 1);
                        uint8_t *q = realloc(buf, a);
                        if (!q)
                                return -ENOMEM;
                        buf = q;
                        alloc = a;
                }
                l = read(fd, buf + n, MIN(alloc - n, (size_t) 65536));
                if (l < 0 && errno == EINTR)
                        continue;
                if (l < 0 && errno == EAGAIN)
                        continue; /* poll said readable; look again */
                if (l < 0)
                        return -errno;
                if (l == 0)
                        break;
                n += (size_t) l;
                if (n > limit)
                        return -EFBIG;
        }
        *ret = TAKE_PTR(buf);
        *ret_size = n;
        return 0;
}

static int read_images(sd_bus_message *m, const char *contents, RequestOptions *o, const ChatMessage *msgs,
                       size_t n_msgs, sd_bus_error *error) {
        size_t total = 0;
        int k;

        if (!streq(contents, "a(uh)"))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Option images must be a list of (message index, file descriptor) (type a(uh)), "
                                         "not of type %s.", contents);
        k = sd_bus_message_enter_container(m, 'a', "(uh)");
        if (k < 0)
                return k;
        for (;;) {
                _cleanup_free_ void *data = NULL;
                const char *why = NULL, *mime;
                size_t size = 0;
                uint32_t idx;
                int fd;

                k = sd_bus_message_read(m, "(uh)", &idx, &fd);
                if (k < 0)
                        return k;
                if (k == 0)
                        break;
                size_t nth = o->n_images + 1;
                if (o->n_images >= IMAGE_MAX_PER_REQUEST)
                        return sd_bus_error_setf(error, BUS_ERROR_LIMIT_EXCEEDED,
                                                 "Option images holds more than %u images, the limit for one request.",
                                                 IMAGE_MAX_PER_REQUEST);
                if (idx >= n_msgs)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Image %zu is for message %" PRIu32 ", but there are only %zu messages "
                                                 "(indexes from 0).", nth, idx, n_msgs);
                if (!streq(msgs[idx].role, "user"))
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Image %zu is for message %" PRIu32 ", a %s message; images go with user "
                                                 "messages.", nth, idx, msgs[idx].role);
                k = read_image_fd(fd, IMAGE_SIZE_MAX - total, &data, &size, &why);
                if (k == -EFBIG)
                        return sd_bus_error_setf(error, BUS_ERROR_LIMIT_EXCEEDED,
                                                 "Image %zu is larger than the %zu MiB the images of one request may hold "
                                                 "in all; scale it down.", nth, IMAGE_SIZE_MAX / 1024 / 1024);
                if (k == -ENOMEM)
                        return k;
                if (k < 0)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Image %zu cannot be read: the file "
                                                 "descriptor %s.", nth, why ?: strerror(-k));
                mime = image_type_detect(data, size);
                if (!mime)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Image %zu (%zu bytes) is not a PNG, JPEG, GIF or WebP image (checked by "
                                                 "its content).", nth, size);
                if (!GREEDY_REALLOC(o->images, o->n_images_allocated, o->n_images + 1) ||
                    !GREEDY_REALLOC(o->image_data, o->n_image_data_allocated, o->n_images + 1))
                        return -ENOMEM;
                o->images[o->n_images] = (ChatImage) { .message = idx, .mime = mime, .data = data, .size = size };
                o->image_data[o->n_images] = TAKE_PTR(data);
                o->n_images++;
                total += size;
        }
        return sd_bus_message_exit_container(m);
}

typedef struct OptionsRead {
        RequestOptions *options;
        const ChatMessage *msgs;
        size_t n_msgs;
        size_t *size;
} OptionsRead;

/* One entry of the options, for bus_read_options(). */
static int read_option(sd_bus_message *m, const char *name, const char *contents, void *userdata,
                       sd_bus_error *error) {
        OptionsRead *rd = userdata;
        RequestOptions *o = rd->options;
        const ChatMessage *msgs = rd->msgs;
        size_t n_msgs = rd->n_msgs, *size = rd->size;
        int64_t i;
        int k;

        if (streq(name, "system")) {
                const char *s;
                k = bus_option_read_string(m, contents, name, &s, error);
                if (k < 0)
                        return k;
                *size += strlen(s);
                if (free_and_strdup(&o->system, isempty(s) ? NULL : s) < 0)
                        return -ENOMEM;
        } else if (streq(name, "max_tokens")) {
                k = bus_option_read_integer(m, contents, name, 1, 1000000, &i, error);
                if (k < 0)
                        return k;
                o->max_tokens = (uint32_t) i;
        } else if (streq(name, "temperature")) {
                k = read_double(m, contents, name, 0.0, 2.0, &o->temperature, error);
                if (k < 0)
                        return k;
        } else if (streq(name, "top_p")) {
                k = read_double(m, contents, name, 0.0, 1.0, &o->top_p, error);
                if (k < 0)
                        return k;
        } else if (streq(name, "stop")) {
                k = read_string_list(m, contents, name, CHAT_MAX_STOP, &o->stop, error);
                if (k < 0)
                        return k;
                for (char **s = o->stop; s && *s; s++) {
                        if (isempty(*s))
                                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS,
                                                        "Option stop holds an empty string.");
                        *size += strlen(*s);
                }
        } else if (streq(name, "api")) {
                const char *s;
                k = bus_option_read_string(m, contents, name, &s, error);
                if (k < 0)
                        return k;
                if (streq(s, "auto"))
                        o->api = CHAT_API_AUTO;
                else if (chat_api_from_string(s) >= 0)
                        o->api = chat_api_from_string(s);
                else
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Option api is \"%s\": use \"auto\", \"openai\" or \"anthropic\".", s);
        } else if (streq(name, "fallback_models")) {
                k = read_string_list(m, contents, name, CHAT_MAX_FALLBACKS, &o->fallback_models, error);
                if (k < 0)
                        return k;
                for (char **s = o->fallback_models; s && *s; s++) {
                        k = check_model_id(*s, "fallback model id", error);
                        if (k < 0)
                                return k;
                }
        } else if (streq(name, "timeout_s"))
                return read_usec(m, contents, name, 1, 3600, USEC_PER_SEC, &o->timeout_usec, error);
        else if (streq(name, "connect_timeout_ms"))
                return read_usec(m, contents, name, 100, 60000, USEC_PER_MSEC, &o->connect_timeout_usec, error);
        else if (streq(name, "first_byte_timeout_ms"))
                return read_usec(m, contents, name, 100, 600000, USEC_PER_MSEC, &o->first_byte_timeout_usec, error);
        else if (streq(name, "idle_timeout_ms"))
                return read_usec(m, contents, name, 100, 600000, USEC_PER_MSEC, &o->idle_timeout_usec, error);
        else if (streq(name, "privacy")) {
                const char *t;
                k = bus_option_read_string(m, contents, name, &t, error);
                if (k < 0)
                        return k;
                if (chat_privacy_from_string(t) < 0)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Option privacy is \"%s\": use \"standard\", \"zdr\" (zero data "
                                                 "retention) or \"private\" (TEE compute).", t);
                o->privacy = chat_privacy_from_string(t);
        } else if (streq(name, "follow_replacement")) {
                int b;
                if (!streq(contents, "b"))
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Option follow_replacement must be a boolean (type b), not of type %s.",
                                                 contents);
                k = sd_bus_message_read_basic(m, 'b', &b);
                if (k < 0)
                        return k;
                o->follow_replacement = b;
        } else if (streq(name, "images")) {
                k = read_images(m, contents, o, msgs, n_msgs, error);
                if (k < 0)
                        return k;
        } else
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Unknown option \"%s\". Known options: %s.",
                                         name, option_names);
        return 0;
}

static int read_options(sd_bus_message *m, RequestOptions *o, const ChatMessage *msgs, size_t n_msgs, size_t *size,
                        sd_bus_error *error) {
        OptionsRead rd = { .options = o, .msgs = msgs, .n_msgs = n_msgs, .size = size };
        return bus_read_options(m, read_option, &rd, error);
}

/* ---- methods ----------------------------------------------------------- */

static int chat_call(sd_bus_message *m, Chat *ch, bool complete, sd_bus_error *error) {
        _cleanup_(request_options_done) RequestOptions o = {
                .temperature = NAN,
                .top_p = NAN,
                .api = CHAT_API_AUTO,
                .timeout_usec = 600 * USEC_PER_SEC,
                .connect_timeout_usec = 10000 * USEC_PER_MSEC,
                .first_byte_timeout_usec = 120000 * USEC_PER_MSEC,
                .idle_timeout_usec = 60000 * USEC_PER_MSEC,
        };
        _cleanup_strv_free_ char **models = NULL;
        _cleanup_(request_freep) Request *req = NULL;
        ChatMessage *msgs = NULL;
        size_t n_msgs = 0, size = 0;
        const char *model, *sender, *app;
        uint32_t o_max_tokens;
        int k;

        /* Who is asking, first: this may park the call until the bus daemon
         * has said, and the call then runs again from the top. Nothing may
         * be consumed before that: an image passed as a pipe can be read
         * only once. */
        k = context_caller_app(ch->context, m, &app, error);
        if (k <= 0)
                return k < 0 ? k : 1;

        k = sd_bus_message_read(m, "s", &model);
        if (k < 0)
                return k;
        k = check_model_id(model, "model id", error);
        if (k < 0)
                return k;
        k = read_messages(m, &msgs, &n_msgs, &size, error);
        if (k < 0)
                return k;
        /* From here on msgs belong to a request or are freed below. */
        k = read_options(m, &o, msgs, n_msgs, &size, error);
        if (k >= 0 && size > CHAT_TEXT_LIMIT)
                k = sd_bus_error_setf(error, BUS_ERROR_LIMIT_EXCEEDED,
                                      "The messages hold more than 4 MiB of text, the limit for one request.");
        /* Images only for models that take them, when the list says so
         * (a model without a record is the gateway's to judge). */
        for (size_t i = 0; k >= 0 && o.n_images > 0 && i <= strv_length(o.fallback_models); i++) {
                const char *id = i == 0 ? model : o.fallback_models[i - 1];
                _cleanup_free_ char *bare = NULL;
                const Model *rec;
                size_t n;

                (void) chat_privacy_from_model_suffix(id, &n);
                bare = strndup(id, n);
                if (!bare) {
                        k = -ENOMEM;
                        break;
                }
                rec = models_find(ch->context->models, bare);
                if (rec && !strv_contains(rec->input, "image"))
                        k = sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                              "The model \"%s\" does not take images (its input is text only); pick one "
                                              "whose input includes image (\"bankr-llm models\" lists them), or send "
                                              "the request without images.", id);
        }
        /* The stronger tier wins: the option, or the default. */
        o.privacy = chat_privacy_max(o.privacy, ch->default_privacy);
        if (k >= 0 && strv_contains(o.fallback_models, model))
                k = sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                      "Option fallback_models names the model \"%s\" itself.", model);
        if (k >= 0) {
                k = strv_extend(&models, model);
                for (char **f = o.fallback_models; k >= 0 && f && *f; f++)
                        k = strv_extend(&models, *f);
        }
        if (k < 0) {
                chat_messages_free(msgs, n_msgs);
                return k;
        }

        sender = sd_bus_message_get_sender(m);
        o_max_tokens = o.max_tokens; /* o goes to the request */
        o.backoff_base_usec = ch->backoff_base_usec;
        k = request_new(ch->context, ch->next_id, strempty(sender), complete ? m : NULL, TAKE_PTR(models), msgs,
                        n_msgs, &o, &req);
        if (k < 0)
                return k;
        request_set_on_ended(req, on_request_ended, ch);

        /* Limits and the key, once the call itself is known to be good. */
        if (ch->n_active >= ch->max_total)
                return sd_bus_error_setf(error, BUS_ERROR_LIMIT_EXCEEDED,
                                         "The service already has %u requests in flight, its limit; try again shortly.",
                                         ch->max_total);
        if (sender && chat_count_caller(ch, sender) >= ch->max_per_caller)
                return sd_bus_error_setf(error, BUS_ERROR_LIMIT_EXCEEDED,
                                         "This client already has %u requests in flight, the limit per client; "
                                         "wait for some to finish.", ch->max_per_caller);
        if (!context_llm_key(ch->context))
                return sd_bus_error_set(error, BUS_ERROR_NO_KEY,
                                        "No Bankr LLM Gateway key is configured. Set one with \"bankr-llm key set\", "
                                        "or put it in BANKR_LLM_KEY or llmKey in ~/.bankr/config.json.");

        /* Whether the caller's budget allows one more request. */
        {
                double estimate;

                k = context_request_admit(ch->context, app, model, size, o_max_tokens, &estimate, error);
                if (k < 0)
                        return k;
                k = request_set_app(req, app, estimate);
                if (k < 0) {
                        context_request_booked(ch->context, app, estimate, NULL);
                        return k;
                }
        }

        if (!complete) {
                k = request_export(req);
                if (k < 0) {
                        context_request_booked(ch->context, request_get_app(req), request_get_estimate(req), NULL);
                        return log_error_errno(k, "Failed to export %s: %m", request_get_path(req));
                }
        }

        ch->next_id++;
        list_append(&ch->active, &ch->active_tail, req);
        ch->n_active++;
        chat_emit_active(ch);
        log_debug("Request %" PRIu64 " for %s from %s (%zu messages, %zu bytes).", request_get_id(req), model, strna(sender),
                  n_msgs, size);

        Request *started = TAKE_PTR(req);
        if (!complete) {
                /* The reply goes out before any signal of the request. */
                k = sd_bus_reply_method_return(m, "o", request_get_path(started));
                if (k < 0)
                        log_debug_errno(k, "Failed to reply to Start: %m");
        }
        request_start(started);
        return 1;
}

static int method_start(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return chat_call(m, userdata, false, error);
}

static int method_complete(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return chat_call(m, userdata, true, error);
}

static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Chat *ch = userdata;
        if (streq(property, "DefaultPrivacy"))
                return sd_bus_message_append(reply, "s", chat_privacy_to_string(ch->default_privacy));
        return sd_bus_message_append(reply, "u", (uint32_t) ch->n_active);
}

static int property_set_default_privacy(sd_bus *bus, const char *path, const char *interface, const char *property,
                                        sd_bus_message *value, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *why = NULL;
        Chat *ch = userdata;
        const char *t;
        ChatPrivacy p;
        int r;

        r = sd_bus_message_read(value, "s", &t);
        if (r < 0)
                return r;
        p = chat_privacy_from_string(t);
        if (p < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "DefaultPrivacy is \"%s\": use \"standard\", \"zdr\" or \"private\".", t);
        if (p == ch->default_privacy)
                return 0;
        r = settings_set(ch->context->state_dir, "default_privacy", json_object_new_string(chat_privacy_to_string(p)),
                         &why);
        if (r == -EBADMSG)
                return sd_bus_error_setf(error, BUS_ERROR_INVALID_CONFIG,
                                         "Cannot save the default privacy tier: %s/settings.json was left untouched, "
                                         "because %s.", ch->context->state_dir, strna(why));
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Failed to save the default privacy tier in %s/settings.json: %m",
                                               ch->context->state_dir);
        ch->default_privacy = p;
        log_info("Default privacy tier set to %s.", chat_privacy_to_string(p));
        (void) sd_bus_emit_properties_changed(bus, OBJECT_PATH, IFACE_CHAT, "DefaultPrivacy", NULL);
        return 0;
}

const sd_bus_vtable chat_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("ActiveRequests", "u", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_WRITABLE_PROPERTY("DefaultPrivacy", "s", property_get, property_set_default_privacy, 0,
                                 SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE | SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Start", SD_BUS_ARGS("s", model, "a(ss)", messages, "a{sv}", options),
                                SD_BUS_RESULT("o", request), method_start, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Complete", SD_BUS_ARGS("s", model, "a(ss)", messages, "a{sv}", options),
                                SD_BUS_RESULT("s", text, "a{sv}", info), method_complete, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/* ---- lifetime ---------------------------------------------------------- */

/* The event loop is ending (SIGTERM): tell every caller before sd-bus's own
 * exit handler flushes and closes the connection. */
static int on_event_exit(sd_event_source *s, void *userdata) {
        Chat *ch = userdata;

        for (Request *req = ch->active; req; req = next_of(req))
                request_notify_shutdown(req);
        return 0;
}

int chat_new(Context *c, Chat **ret) {
        Chat *ch;
        int r;

        ch = calloc(1, sizeof(Chat));
        if (!ch)
                return -ENOMEM;
        ch->context = c;
        ch->next_id = 1;
        chat_size_limits(ch);
        chat_load_settings(ch);
        /* For tests: shorter linger and backoff than the documented ones. */
        ch->linger_usec = getenv_msec("BANKR_LLMD_REQUEST_LINGER_MS", CHAT_LINGER_USEC_DEFAULT, 0, 24 * 3600 * 1000);
        ch->backoff_base_usec = getenv_msec("BANKR_LLMD_RETRY_BASE_MS", RETRY_BACKOFF_BASE_USEC_DEFAULT, 0, 24 * 3600 * 1000);

        /* Installed before the name is taken, so no caller can leave unseen. */
        r = sd_bus_match_signal_async(c->bus, &ch->owner_match, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                      "org.freedesktop.DBus", "NameOwnerChanged", on_name_owner_changed, NULL, ch);
        if (r < 0) {
                free(ch);
                return log_error_errno(r, "Failed to watch for clients leaving the bus: %m");
        }
        r = sd_event_add_exit(c->event, &ch->exit_source, on_event_exit, ch);
        if (r >= 0)
                r = sd_event_source_set_priority(ch->exit_source, SD_EVENT_PRIORITY_IMPORTANT);
        if (r < 0) {
                chat_free(ch);
                return log_error_errno(r, "Failed to set up the shutdown handler: %m");
        }
        *ret = ch;
        return 0;
}

Chat *chat_free(Chat *ch) {
        Request *req;

        if (!ch)
                return NULL;
        /* Tell callers, then free everything (running transfers are cut). */
        for (req = ch->active; req; req = next_of(req))
                request_notify_shutdown(req);
        while ((req = ch->active)) {
                list_remove(&ch->active, &ch->active_tail, req);
                request_free(req);
        }
        while ((req = ch->ended)) {
                list_remove(&ch->ended, &ch->ended_tail, req);
                request_free(req);
        }
        sd_bus_slot_unref(ch->owner_match);
        sd_event_source_disable_unref(ch->exit_source);
        free(ch);
        return NULL;
}

