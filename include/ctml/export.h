/* SPDX-License-Identifier: MIT */
/* CT_API marks the functions libctml exports. The library is compiled with
 * hidden visibility (-fvisibility=hidden), so only the functions declared
 * CT_API in include/ctml/ are in a shared libctml's symbol table. */
#ifndef CTML_EXPORT_H
#define CTML_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define CT_API __attribute__((visibility("default")))
#else
#define CT_API
#endif

#endif
