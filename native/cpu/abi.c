/*
 * abi.c — the exported functions of fbp.h for the cpu backend: the checks shared with every
 * backend (native/common/abi.inc, generated from the kernel contract) in front of this
 * backend's impl_<kernel> functions.
 */
#include "internal.h"

#include "abi.inc"
