/*
 * One status type for the whole tree.  Functions return enum bt_status and
 * hand results back through out-parameters; BT_TRY() propagates a failure.
 *
 * "Cannot translate" and guest exceptions are NOT statuses: they are named
 * results of their own modules (see xlat.h, the runtime's exception API).
 */
#ifndef BT_BASE_STATUS_H
#define BT_BASE_STATUS_H

enum bt_status {
	BT_OK = 0,
	BT_ERR_NOMEM,	 /* allocation failed */
	BT_ERR_IO,	 /* a host file operation failed (errno is kept) */
	BT_ERR_FORMAT,	 /* untrusted input is malformed (ELF, database, cpio) */
	BT_ERR_VERSION,	 /* input written by another version / for another image */
	BT_ERR_NOTFOUND, /* a looked-up object does not exist */
	BT_ERR_INVALID,	 /* bad argument at a public edge */
	BT_ERR_UNSUPPORTED,
	BT_ERR_RANGE, /* address or size out of range */
	BT_ERR_DB,    /* sqlite reported an error */
	BT_ERR_GUEST, /* the guest did something fatal (triple fault, ...) */
	BT_ERR_TIMEOUT,
	BT_ERR_INTERNAL, /* an invariant broke: a bug in this project */
	BT_ERR_AUTH,	 /* input fails its authentication (a translation database
			  * changed after it was written, or signed with another key) */
};

const char *bt_status_str(enum bt_status s);

/* The offline tools' exit status for a status (pretrans and its diff):
 * 0 ok, 2 usage (BT_ERR_INVALID) or bad input (malformed, unsupported,
 * mismatched, missing, unauthentic or out-of-range input, a database error), 4 host I/O
 * error, 3 anything else (an internal error). */
int bt_status_exit(enum bt_status s);

#define BT_TRY(expr)                                                                               \
	do {                                                                                       \
		enum bt_status bt_try_s_ = (expr);                                                 \
		if (bt_try_s_ != BT_OK)                                                            \
			return bt_try_s_;                                                          \
	} while (0)

#endif
