/* Thousands separators and JSON strings (text.h). */
#include "pretrans/base/text.h"

char *bt_group(char buf[BT_GROUP_LEN], uint64_t v)
{
	char digits[21];
	int n = 0;
	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	int o = 0;
	for (int i = n - 1; i >= 0; i--) {
		buf[o++] = digits[i];
		if (i && i % 3 == 0)
			buf[o++] = ',';
	}
	buf[o] = '\0';
	return buf;
}

void bt_json_str(FILE *f, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (*p < 0x20) {
				fputs("\\u00", f);
				fputc(hex[*p >> 4], f);
				fputc(hex[*p & 15], f);
			} else {
				fputc(*p, f);
			}
		}
	}
	fputc('"', f);
}
