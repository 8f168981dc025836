/* SPDX-License-Identifier: MIT */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dynload.h"

static ct_status ct__dl_open(const char *what, const char *const *names, int n_names,
                             const ct__dl_symbol *symbols, int n_symbols, int mode) {
  CT__NEED(what, "ct__dl_load");
  CT__NEED(names, "ct__dl_load");
  char tried[900] = "";
  size_t used = 0;
  void *lib = NULL;
  const char *name = NULL;
  for (int i = 0; i < n_names && !lib; i++) {
    if (!names[i]) continue;
    name = names[i];
    lib = dlopen(name, RTLD_NOW | mode);
    if (!lib && used < sizeof tried) {
      const char *e = dlerror();
      used += (size_t)snprintf(tried + used, sizeof tried - used, "%s%s", used ? "; " : "",
                               e ? e : name);
    }
  }
  if (!lib) return ct__fail(CT_ERR_BACKEND_ABSENT, "cannot load %s: %s", what,
                            tried[0] ? tried : "no library name to try");
  void **found = calloc(n_symbols > 0 ? (size_t)n_symbols : 1, sizeof *found);
  if (!found) {
    dlclose(lib);
    return ct__fail(CT_ERR_NOMEM, "cannot load %s: out of host memory", what);
  }
  for (int i = 0; i < n_symbols; i++) {
    (void)dlerror();
    found[i] = dlsym(lib, symbols[i].name);
    if (!found[i]) {
      const char *e = dlerror();
      ct_status s = ct__fail(CT_ERR_BACKEND_ABSENT, "cannot load %s: %s has no symbol %s (%s)",
                             what, name, symbols[i].name, e ? e : "NULL address");
      free(found);
      dlclose(lib);
      return s;
    }
  }
  for (int i = 0; i < n_symbols; i++) *symbols[i].slot = found[i];
  free(found);
  return CT_OK;
}

ct_status ct__dl_load(const char *what, const char *const *names, int n_names,
                      const ct__dl_symbol *symbols, int n_symbols) {
  return ct__dl_open(what, names, n_names, symbols, n_symbols, RTLD_LOCAL);
}

ct_status ct__dl_load_once(ct__dl_once *once, bool global, const char *what,
                           const char *const *names, int n_names, const ct__dl_symbol *symbols,
                           int n_symbols) {
  if (once->state == 1) return CT_OK;
  if (once->state == -1) return ct__fail(CT_ERR_BACKEND_ABSENT, "%s", once->reason);
  ct_status s = ct__dl_open(what, names, n_names, symbols, n_symbols,
                            global ? RTLD_GLOBAL : RTLD_LOCAL);
  if (s == CT_OK) {
    once->state = 1;
    return CT_OK;
  }
  snprintf(once->reason, sizeof once->reason, "%s", ct_last_error());
  once->state = -1;
  return s;
}
