# runtime/mmu: the soft-MMU (page walk, permissions, A/D, software TLB).
$(eval $(call add_lib,btmmu,runtime/mmu/mmu.c runtime/mmu/mmu_pcid.c))
