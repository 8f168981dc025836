/* SPDX-License-Identifier: MIT */
/* Run-time loading of the libraries a device backend calls (cuBLAS, the
 * OpenCL ICD loader): libctml has no link-time dependency on them, and a
 * library that cannot be loaded makes its backend absent, with the reason. */
#ifndef CTML_DYNLOAD_H
#define CTML_DYNLOAD_H

#include "internal.h"

/* One symbol to resolve: its name, and where its address goes (the address of
 * a function pointer, seen as void *, as POSIX dlsym allows). */
typedef struct ct__dl_symbol {
  const char *name;
  void **slot;
} ct__dl_symbol;

/* Opens the first of names[0..n_names) that dlopen finds (NULL entries are
 * skipped) and resolves every symbol into its slot. Slots are written only
 * when all symbols resolve. On failure returns CT_ERR_BACKEND_ABSENT with
 * "cannot load <what>: " and dlopen's or dlsym's message for each name tried.
 * The library stays loaded for the life of the process. */
ct_status ct__dl_load(const char *what, const char *const *names, int n_names,
                      const ct__dl_symbol *symbols, int n_symbols);

/* The outcome of loading one library, kept for the life of the process. */
typedef struct ct__dl_once {
  int state;          /* 0: not tried, 1: loaded, -1: failed */
  char reason[1024];  /* the failure's message */
} ct__dl_once;
/* ct__dl_load on the first call; every later call returns the first outcome
 * (the same message on failure) without trying again. global: the library's
 * symbols are made available to the libraries it loads itself (RTLD_GLOBAL;
 * Open MPI's components need libmpi's). */
ct_status ct__dl_load_once(ct__dl_once *once, bool global, const char *what,
                           const char *const *names, int n_names, const ct__dl_symbol *symbols,
                           int n_symbols);

#endif
