/* The few UEFI definitions the loader and the test application use (UEFI Specification 2.10: 4.3 system
 * table, 4.4 boot services, 7.2 memory services, 9.1 loaded image protocol, 13 MP services protocol
 * from the PI specification vol. 2). Every call into the firmware uses the Microsoft x64 convention. */
#ifndef XMHF_BOOT_UEFI_EFI_H
#define XMHF_BOOT_UEFI_EFI_H
#include <xmhf/types.h>
#include <lib/efi-memmap.h>

#define EFIAPI __attribute__((ms_abi))

typedef u64 efi_status;
typedef void *efi_handle;
typedef u16 char16;

#define EFI_SUCCESS 0
#define EFI_ERR(n) ((1ULL << 63) | (n))
#define EFI_LOAD_ERROR EFI_ERR(1)
#define EFI_INVALID_PARAMETER EFI_ERR(2)
#define EFI_UNSUPPORTED EFI_ERR(3)
#define EFI_BUFFER_TOO_SMALL EFI_ERR(5)
#define EFI_OUT_OF_RESOURCES EFI_ERR(9)
#define EFI_NOT_FOUND EFI_ERR(14)
#define EFI_ABORTED EFI_ERR(21)

struct efi_guid {
	u32 a;
	u16 b, c;
	u8 d[8];
};

#define EFI_LOADED_IMAGE_GUID { 0x5b1b31a1, 0x9562, 0x11d2, { 0x8e, 0x3f, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b } }
#define EFI_ACPI_20_TABLE_GUID { 0x8868e871, 0xe4f1, 0x11d3, { 0xbc, 0x22, 0x00, 0x80, 0xc7, 0x3c, 0x88, 0x81 } }
#define EFI_ACPI_10_TABLE_GUID { 0xeb9d2d30, 0x2d88, 0x11d3, { 0x9a, 0x16, 0x00, 0x90, 0x27, 0x3f, 0xc1, 0x4d } }
#define EFI_MP_SERVICES_GUID { 0x3fdda605, 0xa76e, 0x4f46, { 0xad, 0x29, 0x12, 0xf4, 0x53, 0x1b, 0x3d, 0x08 } }
/* XMHF's own configuration table: where the hypervisor region is (struct xmhf_efi_region_table). */
#define XMHF_REGION_TABLE_GUID { 0x6f8a3c21, 0x58d4, 0x4c5e, { 0x9b, 0x0e, 0x58, 0x4d, 0x48, 0x46, 0x52, 0x47 } }

struct efi_table_header {
	u64 signature;
	u32 revision;
	u32 header_size;
	u32 crc32;
	u32 reserved;
};

#define EFI_SYSTEM_TABLE_SIGNATURE 0x5453595320494249ULL /* "IBI SYST" */
#define EFI_BOOT_SERVICES_SIGNATURE 0x56524553544f4f42ULL /* "BOOTSERV" */

/* Memory types (UEFI 7.2, table EFI_MEMORY_TYPE). */
enum {
	EfiReservedMemoryType,
	EfiLoaderCode,
	EfiLoaderData,
	EfiBootServicesCode,
	EfiBootServicesData,
	EfiRuntimeServicesCode,
	EfiRuntimeServicesData,
	EfiConventionalMemory,
	EfiUnusableMemory,
	EfiACPIReclaimMemory,
	EfiACPIMemoryNVS,
	EfiMemoryMappedIO,
	EfiMemoryMappedIOPortSpace,
	EfiPalCode,
	EfiPersistentMemory,
	EfiUnacceptedMemoryType,
};

enum { AllocateAnyPages, AllocateMaxAddress, AllocateAddress };
enum { EfiResetCold, EfiResetWarm, EfiResetShutdown };

/* EFI_MEMORY_DESCRIPTOR is struct efi_memdesc (lib/efi-memmap.h). */

struct efi_simple_text_output {
	void *reset;
	efi_status(EFIAPI *output_string)(struct efi_simple_text_output *self, const char16 *s);
};

struct efi_boot_services {
	struct efi_table_header hdr;
	void *raise_tpl, *restore_tpl;
	efi_status(EFIAPI *allocate_pages)(u32 type, u32 memory_type, u64 pages, u64 *address);
	efi_status(EFIAPI *free_pages)(u64 address, u64 pages);
	efi_status(EFIAPI *get_memory_map)(u64 *map_size, void *map, u64 *map_key, u64 *descriptor_size,
					   u32 *descriptor_version);
	efi_status(EFIAPI *allocate_pool)(u32 pool_type, u64 size, void **buffer);
	efi_status(EFIAPI *free_pool)(void *buffer);
	void *create_event, *set_timer, *wait_for_event, *signal_event, *close_event, *check_event;
	void *install_protocol_interface, *reinstall_protocol_interface, *uninstall_protocol_interface;
	efi_status(EFIAPI *handle_protocol)(efi_handle handle, const struct efi_guid *protocol, void **interface);
	void *reserved, *register_protocol_notify, *locate_handle, *locate_device_path;
	efi_status(EFIAPI *install_configuration_table)(const struct efi_guid *guid, void *table);
	void *load_image, *start_image, *exit, *unload_image;
	efi_status(EFIAPI *exit_boot_services)(efi_handle image, u64 map_key);
	void *get_next_monotonic_count;
	efi_status(EFIAPI *stall)(u64 microseconds);
	void *set_watchdog_timer;
	void *connect_controller, *disconnect_controller;
	void *open_protocol, *close_protocol, *open_protocol_information;
	void *protocols_per_handle, *locate_handle_buffer;
	efi_status(EFIAPI *locate_protocol)(const struct efi_guid *protocol, void *registration, void **interface);
};

struct efi_runtime_services {
	struct efi_table_header hdr;
	void *get_time, *set_time, *get_wakeup_time, *set_wakeup_time;
	void *set_virtual_address_map, *convert_pointer;
	void *get_variable, *get_next_variable_name, *set_variable;
	void *get_next_high_monotonic_count;
	void(EFIAPI *reset_system)(u32 type, efi_status status, u64 data_size, void *data);
};

struct efi_configuration_table {
	struct efi_guid guid;
	void *table;
};

struct efi_system_table {
	struct efi_table_header hdr;
	char16 *firmware_vendor;
	u32 firmware_revision;
	efi_handle console_in_handle;
	void *con_in;
	efi_handle console_out_handle;
	struct efi_simple_text_output *con_out;
	efi_handle standard_error_handle;
	void *std_err;
	struct efi_runtime_services *runtime_services;
	struct efi_boot_services *boot_services;
	u64 number_of_table_entries;
	struct efi_configuration_table *configuration_table;
};

struct efi_loaded_image {
	u32 revision;
	efi_handle parent_handle;
	struct efi_system_table *system_table;
	efi_handle device_handle;
	void *file_path;
	void *reserved;
	u32 load_options_size;
	void *load_options;
	void *image_base;
	u64 image_size;
	u32 image_code_type, image_data_type;
	void *unload;
};

/* PI specification vol. 2, 13.4 EFI_MP_SERVICES_PROTOCOL. */
typedef void(EFIAPI *efi_ap_procedure)(void *arg);
struct efi_mp_services {
	efi_status(EFIAPI *get_number_of_processors)(struct efi_mp_services *self, u64 *n, u64 *enabled);
	void *get_processor_info;
	efi_status(EFIAPI *startup_all_aps)(struct efi_mp_services *self, efi_ap_procedure proc, u8 single_thread,
					    void *wait_event, u64 timeout_us, void *arg, u64 **failed_cpu_list);
	void *startup_this_ap, *switch_bsp, *enable_disable_ap, *who_am_i;
};

/* XMHF_REGION_TABLE_GUID's table: the loader installs it so the next EFI program (and tests) can find the
 * region it must not see as usable memory. */
#define XMHF_REGION_TABLE_MAGIC 0x4e4f4947455246ULL /* "FREGION" */
struct xmhf_efi_region_table {
	u64 magic;
	u64 base;
	u64 size;
	u64 launched; /* 1: the firmware runs as the guest in VMX non-root; 0: dry run, no guest */
};

static inline bool efi_guid_eq(const struct efi_guid *x, const struct efi_guid *y)
{
	const u8 *p = (const u8 *)x, *q = (const u8 *)y;

	for (u32 i = 0; i < sizeof(*x); i++)
		if (p[i] != q[i])
			return false;
	return true;
}

#endif
