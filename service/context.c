/* SPDX-License-Identifier: MIT */
/*
 * The Context's events: the one place where a module's news reaches the
 * modules that react to it (see bankr-llmd.h). Modules never call each
 * other sideways; they call these, and these call the modules.
 */
#include "bankr-llmd.h"
#include "modules.h"

void context_key_changed(Context *c) {
        if (c->models)
                models_key_changed(c->models);
        if (c->credits)
                credits_key_changed(c->credits);
}
