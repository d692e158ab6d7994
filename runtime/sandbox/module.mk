# runtime/sandbox: btvm's seccomp/capability sandbox (docs/security.md).
$(eval $(call add_lib,btsandbox,runtime/sandbox/sandbox.c))
