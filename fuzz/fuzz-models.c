/* SPDX-License-Identifier: MIT */
/*
 * Gateway model lists and URLs. Invariants: a parsed list writes out and
 * parses back to an equal list; a normalised URL normalises to itself and is
 * never plain http to a non-loopback host.
 */
#include <string.h>

#include "fuzz.h"
#include "model-list.h"
#include "url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ModelList *l = NULL, *l2 = NULL;
        char *text, *json = NULL, *err = NULL, *url = NULL, *url2 = NULL;

        if (size > 512 * 1024)
                return 0;
        text = malloc(size + 1);
        FUZZ_CHECK(text);
        memcpy(text, data, size);
        text[size] = 0;

        int r = model_list_from_gateway_json(text, size, NULL, &l, &err);
        FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -ENOMEM);
        if (r == -EBADMSG)
                FUZZ_CHECK(err);
        if (r == 0) {
                FUZZ_CHECK(model_list_to_json(l, &json) == 0);
                char *err2 = NULL;
                FUZZ_CHECK(model_list_from_gateway_json(json, strlen(json), NULL, &l2, &err2) == 0);
                FUZZ_CHECK(model_list_equal(l, l2));
                for (size_t i = 0; i < l->n; i++)
                        FUZZ_CHECK(model_list_find(l, l->models[i].id) == &l->models[i] ||
                                   strcmp(model_list_find(l, l->models[i].id)->id, l->models[i].id) == 0);
                char **close = model_list_closest(l, text, 5);
                strv_free(close);
                free(err2);
        }
        model_list_free(l);
        model_list_free(l2);
        free(json);
        free(err);
        err = NULL;

        /* The first line as a URL. */
        char *nl = strchr(text, '\n');
        if (nl)
                *nl = 0;
        r = url_normalize(text, &url, &err);
        FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENOMEM);
        if (r == -EINVAL)
                FUZZ_CHECK(err && !url);
        if (r == 0) {
                char *err2 = NULL;
                FUZZ_CHECK(url_normalize(url, &url2, &err2) == 0);
                FUZZ_CHECK(strcmp(url, url2) == 0);
                FUZZ_CHECK(strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0);
                free(err2);
        }
        free(url);
        free(url2);
        free(err);
        free(text);
        return 0;
}
