# pretrans/cpuid: the vCPU's CPUID profile (prefix cpuid_), shared by the
# runtime's vCPU and pretrans's boot-patching prediction.  Depends on
# pretrans/base only.
$(eval $(call add_lib,btcpuid,pretrans/cpuid/cpuid.c))
