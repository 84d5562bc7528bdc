/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "bus-util.h"
#include "util.h"

int bus_append_dict_strv(sd_bus_message *m, const char *key, char **strv) {
        int r;

        r = sd_bus_message_open_container(m, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", key);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "as");
        if (r >= 0)
                r = sd_bus_message_append_strv(m, strv);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

int bus_dict_walk(sd_bus_message *m, bus_dict_entry_func_t f, void *userdata) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key;

                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                r = f(m, key, userdata);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

int bus_read_integer(sd_bus_message *m, char type, int64_t *ret) {
        union {
                uint8_t y;
                int16_t n;
                uint16_t q;
                int32_t i;
                uint32_t u;
                int64_t x;
                uint64_t t;
        } v;
        int r;

        if (type == 0 || !strchr(BUS_INTEGER_TYPES, type))
                return -EINVAL;
        r = sd_bus_message_read_basic(m, type, &v);
        if (r < 0)
                return r;
        if (r == 0) /* at the end of a container: no value */
                return -ENXIO;
        switch (type) {
        case 'y': *ret = v.y; break;
        case 'n': *ret = v.n; break;
        case 'q': *ret = v.q; break;
        case 'i': *ret = v.i; break;
        case 'u': *ret = v.u; break;
        case 'x': *ret = v.x; break;
        default: *ret = v.t > (uint64_t) INT64_MAX ? INT64_MAX : (int64_t) v.t; break;
        }
        return 0;
}

typedef struct OptionsWalk {
        bus_option_func_t f;
        void *userdata;
        sd_bus_error *error;
        char **seen;
} OptionsWalk;

static int options_entry(sd_bus_message *m, const char *key, void *userdata) {
        OptionsWalk *w = userdata;
        const char *contents;
        int r;

        if (strv_contains(w->seen, key))
                return sd_bus_error_setf(w->error, SD_BUS_ERROR_INVALID_ARGS, "Option %s is given twice.", key);
        if (strv_extend(&w->seen, key) < 0)
                return -ENOMEM;
        r = sd_bus_message_peek_type(m, NULL, &contents);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(m, 'v', contents);
        if (r < 0)
                return r;
        r = w->f(m, key, contents, w->userdata, w->error);
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

int bus_read_options(sd_bus_message *m, bus_option_func_t f, void *userdata, sd_bus_error *error) {
        OptionsWalk w = { .f = f, .userdata = userdata, .error = error };
        int r;

        r = bus_dict_walk(m, options_entry, &w);
        strv_free(w.seen);
        return r;
}

int bus_option_read_integer(sd_bus_message *m, const char *contents, const char *name, int64_t lo, int64_t hi,
                            int64_t *ret, sd_bus_error *error) {
        int64_t value;
        int r;

        if (strlen(contents) != 1 || !strchr(BUS_INTEGER_TYPES, contents[0]))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Option %s must be an integer (type u), not of type %s.", name, contents);
        r = bus_read_integer(m, contents[0], &value);
        if (r < 0)
                return r;
        if (value < lo || value > hi)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Option %s must be between %" PRIi64 " and %" PRIi64 ", not %" PRIi64 ".",
                                         name, lo, hi, value);
        *ret = value;
        return 0;
}

int bus_option_read_string(sd_bus_message *m, const char *contents, const char *name, const char **ret,
                           sd_bus_error *error) {
        if (strcmp(contents, "s") != 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Option %s must be a string (type s), not of type %s.", name, contents);
        return sd_bus_message_read_basic(m, 's', ret);
}
