/* Shared declarations of the diff test "kernel" (guests/diffpair). */
#ifndef BT_GUESTS_DIFFPAIR_H
#define BT_GUESTS_DIFFPAIR_H

#define NOINLINE __attribute__((noinline, used))

extern char dp_log[256];
extern unsigned long dp_log_len;
extern const unsigned dp_table[8];

int add3(int a, int b, int c);
void log_msg(const char *s);
unsigned checksum(const unsigned char *p, unsigned long n);
int classify(int v);
unsigned long fib(unsigned n);
int b_entry(int x);
unsigned long start(void);
#ifndef DP_CHANGE
int old_func(int x);
int util_name(int x);
#else
int new_func(int x, int y);
int util_renamed(int x);
#endif

#endif
