/*
 * Logging and status strings.  Owns the process-wide log configuration
 * (mask, level, stream): the only global mutable state the style allows.
 */
#include "pretrans/base/log.h"
#include "pretrans/base/status.h"
#include "pretrans/base/assert.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static unsigned log_mask = LOG_ALL;
static enum bt_log_level log_level = LOG_WARN;
static FILE *log_stream;
static const char *log_prog = "btkern";

static const struct {
	const char *name;
	unsigned bit;
} log_subs[] = {
    {"core", LOG_CORE}, {"xlat", LOG_XLAT}, {"db", LOG_DB},   {"elf", LOG_ELF},
    {"mmu", LOG_MMU},	{"cpu", LOG_CPU},   {"dev", LOG_DEV}, {"tc", LOG_TC},
    {"user", LOG_USER}, {"kmod", LOG_KMOD}, {"all", LOG_ALL},
};

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};

const char *bt_status_str(enum bt_status s)
{
	switch (s) {
	case BT_OK:
		return "ok";
	case BT_ERR_NOMEM:
		return "out of memory";
	case BT_ERR_IO:
		return "I/O error";
	case BT_ERR_FORMAT:
		return "malformed input";
	case BT_ERR_VERSION:
		return "version or image mismatch";
	case BT_ERR_NOTFOUND:
		return "not found";
	case BT_ERR_INVALID:
		return "invalid argument";
	case BT_ERR_UNSUPPORTED:
		return "unsupported";
	case BT_ERR_RANGE:
		return "out of range";
	case BT_ERR_DB:
		return "database error";
	case BT_ERR_GUEST:
		return "fatal guest error";
	case BT_ERR_TIMEOUT:
		return "timed out";
	case BT_ERR_INTERNAL:
		return "internal error";
	case BT_ERR_AUTH:
		return "fails its authentication";
	}
	return "unknown status";
}

void bt_log_set(unsigned mask, enum bt_log_level level)
{
	log_mask = mask;
	log_level = level;
}

void bt_log_to(FILE *f)
{
	log_stream = f;
}

int bt_log_configure(const char *spec)
{
	char buf[256];
	unsigned mask = 0;
	enum bt_log_level level = LOG_INFO;

	if (!spec || strlen(spec) >= sizeof(buf))
		return -1;
	strcpy(buf, spec);
	char *colon = strchr(buf, ':');
	if (colon) {
		*colon = '\0';
		unsigned l;
		for (l = 0; l < BT_LOG_LEVELS; l++)
			if (!strcmp(colon + 1, level_names[l]))
				break;
		if (l == BT_LOG_LEVELS)
			return -1;
		level = (enum bt_log_level)l;
	}
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		size_t i;
		for (i = 0; i < sizeof(log_subs) / sizeof(log_subs[0]); i++)
			if (!strcmp(tok, log_subs[i].name))
				break;
		if (i == sizeof(log_subs) / sizeof(log_subs[0]))
			return -1;
		mask |= log_subs[i].bit;
	}
	bt_log_set(mask ? mask : LOG_ALL, level);
	return 0;
}

int bt_log_enabled(enum bt_log_sub sub, enum bt_log_level level)
{
	return level <= log_level && (level == LOG_ERROR || (log_mask & (unsigned)sub));
}

void bt_log(enum bt_log_sub sub, enum bt_log_level level, const char *fmt, ...)
{
	if (!bt_log_enabled(sub, level))
		return;
	FILE *f = log_stream ? log_stream : stderr;
	const char *sname = "?";
	for (size_t i = 0; i < sizeof(log_subs) / sizeof(log_subs[0]); i++)
		if (log_subs[i].bit == (unsigned)sub)
			sname = log_subs[i].name;
	va_list ap;
	va_start(ap, fmt);
	if (level == LOG_ERROR || level == LOG_WARN)
		fprintf(f, "%s: %s: ", log_prog, level == LOG_ERROR ? "error" : "warning");
	else
		fprintf(f, "[%s:%s] ", sname, level_names[level]);
	vfprintf(f, fmt, ap);
	fputc('\n', f);
	va_end(ap);
}

void bt_log_progname(const char *prog)
{
	const char *slash = prog ? strrchr(prog, '/') : NULL;
	log_prog = slash ? slash + 1 : prog ? prog : "btkern";
}

const char *bt_log_prog(void)
{
	return log_prog;
}

static void cli_vline(const char *kind, const char *fmt, va_list ap, const char *tail)
{
	FILE *f = log_stream ? log_stream : stderr;
	fprintf(f, "%s: %s: ", log_prog, kind);
	vfprintf(f, fmt, ap);
	fputs(tail, f);
}

void bt_cli_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cli_vline("error", fmt, ap, "\n");
	va_end(ap);
}

void bt_cli_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cli_vline("warning", fmt, ap, "\n");
	va_end(ap);
}

int bt_cli_usage(const char *fmt, ...)
{
	char tail[160];
	snprintf(tail, sizeof(tail), " (see %s --help)\n", log_prog);
	va_list ap;
	va_start(ap, fmt);
	cli_vline("error", fmt, ap, tail);
	va_end(ap);
	return BT_EXIT_USAGE;
}

int bt_cli_bad_option(int c, int argc, char **argv, int optind_now, int optopt_now)
{
	const char *arg = optind_now > 0 && optind_now <= argc ? argv[optind_now - 1] : "";
	const char *why = c == ':' ? "needs an argument" : "is unknown";
	if (!strncmp(arg, "--", 2))
		return bt_cli_usage("option '%.*s' %s", (int)strcspn(arg, "="), arg, why);
	if (optopt_now > ' ' && optopt_now < 127)
		return bt_cli_usage("option '-%c' %s", optopt_now, why);
	return bt_cli_usage("bad option '%s'", arg);
}

void bt_assert_fail(const char *expr, const char *file, int line, const char *func)
{
	fprintf(stderr,
		"btkern: internal error: assertion `%s' failed at %s:%d (%s); please report\n",
		expr, file, line, func);
	abort();
}

int bt_status_exit(enum bt_status s)
{
	switch (s) {
	case BT_OK:
		return 0;
	case BT_ERR_FORMAT:
	case BT_ERR_VERSION:
	case BT_ERR_UNSUPPORTED:
	case BT_ERR_RANGE:
	case BT_ERR_NOTFOUND:
	case BT_ERR_DB:
	case BT_ERR_AUTH:
	case BT_ERR_INVALID: /* usage and input errors share BT_EXIT_USAGE */
		return 2;
	case BT_ERR_IO:
		return 4;
	default:
		return 3;
	}
}
