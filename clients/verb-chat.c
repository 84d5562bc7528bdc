/* SPDX-License-Identifier: MIT */
/*
 * bankr-llm chat: one streamed answer (prompt from the arguments or stdin),
 * or an interactive conversation on a terminal. The request's signals are
 * unicast to us; the match goes in before Start, and signals that might
 * arrive before Start's reply are held until we know our request's path.
 */
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <math.h>
#include <signal.h>
#include <systemd/sd-event.h>

#include "bankr-config.h"
#include "buf.h"
#include "cli.h"
#include "term-sanitize.h"
#include "utf8.h"

/* Used when neither -m nor defaultModel in ~/.bankr/config.json names one:
 * fast, cheap, and served by the gateway for every account. */
#define CHAT_DEFAULT_MODEL "claude-haiku-4.5"

static char *arg_model = NULL;
static char *arg_system = NULL;
static uint32_t arg_max_tokens = 0;
static double arg_temperature = NAN;
static const char *arg_api = NULL;
static char **arg_fallback = NULL;
static bool arg_usage = false;
static bool arg_json = false;
static bool arg_raw = false;
static const char *arg_privacy = NULL;
static char **arg_attach = NULL; /* files, sent as fds with the first user message */
static int *attach_fds = NULL;
static size_t n_attach_fds = 0;

#define CHAT_ATTACH_MAX 16U

typedef struct History {
        char **role;
        char **content;
        size_t n, n_role_allocated, n_content_allocated;
} History;

static void history_done(History *h) {
        for (size_t i = 0; i < h->n; i++) {
                free(h->role[i]);
                free(h->content[i]);
        }
        free(h->role);
        free(h->content);
        *h = (History) {};
}

static int history_add(History *h, const char *role, const char *content, size_t len) {
        if (!GREEDY_REALLOC(h->role, h->n_role_allocated, h->n + 1) ||
            !GREEDY_REALLOC(h->content, h->n_content_allocated, h->n + 1))
                return -ENOMEM;
        h->role[h->n] = strdup(role);
        h->content[h->n] = strndup(content, len);
        if (!h->role[h->n] || !h->content[h->n]) {
                free(h->role[h->n]);
                free(h->content[h->n]);
                return -ENOMEM;
        }
        h->n++;
        return 0;
}

static void history_pop(History *h) {
        if (h->n == 0)
                return;
        h->n--;
        free(h->role[h->n]);
        free(h->content[h->n]);
}

/* One request from Start to its end. */
typedef struct Run {
        sd_bus *bus;
        sd_event *event;
        char *path;        /* ours, once Start answered */
        char *service;     /* the unique name that answered Start */
        sd_bus_message **early; /* signals that came before Start's reply */
        size_t n_early, n_early_allocated;
        bool stream;       /* write deltas to stdout */
        bool sanitize;     /* …through the terminal filter */
        TermSanitizer term;
        Buf safe;          /* the filter's output buffer */
        Buf text;          /* every delta so far */
        json_object *info;
        char *error_name, *error_message;
        bool partial;
        bool done, interrupted, cancel_sent;
        int exit_code; /* 0 or -EXIT_* */
        sd_event_source *give_up;
        sd_bus_slot *cancel_slot;
} Run;

static void run_done(Run *run) {
        sd_bus_slot_unref(run->cancel_slot);
        for (size_t i = 0; i < run->n_early; i++)
                sd_bus_message_unref(run->early[i]);
        free(run->early);
        free(run->path);
        free(run->service);
        buf_done(&run->text);
        buf_done(&run->safe);
        json_object_put(run->info);
        free(run->error_name);
        free(run->error_message);
        sd_event_source_disable_unref(run->give_up);
}

static void run_finish(Run *run, int code) {
        if (run->done)
                return;
        run->done = true;
        run->exit_code = code;
}

static int on_delta(Run *run, sd_bus_message *m) {
        const char *s;
        size_t n;
        int r;

        r = sd_bus_message_read(m, "s", &s);
        if (r < 0)
                return r;
        n = strlen(s);
        r = buf_append(&run->text, s, n);
        if (r < 0)
                return r;
        if (run->stream && !run->interrupted) {
                /* Exactly as it came: no reflow, and visible at once. */
                const char *out = s;
                size_t k = n;

                if (run->sanitize) {
                        /* On a terminal: nothing it would execute. */
                        if (!buf_reserve(&run->safe, TERM_SANITIZE_OUT_MAX(n)))
                                return -ENOMEM;
                        k = term_sanitize(&run->term, s, n, run->safe.p);
                        out = run->safe.p;
                }
                (void) fwrite(out, 1, k, stdout);
                if (cli_flush_stdout() < 0)
                        /* Reported (except EPIPE); leaving the bus cancels
                         * the request on the service. */
                        run_finish(run, -EXIT_FAIL);
        }
        return 0;
}

static int process_signal(Run *run, sd_bus_message *m) {
        const char *member = sd_bus_message_get_member(m);
        int r;

        /* Only our request, and only from the service that started it. */
        if (!streq_ptr(sd_bus_message_get_path(m), run->path) ||
            !streq_ptr(sd_bus_message_get_sender(m), run->service) || run->done)
                return 0;

        if (streq_ptr(member, "Delta"))
                r = on_delta(run, m);
        else if (streq_ptr(member, "Finished")) {
                r = cli_dict_to_json(m, &run->info); /* info, with the same keys */
                if (r >= 0)
                        run_finish(run, 0);
        } else if (streq_ptr(member, "Failed")) {
                const char *name, *message;
                int partial;
                r = sd_bus_message_read(m, "ssb", &name, &message, &partial);
                if (r >= 0) {
                        run->error_name = strdup(name);
                        run->error_message = strdup(message);
                        run->partial = partial;
                        run_finish(run, run->interrupted ? -EXIT_INTERRUPTED : -cli_exit_for_error(name));
                }
        } else
                r = 0;
        if (r < 0) {
                fprintf(stderr, "Failed to read a signal from bankr-llmd: %s\n", strerror(-r));
                run_finish(run, -EXIT_FAIL);
        }
        return 0;
}

static int on_signal(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Run *run = userdata;

        if (!run->path) {
                /* Not knowing our path yet: keep it for when we do. */
                if (!GREEDY_REALLOC(run->early, run->n_early_allocated, run->n_early + 1))
                        return -ENOMEM;
                run->early[run->n_early++] = sd_bus_message_ref(m);
                return 0;
        }
        return process_signal(run, m);
}

static int on_cancel_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Run *run = userdata;
        run_finish(run, -EXIT_INTERRUPTED);
        return 0;
}

static int on_give_up(sd_event_source *s, uint64_t usec, void *userdata) {
        run_finish(userdata, -EXIT_INTERRUPTED);
        return 0;
}

static void run_cancel(Run *run) {
        int r;

        if (run->cancel_sent || !run->path)
                return;
        run->cancel_sent = true;
        r = sd_bus_call_method_async(run->bus, &run->cancel_slot, run->service, run->path, IFACE("Request"), "Cancel",
                                     on_cancel_reply, run, NULL);
        if (r < 0)
                run_finish(run, -EXIT_INTERRUPTED); /* leaving the bus cancels it too */
        /* Don't hang on an unresponsive service. */
        (void) sd_event_add_time_relative(run->event, &run->give_up, CLOCK_MONOTONIC, 2 * USEC_PER_SEC, 0, on_give_up,
                                          run);
}

static int on_sigint(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Run *run = userdata;

        if (run->interrupted) /* a second Ctrl-C: stop waiting */
                run_finish(run, -EXIT_INTERRUPTED);
        run->interrupted = true;
        run_cancel(run);
        return 0;
}

static int on_start_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Run *run = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        const char *path;
        int r;

        if (e) {
                run->exit_code = cli_fail_bus("start the chat", e, -EIO);
                run->done = true;
                return 0;
        }
        r = sd_bus_message_read(m, "o", &path);
        if (r < 0 || !(run->path = strdup(path)) || !(run->service = strdup(strempty(sd_bus_message_get_sender(m))))) {
                fprintf(stderr, "Failed to start the chat: cannot read the answer of bankr-llmd.\n");
                run_finish(run, -EXIT_FAIL);
                return 0;
        }
        /* What came early, in order; then live signals. */
        for (size_t i = 0; i < run->n_early; i++) {
                (void) process_signal(run, run->early[i]);
                run->early[i] = sd_bus_message_unref(run->early[i]);
        }
        run->n_early = 0;
        if (run->interrupted)
                run_cancel(run);
        return 0;
}

static int append_options(sd_bus_message *m) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && arg_system)
                r = sd_bus_message_append(m, "{sv}", "system", "s", arg_system);
        if (r >= 0 && arg_max_tokens > 0)
                r = sd_bus_message_append(m, "{sv}", "max_tokens", "u", arg_max_tokens);
        if (r >= 0 && !isnan(arg_temperature))
                r = sd_bus_message_append(m, "{sv}", "temperature", "d", arg_temperature);
        if (r >= 0 && arg_api)
                r = sd_bus_message_append(m, "{sv}", "api", "s", arg_api);
        if (r >= 0 && arg_fallback)
                r = bus_append_dict_strv(m, "fallback_models", arg_fallback);
        if (r >= 0 && arg_privacy)
                r = sd_bus_message_append(m, "{sv}", "privacy", "s", arg_privacy);
        if (r >= 0 && n_attach_fds > 0) {
                /* The first message is the first question: the images go
                 * with it (and so stay in the conversation). */
                r = sd_bus_message_open_container(m, 'e', "sv");
                if (r >= 0)
                        r = sd_bus_message_append(m, "s", "images");
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'v', "a(uh)");
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'a', "(uh)");
                for (size_t i = 0; r >= 0 && i < n_attach_fds; i++)
                        r = sd_bus_message_append(m, "(uh)", (uint32_t) 0, attach_fds[i]);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

static void print_usage(json_object *info) {
        int64_t attempts = cli_json_int(info, "attempts", 0);
        _cleanup_free_ char *buf = NULL;
        const char *model = cli_term_safe(stderr, strempty(cli_json_str(info, "model")), &buf);

        fprintf(stderr,
                "Model:   %s (stop: %s)\n"
                "Tokens:  %" PRIi64 " input, %" PRIi64 " output, %" PRIi64 " cache read, %" PRIi64 " cache write\n"
                "Cost:    $%.6f\n"
                "Latency: first token %.0f ms, total %.0f ms (%" PRIi64 " attempt%s)\n",
                model, strempty(cli_json_str(info, "stop_reason")),
                cli_json_int(info, "input_tokens", 0), cli_json_int(info, "output_tokens", 0),
                cli_json_int(info, "cache_read_tokens", 0), cli_json_int(info, "cache_write_tokens", 0),
                cli_json_double(info, "cost_usd", 0), cli_json_double(info, "latency_first_ms", 0),
                cli_json_double(info, "latency_total_ms", 0), attempts, attempts == 1 ? "" : "s");
}

static void print_json(Run *run) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "text", json_object_new_string_len(strempty(run->text.p), (int) run->text.n));
        if (run->info)
                json_object_object_add(o, "info", json_object_get(run->info));
        if (run->error_name) {
                json_object *e = json_object_new_object();
                json_object_object_add(e, "name", json_object_new_string(run->error_name));
                json_object_object_add(e, "message", json_object_new_string(strempty(run->error_message)));
                json_object_object_add(e, "partial", json_object_new_boolean(run->partial));
                json_object_object_add(o, "error", e);
        }
        cli_print_json(o);
        json_object_put(o);
}

/* Runs one request for the conversation in h; the answer goes to *ret_text
 * (when not NULL) on success. Returns an exit code. */
static int chat_once(sd_bus *bus, sd_event *event, const char *model, const History *h, char **ret_text) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *match = NULL;
        _cleanup_(sd_event_source_unrefp) sd_event_source *sigint = NULL;
        _cleanup_(run_done) Run run = {
                .bus = bus,
                .event = event,
                .stream = !arg_json,
        };
        /* Declared after run: goes first, so no callback can see a dead run. */
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *start_slot = NULL;
        bool tty = isatty(STDOUT_FILENO);
        int r;

        run.sanitize = run.stream && tty && !arg_raw;

        /* Before Start: the service's signals to us cannot be missed. */
        r = sd_bus_match_signal(bus, &match, NULL, NULL, IFACE("Request"), NULL, on_signal, &run);
        if (r < 0)
                return cli_fail_bus("subscribe to the answer", NULL, r);
        r = sd_event_add_signal(event, &sigint, SIGINT, on_sigint, &run);
        if (r < 0)
                return cli_fail_bus("handle Ctrl-C", NULL, r);

        r = sd_bus_message_new_method_call(bus, &m, BUS_NAME, OBJECT_PATH, IFACE("Chat"), "Start");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", model);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(ss)");
        for (size_t i = 0; r >= 0 && i < h->n; i++)
                r = sd_bus_message_append(m, "(ss)", h->role[i], h->content[i]);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = append_options(m);
        if (r >= 0)
                r = sd_bus_call_async(bus, &start_slot, m, on_start_reply, &run, 60 * USEC_PER_SEC);
        if (r < 0)
                return cli_fail_bus("start the chat", NULL, r);

        while (!run.done) {
                r = sd_event_run(event, UINT64_MAX);
                if (r < 0) {
                        fprintf(stderr, "Failed to wait for the answer: %s\n", strerror(-r));
                        return -EXIT_FAIL;
                }
        }
        if (run.sanitize) {
                /* A sequence cut off at the end shows as U+FFFD. */
                char tail[TERM_SANITIZE_FINISH_MAX];
                size_t k = term_sanitize_finish(&run.term, tail);
                if (k > 0)
                        (void) fwrite(tail, 1, k, stdout);
        }
        if (run.interrupted) {
                if (run.stream && tty && run.text.n > 0)
                        fputc('\n', stdout);
                (void) cli_flush_stdout();
                return -EXIT_INTERRUPTED;
        }

        if (arg_json && run.path)
                print_json(&run);
        else if (run.stream && tty && run.text.n > 0 && run.text.p[run.text.n - 1] != '\n') {
                /* Leave the terminal on a fresh line; pipes get the text exactly. */
                fputc('\n', stdout);
                (void) cli_flush_stdout();
        }

        if (run.error_name) {
                _cleanup_free_ char *buf = NULL;
                fprintf(stderr, "Failed to chat%s: %s\n", run.partial ? " (the answer above is incomplete)" : "",
                        cli_term_safe(stderr, strempty(run.error_message), &buf));
                return run.exit_code;
        }
        if (run.exit_code < 0)
                return run.exit_code;
        if (run.info && cli_json_bool(run.info, "deprecated", false)) {
                _cleanup_free_ char *b1 = NULL, *b2 = NULL;
                const char *repl = cli_json_str(run.info, "replacement");
                fprintf(stderr, "Warning: the gateway says the model %s is deprecated%s%s%s.\n",
                        cli_term_safe(stderr, model, &b1), isempty(repl) ? "" : "; use ",
                        isempty(repl) ? "" : cli_term_safe(stderr, repl, &b2), isempty(repl) ? "" : " instead");
        }
        if (arg_usage && run.info)
                print_usage(run.info);
        if (ret_text) {
                *ret_text = NULL;
                if (buf_steal(&run.text, ret_text) < 0)
                        return cli_fail(EXIT_FAIL, "Out of memory.");
        }
        return 0;
}

/* defaultModel from ~/.bankr/config.json ($BANKR_CONFIG), if it names one. */
static char *config_default_model(void) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        json_object *o, *v;
        char *ret = NULL;

        if (bankr_config_path(&path) < 0 || read_full_file(path, BANKR_CONFIG_MAX_SIZE, &text, NULL) < 0)
                return NULL;
        o = json_tokener_parse(text);
        if (o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, "defaultModel", &v) &&
            json_object_is_type(v, json_type_string) && !isempty(json_object_get_string(v)))
                ret = strdup(json_object_get_string(v));
        json_object_put(o);
        return ret;
}

static int read_stdin(char **ret, size_t *ret_len) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, alloc = 0;

        for (;;) {
                if (len + 4096 + 1 > alloc) {
                        size_t a = MAX(alloc * 2, (size_t) 65536);
                        char *p = realloc(buf, a);
                        if (!p)
                                return -ENOMEM;
                        buf = p;
                        alloc = a;
                }
                size_t n = fread(buf + len, 1, alloc - len - 1, stdin);
                len += n;
                if (len > CHAT_TEXT_LIMIT)
                        return -EFBIG;
                if (n == 0) {
                        if (ferror(stdin))
                                return -errno ?: -EIO;
                        break;
                }
        }
        buf[len] = 0;
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

static int check_prompt(const char *s, size_t len) {
        if (len == 0)
                return cli_usage("The prompt is empty. Give it as arguments or on stdin.");
        if (len > CHAT_TEXT_LIMIT)
                return cli_usage("The prompt is larger than 4 MiB, the limit for one request.");
        if (memchr(s, 0, len) || !utf8_is_valid_n(s, len))
                return cli_usage("The prompt is not valid UTF-8 text.");
        return 0;
}

static int interactive(sd_bus *bus, sd_event *event, const char *model) {
        _cleanup_(history_done) History h = {};
        _cleanup_free_ char *line = NULL;
        sigset_t mask;
        size_t cap = 0;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        fprintf(stderr, "Chatting with %s. An empty line or Ctrl-D ends the conversation.\n", model);
        for (;;) {
                _cleanup_free_ char *answer = NULL;
                ssize_t n;

                fputs("> ", stdout);
                (void) cli_flush_stdout();
                /* At the prompt Ctrl-C simply ends the program. */
                sigprocmask(SIG_UNBLOCK, &mask, NULL);
                n = getline(&line, &cap, stdin);
                sigprocmask(SIG_BLOCK, &mask, NULL);
                if (n < 0) {
                        fputc('\n', stdout);
                        return 0;
                }
                if (n > 0 && line[n - 1] == '\n')
                        line[--n] = 0;
                if (n == 0)
                        return 0;
                r = check_prompt(line, (size_t) n);
                if (r != 0)
                        continue;
                if (history_add(&h, "user", line, (size_t) n) < 0)
                        return cli_fail(EXIT_FAIL, "Out of memory.");

                r = chat_once(bus, event, model, &h, &answer);
                if (r == -EXIT_INTERRUPTED || r == -EXIT_NO_SERVICE)
                        return r;
                if (r < 0) {
                        /* Forget the question that got no answer; go on. */
                        history_pop(&h);
                        continue;
                }
                if (history_add(&h, "assistant", answer, strlen(answer)) < 0)
                        return cli_fail(EXIT_FAIL, "Out of memory.");
        }
}

static void help(void) {
        printf("bankr-llm chat [OPTIONS] [PROMPT...]\n\n"
               "Ask a model through the Bankr LLM Gateway and stream the answer to stdout as\n"
               "it arrives (filtered on a terminal, see below). The prompt is the arguments\n"
               "joined by spaces; without arguments (or with \"-\") it is read from stdin.\n"
               "When stdin is a terminal and no prompt is given, runs a conversation: each\n"
               "line is a question, the history is kept for the session, and an empty line\n"
               "or Ctrl-D ends it.\n\n"
               "  -m --model MODEL        model id (default: defaultModel in ~/.bankr/config.json,\n"
               "                          else " CHAT_DEFAULT_MODEL ")\n"
               "  -s --system TEXT        system prompt\n"
               "     --max-tokens N       most tokens to generate (1..1000000)\n"
               "     --temperature T      sampling temperature (0..2)\n"
               "     --api API            auto (default), openai or anthropic wire format\n"
               "     --fallback MODEL     try MODEL if the first fails before answering\n"
               "                          (repeatable, at most 4)\n"
               "     --privacy TIER       standard, zdr (zero data retention) or private (TEE\n"
               "                          compute); the service's DefaultPrivacy may raise it\n"
               "     --attach FILE        send a PNG, JPEG, GIF or WebP image with the first\n"
               "                          question (repeatable, at most 16, 20 MiB in all)\n"
               "     --usage              print tokens, cost and latency to stderr at the end\n"
               "  -j --json[=FORMAT]      print one JSON object (text, info) instead of streaming;\n"
               "                          FORMAT is short (one line), pretty (indented, the\n"
               "                          default) or off (stream)\n"
               "     --raw                write the answer to a terminal exactly as it came,\n"
               "                          control sequences included (see below)\n"
               "  -h --help               show this help\n\n"
               "On a terminal the answer is filtered, because a model can be led (by a prompt\n"
               "injection, say) to write escape sequences that the terminal would execute:\n"
               "set the clipboard (OSC 52), the window title, clear the screen. Control\n"
               "characters are shown in caret notation instead (ESC as ^[, so \"\\e[2J\" shows\n"
               "as ^[[2J; BEL ^G; CR ^M; DEL ^?), C1 controls as the ESC sequence they stand\n"
               "for (U+009B as ^[[) and invalid UTF-8 as U+FFFD; text, newlines, tabs and\n"
               "UTF-8 are kept. Written to a pipe or file, or with --json (JSON escapes\n"
               "them), the answer is exact; --raw makes it exact on a terminal too. Model\n"
               "names and gateway error messages on a terminal get the same filter.\n\n"
               "A model the gateway reports as deprecated gets a warning on stderr naming its\n"
               "replacement.\n\n"
               "Ctrl-C cancels the request on the service and exits with 130. Exit codes are\n"
               "those of \"bankr-llm --help\" (9: unknown model, 6: no credits, 8: gateway).\n");
}

static int parse_argv(int argc, char *argv[]) {
        enum { ARG_MAX_TOKENS = 0x100, ARG_TEMPERATURE, ARG_API, ARG_FALLBACK, ARG_USAGE, ARG_RAW, ARG_PRIVACY,
               ARG_ATTACH };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "model", required_argument, NULL, 'm' },
                { "system", required_argument, NULL, 's' },
                { "max-tokens", required_argument, NULL, ARG_MAX_TOKENS },
                { "temperature", required_argument, NULL, ARG_TEMPERATURE },
                { "api", required_argument, NULL, ARG_API },
                { "fallback", required_argument, NULL, ARG_FALLBACK },
                { "usage", no_argument, NULL, ARG_USAGE },
                { "json", optional_argument, NULL, 'j' },
                { "raw", no_argument, NULL, ARG_RAW },
                { "privacy", required_argument, NULL, ARG_PRIVACY },
                { "attach", required_argument, NULL, ARG_ATTACH },
                {}
        };
        char *end;
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hjm:s:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case 'm':
                        if (isempty(optarg))
                                return cli_usage("--model needs a model id.");
                        if (free_and_strdup(&arg_model, optarg) < 0)
                                return -EXIT_FAIL;
                        break;
                case 's':
                        if (free_and_strdup(&arg_system, optarg) < 0)
                                return -EXIT_FAIL;
                        break;
                case ARG_MAX_TOKENS: {
                        unsigned long v;
                        errno = 0;
                        v = strtoul(optarg, &end, 10);
                        if (errno || *end || !optarg[0] || optarg[0] == '-' || v < 1 || v > 1000000)
                                return cli_usage("--max-tokens must be a number between 1 and 1000000, not \"%s\".", optarg);
                        arg_max_tokens = (uint32_t) v;
                        break;
                }
                case ARG_TEMPERATURE:
                        errno = 0;
                        arg_temperature = strtod(optarg, &end);
                        if (errno || *end || !optarg[0] || !isfinite(arg_temperature) || arg_temperature < 0 ||
                            arg_temperature > 2)
                                return cli_usage("--temperature must be a number between 0 and 2, not \"%s\".", optarg);
                        break;
                case ARG_API:
                        if (!streq(optarg, "auto") && !streq(optarg, "openai") && !streq(optarg, "anthropic"))
                                return cli_usage("--api must be auto, openai or anthropic, not \"%s\".", optarg);
                        arg_api = optarg;
                        break;
                case ARG_FALLBACK:
                        if (isempty(optarg))
                                return cli_usage("--fallback needs a model id.");
                        if (strv_length(arg_fallback) >= 4)
                                return cli_usage("At most 4 --fallback models may be given.");
                        if (strv_extend(&arg_fallback, optarg) < 0)
                                return -EXIT_FAIL;
                        break;
                case ARG_USAGE:
                        arg_usage = true;
                        break;
                CLI_CASE_JSON(arg_json);
                case ARG_RAW:
                        arg_raw = true;
                        break;
                case ARG_PRIVACY:
                        if (!streq(optarg, "standard") && !streq(optarg, "zdr") && !streq(optarg, "private"))
                                return cli_usage("--privacy must be standard, zdr or private, not \"%s\".", optarg);
                        arg_privacy = optarg;
                        break;
                case ARG_ATTACH:
                        if (isempty(optarg))
                                return cli_usage("--attach needs a file.");
                        if (strv_length(arg_attach) >= CHAT_ATTACH_MAX)
                                return cli_usage("At most %u --attach files may be given.", CHAT_ATTACH_MAX);
                        if (strv_extend(&arg_attach, optarg) < 0)
                                return -EXIT_FAIL;
                        break;
                default:
                        return -EXIT_USAGE;
                }
        return 1;
}

int verb_chat(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(history_done) History h = {};
        _cleanup_free_ char *prompt = NULL, *model = NULL;
        size_t len = 0;
        sigset_t mask;
        bool use_stdin;
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                goto out;
        use_stdin = optind >= argc || (optind == argc - 1 && streq(argv[optind], "-"));

        model = arg_model ? strdup(arg_model) : config_default_model();
        if (!model)
                model = strdup(CHAT_DEFAULT_MODEL);
        if (!model) {
                r = cli_fail(EXIT_FAIL, "Out of memory.");
                goto out;
        }

        if (!use_stdin) {
                /* The arguments, joined by single spaces. */
                for (int i = optind; i < argc; i++)
                        len += strlen(argv[i]) + 1;
                prompt = malloc(len + 1);
                if (!prompt) {
                        r = cli_fail(EXIT_FAIL, "Out of memory.");
                        goto out;
                }
                prompt[0] = 0;
                for (int i = optind; i < argc; i++) {
                        if (i > optind)
                                strcat(prompt, " ");
                        strcat(prompt, argv[i]);
                }
                len = strlen(prompt);
        } else if (!isatty(STDIN_FILENO) || optind < argc) {
                r = read_stdin(&prompt, &len);
                if (r == -EFBIG) {
                        r = cli_usage("The prompt is larger than 4 MiB, the limit for one request.");
                        goto out;
                }
                if (r < 0) {
                        r = cli_fail(EXIT_FAIL, "Failed to read the prompt from stdin: %s", strerror(-r));
                        goto out;
                }
        }
        if (prompt) {
                r = check_prompt(prompt, len);
                if (r < 0)
                        goto out;
        }

        /* The images are opened here and passed as descriptors: the service
         * reads them (and checks them) itself. */
        if (arg_attach) {
                attach_fds = calloc(strv_length(arg_attach), sizeof(int));
                if (!attach_fds) {
                        r = cli_fail(EXIT_FAIL, "Out of memory.");
                        goto out;
                }
                for (char **f = arg_attach; *f; f++) {
                        int fd = open(*f, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                        if (fd < 0) {
                                r = cli_fail(EXIT_USAGE, "Cannot open %s to attach it: %s", *f, strerror(errno));
                                goto out;
                        }
                        attach_fds[n_attach_fds++] = fd;
                }
        }

        /* SIGINT is taken through the event loop from here on. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        (void) signal(SIGPIPE, SIG_IGN);

        r = cli_bus(&bus);
        if (r < 0)
                goto out;
        r = sd_event_new(&event);
        if (r >= 0)
                r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0) {
                r = cli_fail(EXIT_FAIL, "Failed to set up the event loop: %s", strerror(-r));
                goto out;
        }

        if (!prompt)
                r = interactive(bus, event, model);
        else if (history_add(&h, "user", prompt, len) < 0)
                r = cli_fail(EXIT_FAIL, "Out of memory.");
        else
                r = chat_once(bus, event, model, &h, NULL);
out:
        arg_model = mfree(arg_model);
        arg_system = mfree(arg_system);
        arg_fallback = strv_free(arg_fallback);
        arg_attach = strv_free(arg_attach);
        for (size_t i = 0; i < n_attach_fds; i++)
                close(attach_fds[i]);
        attach_fds = mfree(attach_fds);
        n_attach_fds = 0;
        arg_privacy = NULL;
        return r < 0 ? r : 0;
}
