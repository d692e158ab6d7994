/*
 * Text for people and for programs: numbers with thousands separators in
 * human output (docs/cli.md), JSON strings escaped as RFC 8259 says.
 */
#ifndef BT_BASE_TEXT_H
#define BT_BASE_TEXT_H

#include <stdint.h>
#include <stdio.h>

/* Big enough for UINT64_MAX with separators (26 characters) and the NUL. */
#define BT_GROUP_LEN 28

/* v in decimal with a comma every three digits ("1,234,567"), into buf;
 * returns buf.  Locale-independent: the output is the same everywhere. */
char *bt_group(char buf[BT_GROUP_LEN], uint64_t v);

/* bt_group into a buffer that lives until the end of the enclosing block,
 * so several can be arguments of one printf call. */
#define BT_N(v) bt_group((char[BT_GROUP_LEN]){0}, (uint64_t)(v))

/* s as a JSON string, quotes included: '"', '\\' and control characters
 * escaped; bytes >= 0x80 passed through (paths are bytes; a non-UTF-8 path
 * shows as it is). */
void bt_json_str(FILE *f, const char *s);

#endif
