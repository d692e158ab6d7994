# runtime/clock: virtual time source and timers (struct vclock).
$(eval $(call add_lib,btclock,$(wildcard runtime/clock/*.c)))
