/*
 * Assertions that stay on in release builds (style rule 6).  For invariants
 * of this project's own code only: untrusted input (ELF files, databases,
 * guest memory) is checked and refused, never asserted on.
 * BT_DASSERT is the debug-only variant for hot paths.
 */
#ifndef BT_BASE_ASSERT_H
#define BT_BASE_ASSERT_H

void bt_assert_fail(const char *expr, const char *file, int line, const char *func)
    __attribute__((noreturn));

#define BT_ASSERT(e) ((e) ? (void)0 : bt_assert_fail(#e, __FILE__, __LINE__, __func__))

#ifdef NDEBUG
#define BT_DASSERT(e) ((void)0)
#else
#define BT_DASSERT(e) BT_ASSERT(e)
#endif

#endif
