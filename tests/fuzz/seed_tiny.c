/* A tiny freestanding x86-64 program: a seed for the ELF fuzzer. */
int seed_add(int a, int b);
int seed_add(int a, int b)
{
	return a + b;
}

void _start(void);
void _start(void)
{
	volatile int x = seed_add(1, 2);
	(void)x;
	for (;;)
		__asm__ volatile("hlt");
}
