/* SPDX-License-Identifier: MIT */
/* ctml: typed morphisms that compose, trained on interchangeable backends. */
#ifndef CTML_H
#define CTML_H

#include "ctml/version.h"
#include "ctml/status.h"
#include "ctml/object.h"
#include "ctml/param.h"
#include "ctml/generators.h"
#include "ctml/morphism.h"
#include "ctml/backend.h"
#include "ctml/trace.h"
#include "ctml/plan.h"
#include "ctml/train.h"
#include "ctml/collective.h"
#include "ctml/data.h"
#include "ctml/check.h"
#include "ctml/book.h"
#include "ctml/gpt.h"
#include "ctml/safetensors.h"
#include "ctml/text.h"
#include "ctml/decode.h"

#endif
