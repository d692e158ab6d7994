/*
 * Address types.  Types name their address space: gva_t is a guest virtual
 * address, gpa_t a guest physical address.  Host addresses stay pointers.
 */
#ifndef BT_BASE_TYPES_H
#define BT_BASE_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t gva_t;
typedef uint64_t gpa_t;

#define GUEST_PAGE_SHIFT 12
#define GUEST_PAGE_SIZE	 (1ull << GUEST_PAGE_SHIFT)
#define GUEST_PAGE_MASK	 (~(GUEST_PAGE_SIZE - 1))

#define BT_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define BT_MIN(a, b)	 ((a) < (b) ? (a) : (b))
#define BT_MAX(a, b)	 ((a) > (b) ? (a) : (b))

#endif
