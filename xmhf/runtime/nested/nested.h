/* Nested VMX internals shared by the files of runtime/nested/. */
#ifndef RUNTIME_NESTED_H
#define RUNTIME_NESTED_H
#include <xmhf/types.h>

/* VMCS12 regions in L1 memory (vmcs12.c). */
u64 vmcs12_read(u64 vmcs12_pa, u32 encoding);
void vmcs12_write(u64 vmcs12_pa, u32 encoding, u64 value);
void vmcs12_write_field(u64 vmcs12_pa, u32 encoding, u64 value); /* also read-only fields */
void vmcs12_set_launched(u64 vmcs12_pa, bool launched);

/* What L1 sees (caps.c). */
u32 nested_vmcs_revision(void);
u64 nested_vmx_misc(void);
bool nested_field_supported(u32 field_index);

#endif
