/* SPDX-License-Identifier: MIT */
/* The model records and the catalog: named model-list.h from now on (the
 * service has its own models.h, for its Models interface). */
#pragma once

#include "models.h"
