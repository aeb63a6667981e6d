#pragma once
// Comparing a pinned map with the map a newer program expects, and carrying entries across when
// they differ: the pieces of a layout migration.
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <cstddef>

#include <cstdint>
#include <string>
#include <vector>

namespace kohaku::bpf {

// The shape of a map as the kernel and libbpf describe it.
struct MapLayout {
  uint32_t type = 0;
  uint32_t key_size = 0;
  uint32_t value_size = 0;
  uint32_t max_entries = 0;
  uint32_t flags = 0;
  std::string key_btf;    // type_signature() of the key type; "" without BTF
  std::string value_btf;  // same for the value

  bool operator==(const MapLayout&) const = default;
  std::string describe() const;
};

// Canonical text of a BTF type: sizes, member names, offsets and nested types, with typedefs and
// qualifiers resolved. Equal text means the same memory layout under the same field names.
std::string type_signature(const btf* b, uint32_t type_id);

// Layout of a loaded map (fd); reads the map's BTF from the kernel. Throws
// std::invalid_argument when the fd is not a map, std::system_error when the kernel refuses.
MapLayout map_layout_of_fd(int map_fd);

// Layout a map of an opened (not necessarily loaded) object will have.
MapLayout map_layout_of(const bpf_object* obj, const bpf_map* map);

// Copies `src` (of type src_id in src_btf) into `dst` (of type dst_id in dst_btf, pre-zeroed) by
// field name: members present in both with the same shape are copied, new members stay zero and
// vanished ones are dropped. Returns false when some member of the destination found no source,
// which for a key means the entry cannot be carried over.
bool convert_by_field_name(const btf* src_btf, uint32_t src_id, const uint8_t* src,
                           const btf* dst_btf, uint32_t dst_id, uint8_t* dst);

// Copies every entry of the map old_fd into the loaded `map` of `obj` with
// convert_by_field_name(); entries whose key cannot be rebuilt are skipped, and nothing is copied
// when the old map has no BTF or per-CPU-ness differs. Returns the number of entries carried.
size_t carry_entries_by_field_name(int old_fd, const bpf_object* obj, const bpf_map* map);

}  // namespace kohaku::bpf
