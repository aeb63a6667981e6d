#pragma once
// Maps as an older build left them pinned, for the loaders' migration tests: a hash map whose BTF
// describes the older key and value structs field by field, so the loader has to carry entries
// over by field name (the layout is data in the test, the BTF plumbing is here once).
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "common/unique_fd.h"

namespace kohaku::test {

// One member of an older struct: a u32, or an array of `bytes` u8 (addresses, MACs).
struct OldField {
  const char* name;
  uint32_t bit_offset;
  uint32_t bytes = 0;  // 0: a u32
};

struct OldStruct {
  const char* name;
  uint32_t size;
  std::vector<OldField> fields;
};

// An unpinned BPF_F_NO_PREALLOC hash map `name` of `key.size`/`value.size` bytes typed by `key`
// and `value`. An invalid fd when BTF or the kernel refuses it (the BTF step fails the test).
inline UniqueFd old_layout_hash_map(const char* name, const OldStruct& key, const OldStruct& value,
                                    uint32_t max_entries) {
  std::unique_ptr<btf, void (*)(btf*)> b(btf__new_empty(), btf__free);
  int u32 = btf__add_int(b.get(), "unsigned int", 4, 0);
  int u8 = btf__add_int(b.get(), "unsigned char", 1, 0);
  // Array types first: a struct's fields must follow it directly.
  std::map<uint32_t, int> arrays;
  for (const OldStruct* s : {&key, &value})
    for (const OldField& f : s->fields)
      if (f.bytes != 0 && !arrays.count(f.bytes))
        arrays[f.bytes] = btf__add_array(b.get(), u32, u8, f.bytes);
  auto add_struct = [&](const OldStruct& s) {
    int id = btf__add_struct(b.get(), s.name, s.size);
    for (const OldField& f : s.fields) {
      int type = f.bytes == 0 ? u32 : arrays[f.bytes];
      EXPECT_EQ(btf__add_field(b.get(), f.name, type, f.bit_offset, 0), 0)
          << s.name << "." << f.name;
    }
    return id;
  };
  int key_type = add_struct(key);
  int value_type = add_struct(value);
  if (btf__load_into_kernel(b.get()) != 0) {
    ADD_FAILURE() << "the kernel refused the BTF of the older " << value.name;
    return UniqueFd();
  }
  bpf_map_create_opts o{};
  o.sz = sizeof(o);
  o.btf_fd = static_cast<uint32_t>(btf__fd(b.get()));
  o.btf_key_type_id = static_cast<uint32_t>(key_type);
  o.btf_value_type_id = static_cast<uint32_t>(value_type);
  o.map_flags = BPF_F_NO_PREALLOC;
  return UniqueFd(bpf_map_create(BPF_MAP_TYPE_HASH, name, key.size, value.size, max_entries, &o));
}

}  // namespace kohaku::test
