/*
 * abi.cu — the exported functions of fbp.h for the cuda backend: the checks shared with every
 * backend (native/common/abi.inc, generated from the kernel contract), then fbp_ready_check
 * (FBP_KERNEL_READY, internal.cuh), in front of this backend's impl_<kernel> functions.
 */
#include "internal.cuh"

#include "abi.inc"
