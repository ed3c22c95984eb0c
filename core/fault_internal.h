/* core/fault_internal.h — the hook sites' side of fault injection (core.h has the test side:
 * vt_fault_arm and friends). Internal to libvtstore: not exported by libvtstore.so. */
#ifndef VT_FAULT_INTERNAL_H
#define VT_FAULT_INTERNAL_H

#ifdef __cplusplus
extern "C" {
#endif

/** Called by hook sites (core's allocators and reads, tiering's device and io_uring paths);
 *  returns 0 or the error to inject. */
int vt_fault_check(unsigned kind);

#ifdef __cplusplus
}
#endif

#endif
