/* SPDX-License-Identifier: MIT */
/*
 * bankr-llm image: one Images.Generate call; the sealed memfds it returns
 * are copied into the file(s) named by -o. Ctrl-C ends the process, and the
 * service cancels the generation when we leave the bus.
 */
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <unistd.h>

#include "cli.h"
#include "image-type.h"

/* A generation may take a few minutes; the service has its own timeout
 * (timeout_s), the call waits a little longer than the longest. */
#define IMAGE_CALL_TIMEOUT_USEC ((600 + 60) * USEC_PER_SEC)

/* out.png and the i-th of n images: out.png for one, else out-1.png, … */
static char *output_name(const char *out, size_t i, size_t n) {
        const char *slash = strrchr(out, '/'), *dot = strrchr(out, '.');
        char *s;

        if (n <= 1)
                return strdup(out);
        if (!dot || (slash && dot < slash) || dot == (slash ? slash + 1 : out))
                return asprintf(&s, "%s-%zu", out, i + 1) < 0 ? NULL : s;
        return asprintf(&s, "%.*s-%zu%s", (int) (dot - out), out, i + 1, dot) < 0 ? NULL : s;
}

static void help(void) {
        printf("bankr-llm image [OPTIONS] -o FILE PROMPT...\n\n"
               "Generate an image through the Bankr LLM Gateway (POST /v1/images/generations)\n"
               "and write it to FILE. The prompt is the arguments joined by spaces. With -n 2\n"
               "or more, the images go to FILE-1, FILE-2, … (before the extension).\n\n"
               "  -o --output FILE        where to write the image (required)\n"
               "  -m --model MODEL        image model (default: the first model of the list\n"
               "                          whose output includes image, else gpt-image-2)\n"
               "  -n --count N            how many images (1..4, default 1)\n"
               "     --size SIZE          e.g. 1024x1024 (passed to the gateway)\n"
               "     --quality QUALITY    e.g. low, medium, high (passed to the gateway)\n"
               "     --privacy TIER       standard, zdr or private; the service's DefaultPrivacy\n"
               "                          may raise it\n"
               "     --timeout SECONDS    give up after this long (1..600, default 180)\n"
               "  -j --json[=FORMAT]      print the info (model, cost, files) as JSON\n"
               "  -h --help               show this help\n\n"
               "Generation does not stream; Ctrl-C cancels it on the service. Exit codes are\n"
               "those of \"bankr-llm --help\" (6: no credits or budget, 8: gateway, 9: model).\n");
}

int verb_image(int argc, char *argv[]) {
        enum { ARG_SIZE = 0x100, ARG_QUALITY, ARG_PRIVACY, ARG_TIMEOUT };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "output", required_argument, NULL, 'o' },
                { "model", required_argument, NULL, 'm' },
                { "count", required_argument, NULL, 'n' },
                { "size", required_argument, NULL, ARG_SIZE },
                { "quality", required_argument, NULL, ARG_QUALITY },
                { "privacy", required_argument, NULL, ARG_PRIVACY },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "json", optional_argument, NULL, 'j' },
                {}
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(json_object_putp) json_object *info = NULL;
        _cleanup_free_ char *prompt = NULL;
        const char *out = NULL, *model = "", *size = NULL, *quality = NULL, *privacy = NULL;
        unsigned long count = 1, timeout = 0;
        json_object *files;
        bool json = false;
        size_t len = 0, n = 0;
        char *end;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "ho:m:n:j", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_OK;
                case 'o':
                        out = optarg;
                        break;
                case 'm':
                        model = optarg;
                        break;
                case 'n':
                        errno = 0;
                        count = strtoul(optarg, &end, 10);
                        if (errno || *end || !optarg[0] || optarg[0] == '-' || count < 1 || count > 4)
                                return cli_usage("--count must be a number from 1 to 4, not \"%s\".", optarg);
                        break;
                case ARG_SIZE:
                        size = optarg;
                        break;
                case ARG_QUALITY:
                        quality = optarg;
                        break;
                case ARG_PRIVACY:
                        if (!streq(optarg, "standard") && !streq(optarg, "zdr") && !streq(optarg, "private"))
                                return cli_usage("--privacy must be standard, zdr or private, not \"%s\".", optarg);
                        privacy = optarg;
                        break;
                case ARG_TIMEOUT:
                        errno = 0;
                        timeout = strtoul(optarg, &end, 10);
                        if (errno || *end || !optarg[0] || optarg[0] == '-' || timeout < 1 || timeout > 600)
                                return cli_usage("--timeout must be a number of seconds from 1 to 600, not \"%s\".",
                                                 optarg);
                        break;
                CLI_CASE_JSON(json);
                default:
                        return -EXIT_USAGE;
                }
        if (isempty(out))
                return cli_usage("image needs -o FILE: where to write the image.");
        if (optind >= argc)
                return cli_usage("image needs a prompt: say what to draw.");
        for (int i = optind; i < argc; i++)
                len += strlen(argv[i]) + 1;
        prompt = malloc(len + 1);
        if (!prompt)
                return cli_fail(EXIT_FAIL, "Out of memory.");
        prompt[0] = 0;
        for (int i = optind; i < argc; i++) {
                if (i > optind)
                        strcat(prompt, " ");
                strcat(prompt, argv[i]);
        }

        r = cli_bus(&bus);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_call(bus, &m, BUS_NAME, OBJECT_PATH, IFACE("Images"), "Generate");
        if (r >= 0)
                r = sd_bus_message_append(m, "ss", model, prompt);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && count > 1)
                r = sd_bus_message_append(m, "{sv}", "n", "u", (uint32_t) count);
        if (r >= 0 && size)
                r = sd_bus_message_append(m, "{sv}", "size", "s", size);
        if (r >= 0 && quality)
                r = sd_bus_message_append(m, "{sv}", "quality", "s", quality);
        if (r >= 0 && privacy)
                r = sd_bus_message_append(m, "{sv}", "privacy", "s", privacy);
        if (r >= 0 && timeout > 0)
                r = sd_bus_message_append(m, "{sv}", "timeout_s", "u", (uint32_t) timeout);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return cli_fail_bus("generate the image", NULL, r);
        r = sd_bus_call(bus, m, IMAGE_CALL_TIMEOUT_USEC, &error, &reply);
        if (r < 0)
                return cli_fail_bus("generate the image", &error, r);

        files = json_object_new_array();
        if (!files)
                return cli_fail(EXIT_FAIL, "Out of memory.");
        r = sd_bus_message_enter_container(reply, 'a', "h");
        for (int fd; r >= 0 && (r = sd_bus_message_read(reply, "h", &fd)) > 0; n++) {
                _cleanup_free_ void *data = NULL;
                _cleanup_free_ char *name = output_name(out, n, count);
                size_t sz = 0;

                if (!name) {
                        json_object_put(files);
                        return cli_fail(EXIT_FAIL, "Out of memory.");
                }
                r = pread_full(fd, 65536, IMAGE_SIZE_MAX, &data, &sz);
                if (r < 0) {
                        json_object_put(files);
                        return cli_fail(EXIT_FAIL, "Failed to read image %zu from bankr-llmd: %s", n + 1, strerror(-r));
                }
                r = write_file_atomic(name, data, sz, 0644);
                if (r < 0) {
                        json_object_put(files);
                        return cli_fail(EXIT_FAIL, "Failed to write %s: %s", name, strerror(-r));
                }
                json_object_array_add(files, json_object_new_string(name));
                if (!json)
                        printf("%s (%zu bytes, %s)\n", name, sz, strna(image_type_detect(data, sz)));
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        if (r >= 0)
                r = cli_dict_to_json(reply, &info);
        if (r < 0) {
                json_object_put(files);
                return cli_fail(EXIT_FAIL, "Failed to read the answer of bankr-llmd: %s", strerror(-r));
        }
        if (cli_json_bool(info, "deprecated", false)) {
                _cleanup_free_ char *b1 = NULL, *b2 = NULL;
                const char *repl = cli_json_str(info, "replacement");
                fprintf(stderr, "Warning: the gateway says the model %s is deprecated%s%s%s.\n",
                        cli_term_safe(stderr, strempty(cli_json_str(info, "model")), &b1), isempty(repl) ? "" : "; use ",
                        isempty(repl) ? "" : cli_term_safe(stderr, repl, &b2), isempty(repl) ? "" : " instead");
        }
        if (json) {
                json_object_object_add(info, "files", files);
                cli_print_json(info);
        } else {
                json_object_put(files);
                _cleanup_free_ char *b = NULL;
                fprintf(stderr, "Model: %s, cost: $%.4f\n", cli_term_safe(stderr, strempty(cli_json_str(info, "model")), &b),
                        cli_json_double(info, "cost_usd", 0));
        }
        return n > 0 ? EXIT_OK : cli_fail(EXIT_GATEWAY, "The gateway returned no image.");
}
