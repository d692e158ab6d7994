# runtime/mmu: the soft-MMU (page walk, permissions, A/D, software TLB).
$(eval $(call add_lib,btmmu,runtime/mmu/mmu.c runtime/mmu/mmu_pcid.c runtime/mmu/mmu_tlb.c))

# mmu_tlb.c serves the memory call-out's fast path (runtime/tc/module.mk)
FASTPATH_OBJS += $(BUILD)/runtime/mmu/mmu_tlb.o
$(BUILD)/runtime/mmu/mmu_tlb.o: CFLAGS += -mgeneral-regs-only
