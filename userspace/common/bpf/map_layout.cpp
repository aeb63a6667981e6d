#include "common/bpf/map_layout.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <vector>

#include "common/bpf/error.h"

namespace kohaku::bpf {
namespace {

const btf_type* resolve(const btf* b, uint32_t& id) {
  const btf_type* t = btf__type_by_id(b, id);
  while (t && (btf_is_mod(t) || btf_is_typedef(t))) {
    id = t->type;
    t = btf__type_by_id(b, id);
  }
  return t;
}

std::string signature(const btf* b, uint32_t id, int depth) {
  if (depth > 16) return "?";
  const btf_type* t = resolve(b, id);
  if (!t) return "void";
  if (btf_is_int(t))
    return "i" + std::to_string(t->size) + "." + std::to_string(btf_int_encoding(t)) + "." +
           std::to_string(btf_int_bits(t)) + "." + std::to_string(btf_int_offset(t));
  if (btf_is_enum(t)) return "e" + std::to_string(t->size);
  if (btf_is_ptr(t)) return "p";
  if (btf_is_array(t)) {
    const struct btf_array* a = btf_array(t);
    return "a" + std::to_string(a->nelems) + "[" + signature(b, a->type, depth + 1) + "]";
  }
  if (btf_is_composite(t)) {
    std::string s = std::string(btf_is_struct(t) ? "s" : "u") + std::to_string(t->size) + "{";
    const btf_member* m = btf_members(t);
    for (int i = 0; i < btf_vlen(t); ++i, ++m) {
      s += btf__name_by_offset(b, m->name_off);
      s += "@" + std::to_string(btf_member_bit_offset(t, i));
      if (uint32_t bits = btf_member_bitfield_size(t, i)) s += ":" + std::to_string(bits);
      s += "=" + signature(b, m->type, depth + 1) + ";";
    }
    return s + "}";
  }
  return "k" + std::to_string(btf_kind(t)) + "." + std::to_string(t->size);
}

struct BtfDeleter {
  void operator()(btf* b) const { btf__free(b); }
};

size_t type_size(const btf* b, uint32_t id) {
  long n = btf__resolve_size(b, id);
  return n < 0 ? 0 : static_cast<size_t>(n);
}

bool is_percpu(uint32_t type) {
  return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
         type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

size_t round8(size_t n) {
  return (n + 7) / 8 * 8;
}

}  // namespace

std::string MapLayout::describe() const {
  return "type " + std::to_string(type) + ", key " + std::to_string(key_size) + " B " + key_btf +
         ", value " + std::to_string(value_size) + " B " + value_btf + ", max_entries " +
         std::to_string(max_entries) + ", flags " + std::to_string(flags);
}

std::string type_signature(const btf* b, uint32_t type_id) {
  return type_id == 0 ? std::string() : signature(b, type_id, 0);
}

MapLayout map_layout_of_fd(int map_fd) {
  // Info of a program fd would be read as garbage map info: check what the fd is first (the
  // kernel only tells through the anon inode name, as bpftool also reads it).
  char link[64] = {};
  std::string fd_path = "/proc/self/fd/" + std::to_string(map_fd);
  if (::readlink(fd_path.c_str(), link, sizeof(link) - 1) < 0) fail(errno, "inspect fd", fd_path);
  if (std::string_view(link) != "anon_inode:bpf-map")
    throw std::invalid_argument(std::string("not a BPF map but ") + link);
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (int err = bpf_obj_get_info_by_fd(map_fd, &info, &len); err)
    fail(err, "read the info of BPF map fd", std::to_string(map_fd));
  MapLayout l{info.type, info.key_size, info.value_size, info.max_entries, info.map_flags, "", ""};
  if (info.btf_id) {
    std::unique_ptr<btf, BtfDeleter> b(btf__load_from_kernel_by_id(info.btf_id));
    if (!b) fail(errno, "load BTF " + std::to_string(info.btf_id) + " of BPF map", info.name);
    l.key_btf = type_signature(b.get(), info.btf_key_type_id);
    l.value_btf = type_signature(b.get(), info.btf_value_type_id);
  }
  return l;
}

bool convert_by_field_name(const btf* src_btf, uint32_t src_id, const uint8_t* src,
                           const btf* dst_btf, uint32_t dst_id, uint8_t* dst) {
  if (signature(src_btf, src_id, 0) == signature(dst_btf, dst_id, 0)) {
    std::memcpy(dst, src, type_size(dst_btf, dst_id));
    return true;
  }
  const btf_type* st = resolve(src_btf, src_id);
  const btf_type* dt = resolve(dst_btf, dst_id);
  if (!st || !dt || !btf_is_struct(st) || !btf_is_struct(dt)) return false;
  bool complete = true;
  const btf_member* dm = btf_members(dt);
  for (int i = 0; i < btf_vlen(dt); ++i, ++dm) {
    const char* name = btf__name_by_offset(dst_btf, dm->name_off);
    bool found = false;
    const btf_member* sm = btf_members(st);
    for (int j = 0; j < btf_vlen(st) && !found; ++j, ++sm) {
      if (std::strcmp(name, btf__name_by_offset(src_btf, sm->name_off)) != 0) continue;
      if (btf_member_bitfield_size(st, j) || btf_member_bitfield_size(dt, i)) break;
      found = convert_by_field_name(src_btf, sm->type, src + btf_member_bit_offset(st, j) / 8,
                                    dst_btf, dm->type, dst + btf_member_bit_offset(dt, i) / 8);
    }
    complete = complete && found;
  }
  return complete;
}

}  // namespace kohaku::bpf

namespace kohaku::bpf {

MapLayout map_layout_of(const bpf_object* obj, const bpf_map* map) {
  const btf* b = bpf_object__btf(obj);
  return MapLayout{static_cast<uint32_t>(bpf_map__type(map)),
                   bpf_map__key_size(map),
                   bpf_map__value_size(map),
                   bpf_map__max_entries(map),
                   bpf_map__map_flags(map),
                   type_signature(b, bpf_map__btf_key_type_id(map)),
                   type_signature(b, bpf_map__btf_value_type_id(map))};
}

size_t carry_entries_by_field_name(int old_fd, const bpf_object* obj, const bpf_map* map) {
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(old_fd, &info, &len) != 0 || info.btf_id == 0) return 0;
  std::unique_ptr<btf, BtfDeleter> old_btf(btf__load_from_kernel_by_id(info.btf_id));
  if (!old_btf) return 0;
  const btf* new_btf = bpf_object__btf(obj);
  bool old_percpu = is_percpu(info.type);
  bool new_percpu = is_percpu(bpf_map__type(map));
  if (old_percpu != new_percpu) return 0;
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return 0;
  size_t copies = old_percpu ? static_cast<size_t>(cpus) : 1;
  // Per-CPU values come as one slot per possible CPU, each rounded up to 8 bytes.
  size_t old_stride = old_percpu ? round8(info.value_size) : info.value_size;
  size_t new_stride = new_percpu ? round8(bpf_map__value_size(map)) : bpf_map__value_size(map);

  std::vector<uint8_t> key(info.key_size), next(info.key_size), value(old_stride * copies);
  std::vector<uint8_t> new_key(bpf_map__key_size(map)), new_value(new_stride * copies);
  size_t carried = 0;
  const void* prev = nullptr;
  while (bpf_map_get_next_key(old_fd, prev, next.data()) == 0) {
    key = next;
    prev = key.data();
    if (bpf_map_lookup_elem(old_fd, key.data(), value.data()) != 0) continue;
    std::fill(new_key.begin(), new_key.end(), 0);
    std::fill(new_value.begin(), new_value.end(), 0);
    if (!convert_by_field_name(old_btf.get(), info.btf_key_type_id, key.data(), new_btf,
                               bpf_map__btf_key_type_id(map), new_key.data()))
      continue;
    for (size_t cpu = 0; cpu < copies; ++cpu)
      convert_by_field_name(old_btf.get(), info.btf_value_type_id, value.data() + cpu * old_stride,
                            new_btf, bpf_map__btf_value_type_id(map),
                            new_value.data() + cpu * new_stride);
    if (bpf_map_update_elem(bpf_map__fd(map), new_key.data(), new_value.data(), BPF_ANY) == 0)
      ++carried;
  }
  return carried;
}

}  // namespace kohaku::bpf
