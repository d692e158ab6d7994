/*
 * Logging to stderr (stdout belongs to the guest console).  Each message has
 * a subsystem and a level; BT_LOG_MASK / bt_log_configure() choose what shows.
 * The log configuration is the one piece of global mutable state allowed.
 */
#ifndef BT_BASE_LOG_H
#define BT_BASE_LOG_H

#include <stdio.h>

enum bt_log_sub {
	LOG_CORE = 1 << 0,
	LOG_XLAT = 1 << 1,
	LOG_DB = 1 << 2,
	LOG_ELF = 1 << 3,
	LOG_MMU = 1 << 4,
	LOG_CPU = 1 << 5,
	LOG_DEV = 1 << 6,
	LOG_TC = 1 << 7,
	LOG_USER = 1 << 8,
	LOG_KMOD = 1 << 9,
	LOG_ALL = 0xffff,
};

enum bt_log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3, LOG_TRACE = 4 };
#define BT_LOG_LEVELS 5

/* Parse "sub1,sub2:level" style specs, e.g. "all:debug" or "mmu,tc:trace". */
int bt_log_configure(const char *spec);
void bt_log_set(unsigned mask, enum bt_log_level level);
int bt_log_enabled(enum bt_log_sub sub, enum bt_log_level level);
void bt_log_to(FILE *f);
void bt_log(enum bt_log_sub sub, enum bt_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * The command-line convention shared by pretrans, btvm and ptdiff
 * (docs/cli.md): errors are one line "PROG: error: ..." on stderr, warnings
 * "PROG: warning: ...".  bt_log() uses the same form for LOG_ERROR and
 * LOG_WARN.  PROG is set once by main() (default "btkern").
 */
#define BT_EXIT_USAGE 2 /* every program: bad usage (the option is named) */
void bt_log_progname(const char *prog);
const char *bt_log_prog(void);
void bt_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void bt_cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A usage error: "PROG: error: MSG (see PROG --help)"; returns BT_EXIT_USAGE. */
int bt_cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* getopt returned C ('?' unknown, ':' missing argument, with a leading ':'
 * in the option string and opterr = 0): names the bad option;
 * returns BT_EXIT_USAGE. */
int bt_cli_bad_option(int c, int argc, char **argv, int optind_now, int optopt_now);

#define bt_err(sub, ...)  bt_log(sub, LOG_ERROR, __VA_ARGS__)
#define bt_warn(sub, ...) bt_log(sub, LOG_WARN, __VA_ARGS__)
#define bt_info(sub, ...) bt_log(sub, LOG_INFO, __VA_ARGS__)
#define bt_debug(sub, ...)                                                                         \
	do {                                                                                       \
		if (bt_log_enabled(sub, LOG_DEBUG))                                                \
			bt_log(sub, LOG_DEBUG, __VA_ARGS__);                                       \
	} while (0)

#endif
